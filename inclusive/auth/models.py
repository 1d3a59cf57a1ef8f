"""Users and their server-side login sessions."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inclusive.extensions import db
from inclusive.timeutil import utcnow


class LoginMixin(UserMixin):
    """What Flask-Login asks of a user: the entity, and the signed-in user of a request
    (``auth.sessions.SignedInUser``). Flask-Login keeps the session key, not the user id."""

    active: bool
    # Set by the session loader: the login session this request is authenticated by.
    auth_session: Any = None  # not a column

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    def get_id(self) -> str | None:
        return self.auth_session.key if self.auth_session is not None else None


class User(LoginMixin, db.Model):
    """A person who logs in: staff now, partner staff and producers later."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(5))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<User {self.email}>"


def hash_session_key(key: str) -> str:
    """Return the digest under which a session key is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


class AuthSession(db.Model):
    """One login on one browser; deleting the row logs that browser out everywhere."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie key
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)

    # The clear key lives only in the user's cookie; it is kept here for get_id().
    key = ""  # not a column
