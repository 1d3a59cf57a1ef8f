"""Refusals of a service, and the one way a view acts on them.

Every domain's error for "this change is refused, and here is why" derives from
:class:`Refused`; a view that posts and redirects calls :func:`act`, which commits once when
the service accepts and rolls back and says why when it refuses.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import flash

from inclusive.extensions import db


class Refused(ValueError):
    """A change a service refuses; the message says why, in the reader's language."""


def act(change: Callable[[], object], success: str | Callable[[], str]) -> bool:
    """Run a service call: commit and flash ``success``, or roll back and flash the refusal."""
    try:
        change()
    except Refused as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return False
    message = success() if callable(success) else success
    db.session.commit()
    flash(message, "success")
    return True
