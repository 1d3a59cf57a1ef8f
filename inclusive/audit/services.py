"""Write audit events; every service that changes state calls :func:`record`."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from inclusive.audit.models import AuditEvent
from inclusive.extensions import db


def _actor_id() -> int | None:
    try:
        return current_user.id if current_user and current_user.is_authenticated else None
    except RuntimeError:  # outside a request: a job or a command
        return None


def record(
    action: str,
    *,
    producer_id: int | None = None,
    program_id: int | None = None,
    actor_id: int | None = None,
    **details: Any,
) -> AuditEvent:
    """Append an audit event in the current transaction."""
    event = AuditEvent(
        action=action,
        producer_id=producer_id,
        program_id=program_id,
        actor_id=actor_id if actor_id is not None else _actor_id(),
        details={k: _plain(v) for k, v in details.items()},
    )
    db.session.add(event)
    return event


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
