"""Server-side login sessions: the cookie holds a random key, the database its digest.

Logging out deletes the row, so a copy of the old cookie no longer works; changing the
password deletes every other row of the user.
"""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from flask import Flask, Request, abort, g, has_request_context, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature
from sqlalchemy import bindparam, delete, exists, select

from inclusive.auth.models import AuthSession, LoginMixin, User, hash_session_key
from inclusive.extensions import db
from inclusive.partners.models import PartnerMembership
from inclusive.tenancy.models import Membership, Organization
from inclusive.tenancy.roles import Role
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


class SessionRef(NamedTuple):
    """The login session a request is authenticated by: its digest and the cookie's key."""

    id: str
    key: str


class OrganizationRef(NamedTuple):
    """An organization as the login read found it (what the pages show of it)."""

    id: int
    slug: str
    name: str
    country: str
    default_language: str
    currency: str
    created_at: datetime


class MembershipRef(NamedTuple):
    """One of the signed-in user's memberships, with its organization."""

    id: int
    user_id: int
    org_id: int
    role: str
    created_at: datetime
    organization: OrganizationRef

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class SignedInUser(LoginMixin):
    """The user of the request's login session, as one Core read found them: what the pages
    show and check (id, e-mail, name, language, whether active) and the session.

    Not an ORM entity: loading the session, the user, their memberships and organizations
    as entities cost a staff page ~0.5 ms of Python on every request, against ~0.15 ms for
    the same row read as values. Code that changes the user, or hands them to a service
    (as an actor, a recorder, an inviter), takes :func:`acting_user`: the entity, read by
    its primary key once per request, only by the requests that need it."""

    def __init__(
        self, id: int, email: str, name: str, locale: str | None, active: bool, session: SessionRef
    ) -> None:
        self.id, self.email, self.name, self.locale, self.active = id, email, name, locale, active
        self.auth_session = session

    def __repr__(self) -> str:
        return f"<SignedInUser {self.email}>"


def acting_user() -> User:
    """The signed-in user as an ORM entity (for changes and services), once per request."""
    signed_in = current_user._get_current_object()  # type: ignore[attr-defined]
    if isinstance(signed_in, User):
        return signed_in
    user = g.get("_acting_user")
    if user is None:
        user = db.session.get(User, signed_in.id)
        if user is None:
            abort(404)
        user.auth_session = signed_in.auth_session
        g._acting_user = user
    return user


def load_session(key: str) -> SignedInUser | None:
    """Return the active user of a session key, or None when the session is gone or stale.

    The user's memberships come in the same query (``g.session_memberships``, taken by the
    organization's entry point on a staff page, ``/o/<slug>/...``): the page needs them at
    once, and a round trip fewer is a good part of what a small page costs."""
    if not key or len(key) > 100:
        return None
    digest = hash_session_key(key)
    rows = db.session.connection().execute(_login_statement(), {"digest": digest}).all()
    if not rows:
        return None
    first = rows[0]
    if not first.active or utcnow() - first.session_created_at > MAX_SESSION_AGE:
        return None
    user = SignedInUser(
        first.user_id, first.email, first.name, first.locale, first.active, SessionRef(digest, key)
    )
    if has_request_context():
        g.session_memberships = [
            MembershipRef(
                row.membership_id,
                row.user_id,
                row.org_id,
                row.role,
                row.membership_created_at,
                OrganizationRef(
                    row.org_id,
                    row.slug,
                    row.org_name,
                    row.country,
                    row.default_language,
                    row.currency,
                    row.org_created_at,
                ),
            )
            for row in rows
            if row.membership_id is not None
        ]
        g.session_partner_member = bool(first.partner_member)
    return user


@functools.cache
def _login_statement() -> Any:
    """The login read: the session, its user, the user's memberships with their
    organizations (by name, as ``memberships_of`` gives them: this spans tenants by design)
    and whether the user works for a capital partner too; explicit columns, built once."""
    s, u = AuthSession.__table__, User.__table__
    m, o = Membership.__table__, Organization.__table__
    partner_member = (
        exists().where(PartnerMembership.__table__.c.user_id == s.c.user_id).label("partner_member")
    )
    return (
        select(
            s.c.created_at.label("session_created_at"),
            u.c.id.label("user_id"),
            u.c.email,
            u.c.name,
            u.c.locale,
            u.c.active,
            m.c.id.label("membership_id"),
            m.c.role,
            m.c.created_at.label("membership_created_at"),
            o.c.id.label("org_id"),
            o.c.slug,
            o.c.name.label("org_name"),
            o.c.country,
            o.c.default_language,
            o.c.currency,
            o.c.created_at.label("org_created_at"),
            partner_member,
        )
        .join(u, u.c.id == s.c.user_id)
        .outerjoin(m, m.c.user_id == s.c.user_id)
        .outerjoin(o, o.c.id == m.c.org_id)
        .where(s.c.id == bindparam("digest"))
        .order_by(o.c.name)
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
