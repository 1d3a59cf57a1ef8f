"""The demo organizations' staff, for the demo loaders of each package."""

from __future__ import annotations

from sqlalchemy import select

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.tenancy.models import Organization


def demo_staff(slug: str) -> tuple[Organization, User, User] | None:
    """A demo organization with its program manager and field officer (``manager@<slug>``,
    ``officer@<slug>.example``), or None when any of them is missing."""
    org = db.session.scalar(select(Organization).filter_by(slug=slug))
    manager = db.session.scalar(select(User).filter_by(email=f"manager@{slug}.example"))
    officer = db.session.scalar(select(User).filter_by(email=f"officer@{slug}.example"))
    if org is None or manager is None or officer is None:
        return None
    return org, manager, officer
