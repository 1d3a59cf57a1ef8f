"""The staff entry point: ``/o/<org-slug>/...`` resolves the organization, once.

Every staff blueprint is made by :func:`org_blueprint`. Before any of its views runs, the
visitor must be logged in (else: sent to log in), must be a member of the organization in
the URL (else: 404, whether or not it exists), and the organization becomes the tenant
scope of the request. :func:`requires` then answers 403 to a role without the permission.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Blueprint, abort, g, request, session
from flask_login import current_user

from inclusive.extensions import db, login_manager
from inclusive.tenancy.models import Membership, Organization
from inclusive.tenancy.roles import Permission, role_can
from inclusive.tenancy.scope import enter_tenant, require_org_id
from inclusive.tenancy.services import memberships_of

if TYPE_CHECKING:
    from inclusive.auth.sessions import OrganizationRef

F = TypeVar("F", bound=Callable[..., Any])


def org_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    """Create a blueprint whose routes live under ``/o/<org_slug>`` and act for that org."""
    bp = Blueprint(name, import_name, url_prefix="/o/<org_slug>" + url_prefix)
    bp.url_value_preprocessor(_take_org_slug)
    bp.before_request(_enter_organization)
    bp.url_defaults(_add_org_slug)
    return bp


def _take_org_slug(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.org_slug = (values or {}).pop("org_slug", None)


def _enter_organization() -> Any:
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    slug = g.get("org_slug") or ""
    # One query for all the user's memberships: the current one, and the switcher's list
    # (usually loaded with the login session, in the same query: see load_session).
    memberships = g.pop("session_memberships", None)
    if memberships is None:
        memberships = memberships_of(current_user) if len(slug) <= 40 else []
    elif not g.pop("session_partner_member", True) and request.method in ("GET", "HEAD"):
        # The same query found no capital partner the user works for: the header's list of
        # them is empty, with no query of its own (a page that only shows, not changes).
        g.my_partner_memberships = []
    g.my_memberships = memberships
    membership = next((m for m in g.my_memberships if m.organization.slug == slug), None)
    if membership is None:
        abort(404)
    g.membership = membership
    g.org = membership.organization
    enter_tenant(membership.org_id)
    if session.get("last_org") != slug:  # written only on change: no new cookie per request
        session["last_org"] = slug


def _add_org_slug(endpoint: str, values: dict[str, Any]) -> None:
    if "org_slug" not in values and "org" in g:
        values["org_slug"] = g.org.slug


def to_id(value: str | None) -> int | None:
    """A submitted id as an int, or None when it is empty, malformed or out of range."""
    value = (value or "").strip()
    return int(value) if value.isdigit() and 0 < int(value) <= MAX_ID else None


def form_ids(name: str) -> set[int]:
    """The ids posted under ``name``; malformed or out-of-range values are left out."""
    return {ident for ident in map(to_id, request.form.getlist(name)) if ident is not None}


def page_number() -> int:
    """The ``page`` query argument, within 1..MAX_PAGE."""
    return min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)


def current_org() -> OrganizationRef:
    """The organization of the current staff request, as the login read found it (its id,
    slug, name, country, language, currency)."""
    return g.org


def current_org_entity() -> Organization:
    """The organization of the current staff request as an ORM entity, to change it or hand
    it to a service (one primary-key read, the first time in a request)."""
    return db.session.get(Organization, g.org.id)


def current_membership() -> Membership:
    """The current user's membership in the organization of the request."""
    return g.membership


def can(permission: Permission) -> bool:
    """Tell whether the current member has a permission (for templates and views)."""
    membership = g.get("membership")
    return membership is not None and role_can(membership.role, permission)


def requires(permission: Permission) -> Callable[[F], F]:
    """Answer 403 unless the current member's role carries the permission."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


M = TypeVar("M")


MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database
MAX_PAGE = 10_000


def load_or_404(model: type[M], ident: Any, options: Sequence[Any] = ()) -> M:
    """Load a tenant row of the organization in scope by id, or answer 404 (``options``:
    loader options of the query, such as a related collection joined in)."""
    if not isinstance(ident, int) or not 0 < ident <= MAX_ID:
        abort(404)
    obj = db.session.get(model, ident, options=options or None)
    # session.get may return a row already in the identity map: check its owner again.
    if obj is None or getattr(obj, "org_id", None) != require_org_id():
        abort(404)
    return obj
