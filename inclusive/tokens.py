"""Signed, expiring tokens for links sent by e-mail and for cookies."""

from __future__ import annotations

from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class InvalidToken(Exception):
    """The token is forged, malformed or expired."""


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"inclusive.{purpose}")


def make_token(purpose: str, payload: dict[str, Any]) -> str:
    """Sign a payload for one purpose (a token for one purpose is useless for another)."""
    return _serializer(purpose).dumps(payload)


def read_token(purpose: str, token: str, max_age: int) -> dict[str, Any]:
    """Return the payload of a token no older than ``max_age`` seconds, or raise InvalidToken."""
    if not token or len(token) > 1000:
        raise InvalidToken("malformed")
    try:
        payload = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise InvalidToken("expired") from exc
    except (BadSignature, ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken("bad signature") from exc
    if not isinstance(payload, dict):
        raise InvalidToken("malformed")
    return payload
