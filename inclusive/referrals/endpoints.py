"""A capital partner's machine access: its webhook endpoint and its API tokens.

A partner has at most one :class:`WebhookEndpoint`. Its address is checked with
:func:`inclusive.referrals.webhooks.check_url` (no private or loopback address unless the
platform allows that host); its signing secret is shown once, when it is made, and a
rotation keeps the previous secret valid for ``WEBHOOK_ROTATION_HOURS``. Setting the
address again turns an endpoint disabled by a ``410 Gone`` back on.

API tokens read ``ivp_<prefix>_<secret>``; only their SHA-256 is kept, so a token is shown
once, when it is created, and found again by the hash of what a client presents.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.partners.models import CapitalPartner
from inclusive.referrals import webhooks
from inclusive.referrals.models import ApiToken, WebhookEndpoint
from inclusive.refusals import Refused
from inclusive.timeutil import utcnow

TOKEN_PREFIX = "ivp"  # noqa: S105 -- the prefix of every token, not a token
#: ``ivp_`` + 8 hex characters (shown in lists) + ``_`` + the secret (token_urlsafe(32)).
TOKEN_PATTERN = re.compile(r"^ivp_([0-9a-f]{8})_([A-Za-z0-9_-]{32,100})$")
MAX_TOKEN_NAME = 80
#: ``last_used_at`` is written at most this often per token.
TOUCH_EVERY = timedelta(minutes=1)


class EndpointError(Refused):
    """A webhook or token change that is refused; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# The webhook endpoint ----------------------------------------------------------------------


def endpoint_of(partner: CapitalPartner) -> WebhookEndpoint | None:
    """The partner's webhook endpoint, or None when it has set none."""
    return db.session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.partner_id == partner.id)
    )


def check_endpoint_url(url: str) -> str:
    """The address, stripped, or :class:`EndpointError` saying why it is refused."""
    url = (url or "").strip()
    try:
        webhooks.check_url(url, current_app.config["WEBHOOK_ALLOWED_HOSTS"])
    except webhooks.WebhookUrlError as exc:
        raise EndpointError(str(exc), "url") from exc
    return url


def set_endpoint(partner: CapitalPartner, url: str) -> tuple[WebhookEndpoint, str | None]:
    """Create or change the partner's webhook; return it and its secret when it is new.

    Changing the address of an endpoint keeps its secret (returned as None) and turns it
    back on if the receiver had disabled it with a 410.
    """
    url = check_endpoint_url(url)
    endpoint = endpoint_of(partner)
    if endpoint is None:
        secret = webhooks.new_secret()
        endpoint = WebhookEndpoint(partner_id=partner.id, url=url, secret=secret, enabled=True)
        db.session.add(endpoint)
        db.session.flush()
        return endpoint, secret
    endpoint.url = url
    endpoint.enabled = True
    endpoint.disabled_reason = ""
    endpoint.updated_at = utcnow()
    db.session.flush()
    return endpoint, None


def remove_endpoint(partner: CapitalPartner) -> bool:
    """Delete the partner's webhook; False when there was none."""
    endpoint = endpoint_of(partner)
    if endpoint is None:
        return False
    db.session.delete(endpoint)
    db.session.flush()
    return True


def rotate_secret(partner: CapitalPartner) -> tuple[WebhookEndpoint, str]:
    """Give the webhook a new secret; the previous one still signs for a while.

    Deliveries are signed with both secrets until ``previous_secret_until`` (now plus
    ``WEBHOOK_ROTATION_HOURS``), so the receiver can switch without losing any.
    """
    endpoint = endpoint_of(partner)
    if endpoint is None:
        raise EndpointError(_("Set the webhook address first."), "url")
    secret = webhooks.new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = utcnow() + timedelta(
        hours=current_app.config["WEBHOOK_ROTATION_HOURS"]
    )
    endpoint.secret = secret
    endpoint.updated_at = utcnow()
    db.session.flush()
    return endpoint, secret


def previous_secret_valid_until(endpoint: WebhookEndpoint) -> datetime | None:
    """When the previous secret stops signing, if a rotation is under way."""
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until and until > utcnow():
        return until
    return None


# API tokens --------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(partner: CapitalPartner, name: str, actor: User | None) -> tuple[ApiToken, str]:
    """Create a token for the partner; return the row and the token (shown once)."""
    name = " ".join((name or "").split())
    if not name:
        raise EndpointError(
            _("Give the token a name, such as the system that will use it."), "name"
        )
    if len(name) > MAX_TOKEN_NAME:
        raise EndpointError(
            _("Keep the name under %(count)d characters.", count=MAX_TOKEN_NAME), "name"
        )
    prefix = secrets.token_hex(4)
    plain = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        partner_id=partner.id,
        name=name,
        prefix=prefix,
        token_sha256=token_digest(plain),
        created_by_id=actor.id if actor else None,
    )
    db.session.add(token)
    db.session.flush()
    return token, plain


def tokens_of(partner: CapitalPartner) -> list[ApiToken]:
    """The partner's tokens, active ones first, newest first."""
    query = (
        select(ApiToken)
        .where(ApiToken.partner_id == partner.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return list(db.session.scalars(query))


def token_of(partner: CapitalPartner, token_id: int) -> ApiToken | None:
    """One of the partner's tokens by id, or None (never another partner's)."""
    if not 0 < token_id < 2**31:
        return None
    return db.session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.partner_id == partner.id)
    )


def revoke_token(token: ApiToken) -> bool:
    """Revoke a token at once; False when it was already revoked."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    db.session.flush()
    return True


def active_token(presented: str) -> ApiToken | None:
    """The active token a client presents, found by its hash; None when unknown or revoked."""
    if not TOKEN_PATTERN.match(presented or ""):
        return None
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.token_sha256 == token_digest(presented))
    )
    if token is None or token.revoked_at is not None:
        return None
    return token


def touch_token(token: ApiToken) -> bool:
    """Record that the token was used, at most once per :data:`TOUCH_EVERY`."""
    now = utcnow()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return False
    result = db.session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token.id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - TOUCH_EVERY),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(token, "last_used_at", now)  # written above: nothing to flush
    return bool(result.rowcount)
