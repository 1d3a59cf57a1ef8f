"""Time helpers: the platform stores naive UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time in UTC, without tzinfo (as stored)."""
    return datetime.now(UTC).replace(tzinfo=None)
