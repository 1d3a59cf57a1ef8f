"""Accounts: creating users, logging in, and changing or resetting passwords."""

from __future__ import annotations

import hashlib

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from inclusive.auth.models import User
from inclusive.auth.passwords import hash_password, needs_rehash, password_problem, verify_password
from inclusive.auth.sessions import end_other_sessions
from inclusive.extensions import db
from inclusive.jobs import enqueue, job
from inclusive.jobs.mail import render_mail, send_mail
from inclusive.refusals import Refused
from inclusive.timeutil import utcnow
from inclusive.tokens import InvalidToken, make_token, read_token
from inclusive.urls import external_url

RESET_PURPOSE = "password-reset"


class AccountError(Refused):
    """A request about an account that cannot be carried out; the message says why."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def normalize_email(email: str) -> str:
    """Return the form in which e-mail addresses are stored and compared."""
    return email.strip().lower()


def find_user(email: str) -> User | None:
    """Return the user with this e-mail address, if any."""
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def create_user(email: str, name: str, password: str, locale: str | None = None) -> User:
    """Create a user after checking the address is free and the password acceptable."""
    email = normalize_email(email)
    if db.session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise AccountError(_("An account with this e-mail address already exists."), "email")
    problem = password_problem(password, [email, name])
    if problem:
        raise AccountError(problem, "password")
    user = User(
        email=email, name=name.strip(), password_hash=hash_password(password), locale=locale
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the active user whose password matches, or None (same time either way)."""
    user = find_user(email)
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_password(user: User, new_password: str) -> None:
    """Replace the user's password and end every other session of theirs."""
    problem = password_problem(new_password, [user.email, user.name])
    if problem:
        raise AccountError(problem, "password")
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    end_other_sessions(user)


def change_password(user: User, current_password: str, new_password: str) -> None:
    """Change a password after checking the current one."""
    if not verify_password(user.password_hash, current_password):
        raise AccountError(_("The current password is not correct."), "current_password")
    set_password(user, new_password)


def _password_fingerprint(user: User) -> str:
    # Changes whenever the password does, so a used link cannot be used again.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:20]


def password_reset_token(user: User) -> str:
    """Return a signed link token that is valid once and expires."""
    return make_token(RESET_PURPOSE, {"u": user.id, "f": _password_fingerprint(user)})


def user_for_reset_token(token: str) -> User:
    """Return the user a reset token is for, or raise InvalidToken if expired or used."""
    payload = read_token(RESET_PURPOSE, token, current_app.config["PASSWORD_RESET_MAX_AGE"])
    user_id = payload.get("u")
    if not isinstance(user_id, int):
        raise InvalidToken("malformed")
    user = db.session.get(User, user_id)
    if user is None or not user.active or payload.get("f") != _password_fingerprint(user):
        raise InvalidToken("used")
    return user


def request_password_reset(email: str, locale: str) -> None:
    """Send a reset link if the address belongs to an active user; say nothing otherwise."""
    user = find_user(email)
    if user is not None and user.active:
        enqueue("auth.password_reset_email", org_id=None, user_id=user.id, locale=locale)


def reset_password(token: str, new_password: str) -> User:
    """Set a new password through a reset link; every session of the user ends."""
    user = user_for_reset_token(token)
    set_password(user, new_password)
    end_other_sessions(user)
    return user


@job("auth.password_reset_email")
def send_password_reset_email(user_id: int, locale: str) -> None:
    """Send the password-reset link to the user, in their language."""
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        return
    link = external_url("auth.reset_password", token=password_reset_token(user))
    max_age_minutes = current_app.config["PASSWORD_RESET_MAX_AGE"] // 60
    send_mail(
        render_mail(
            "password_reset",
            to=user.email,
            locale=user.locale or locale,
            user=user,
            link=link,
            minutes=max_age_minutes,
        )
    )
