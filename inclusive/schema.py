"""Small helpers for table definitions shared by the domain models."""

from __future__ import annotations

from enum import StrEnum


def one_of(column: str, enum: type[StrEnum]) -> str:
    """A CHECK constraint's text: the column holds one of the enum's values."""
    return f"{column} IN ({', '.join(repr(e.value) for e in enum)})"
