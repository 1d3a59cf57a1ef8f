"""Server-side login sessions: the cookie holds a random key, the database its digest.

Logging out deletes the row, so a copy of the old cookie no longer works; changing the
password deletes every other row of the user.
"""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Request, g, has_request_context, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature
from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.orm import contains_eager, lazyload

from inclusive.auth.models import AuthSession, User, hash_session_key
from inclusive.extensions import db
from inclusive.partners.models import PartnerMembership
from inclusive.tenancy.models import Membership, Organization
from inclusive.tenancy.scope import ALL_TENANTS
from inclusive.timeutil import utcnow

#: A login lasts at most this long, however active; the cookie itself expires when idle.
MAX_SESSION_AGE = timedelta(days=14)
#: An unchanged permanent cookie is signed anew (its idle expiry pushed back) at most this
#: often, not on every request.
COOKIE_REFRESH_INTERVAL = timedelta(minutes=1)


def start_session(user: User) -> AuthSession:
    """Create a login session for the user and attach it (its key goes into the cookie)."""
    key = secrets.token_urlsafe(32)
    row = AuthSession(
        id=hash_session_key(key),
        user=user,
        ip_address=(request.remote_addr or "")[:45] if has_request_context() else None,
        user_agent=(request.user_agent.string or "")[:255] if has_request_context() else None,
    )
    row.key = key
    db.session.add(row)
    user.auth_session = row
    user.last_login_at = utcnow()
    return row


def load_session(key: str) -> User | None:
    """Return the active user of a session key, or None when the session is gone or stale.

    On a staff page (``/o/<slug>/...``) the user's memberships come in the same query: the
    page needs them at once (``g.session_memberships``, taken by the organization's entry
    point), and a round trip fewer is a good part of what a small page costs."""
    if not key or len(key) > 100:
        return None
    digest = hash_session_key(key)
    memberships, partner_member = None, True
    if has_request_context() and g.get("org_slug") is not None:
        row, memberships, partner_member = _session_with_memberships(digest)
    else:
        row = db.session.get(AuthSession, digest)
    if row is None or not row.user.active:
        return None
    if utcnow() - row.created_at > MAX_SESSION_AGE:
        return None
    row.key = key
    row.user.auth_session = row
    if memberships is not None:
        g.session_memberships, g.session_partner_member = memberships, partner_member
    return row.user


def _session_with_memberships(
    digest: str,
) -> tuple[AuthSession | None, list[Membership], bool]:
    """The session row (with its user), the user's memberships by organization name, as
    ``memberships_of`` gives them (this spans tenants by design), and whether the user works
    for a capital partner too, in one query."""
    rows = db.session.execute(_session_with_memberships_query(), {"digest": digest}).all()
    if not rows:
        return None, [], True
    memberships = [membership for _row, membership, _partner in rows if membership is not None]
    return rows[0][0], memberships, bool(rows[0][2])


@functools.cache
def _session_with_memberships_query() -> Any:
    """The statement, built once: building it (joins, loader options) cost as much Python
    as running it, on every staff request. Statements are immutable; the digest is bound."""
    partner_member = (
        exists().where(PartnerMembership.user_id == AuthSession.user_id).label("partner_member")
    )
    return (
        select(AuthSession, Membership, partner_member)
        .outerjoin(Membership, Membership.user_id == AuthSession.user_id)
        .outerjoin(Organization, Organization.id == Membership.org_id)
        # The membership's user is the session's: found in the session, not joined again.
        .options(contains_eager(Membership.organization), lazyload(Membership.user))
        .where(AuthSession.id == bindparam("digest"))
        .order_by(Organization.name)
        .execution_options(**ALL_TENANTS)
    )


def end_session(user: User) -> None:
    """Delete the session this request is authenticated by."""
    if user.auth_session is not None:
        db.session.execute(delete(AuthSession).where(AuthSession.id == user.auth_session.id))
        user.auth_session = None


def end_other_sessions(user: User) -> int:
    """Delete every session of the user but the current one; return how many ended."""
    query = delete(AuthSession).where(AuthSession.user_id == user.id)
    if user.auth_session is not None:
        query = query.where(AuthSession.id != user.auth_session.id)
    return db.session.execute(query).rowcount or 0


def _fresh_cookie_session() -> None:
    # A new cookie session at every login and logout: nothing carries over but the language.
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language


def log_in(user: User) -> None:
    """Log the user in on this browser with a new session (no session fixation)."""
    _fresh_cookie_session()
    start_session(user)
    login_user(user)
    session.permanent = True


def log_out() -> None:
    """Log out of this browser; a replayed copy of the old cookie stops working too."""
    if current_user.is_authenticated:
        end_session(current_user)
    logout_user()
    _fresh_cookie_session()


class CookieSession(SecureCookieSession):
    """Flask's signed cookie session, knowing when its cookie was signed."""

    signed_at: datetime | None = None


class ThrottledRefreshSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, with the idle refresh of a permanent session's cookie
    done at most every ``COOKIE_REFRESH_INTERVAL`` rather than on every request.

    Flask re-signs and re-sends the cookie of every request of a permanent session (to push
    its expiry back), a good share of what a small page costs. Skipping it while the cookie
    is younger than the interval lets an idle session expire that much earlier at most
    (``PERMANENT_SESSION_LIFETIME``, checked on the signature's timestamp as before), never
    later; a changed session is saved at once, as before."""

    session_class = CookieSession

    def open_session(self, app: Flask, request: Request) -> CookieSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        opened = self.session_class(data)
        opened.signed_at = signed_at
        return opened

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        signed_at = getattr(session, "signed_at", None)
        return signed_at is None or datetime.now(UTC) - signed_at >= COOKIE_REFRESH_INTERVAL
