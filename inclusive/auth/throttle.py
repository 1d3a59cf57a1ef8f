"""Login throttling: per IP, and per account, without letting strangers lock a user out.

Failed attempts count against the account's e-mail address. A browser where the user
has logged in before carries a signed "known device" cookie; its attempts count against
that device instead, so a stranger hammering the address cannot lock the real user out
of their own browser, and the account limit itself only spans a short window.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from flask import current_app, g, request
from flask_limiter.util import get_remote_address
from werkzeug.wrappers import Response

from inclusive.tokens import InvalidToken, make_token, read_token

DEVICE_PURPOSE = "known-device"
DEVICE_MAX_AGE = 180 * 24 * 3600


def _device_cookie_name() -> str:
    return "__Host-device" if current_app.config["SESSION_COOKIE_SECURE"] else "known_device"


def per_ip_limit() -> str:
    return current_app.config["LOGIN_LIMIT_PER_IP"]


def per_account_limit() -> str:
    return current_app.config["LOGIN_LIMIT_PER_ACCOUNT"]


def ip_key() -> str:
    return "login-ip:" + (get_remote_address() or "unknown")


def _known_device(email: str) -> str | None:
    token = request.cookies.get(_device_cookie_name())
    if not token:
        return None
    try:
        payload = read_token(DEVICE_PURPOSE, token, DEVICE_MAX_AGE)
    except InvalidToken:
        return None
    if payload.get("e") != email or not isinstance(payload.get("n"), str):
        return None
    return payload["n"]


def account_key() -> str:
    email = (request.form.get("email") or "").strip().lower()[:254]
    device = _known_device(email)
    if device:
        return f"login-device:{device}"
    return "login-account:" + hashlib.sha256(email.encode()).hexdigest()


def login_failed(response: Response) -> bool:
    return bool(g.get("login_failed"))


def remember_device(response: Response, user: Any) -> None:
    """Mark this browser as one where the user has logged in."""
    token = make_token(DEVICE_PURPOSE, {"e": user.email, "n": secrets.token_urlsafe(12)})
    response.set_cookie(
        _device_cookie_name(),
        token,
        max_age=DEVICE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        path="/",
    )
