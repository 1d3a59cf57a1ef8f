"""The partner entry point: ``/p/<partner-slug>/...`` resolves the capital partner, once.

Mirrors :func:`inclusive.tenancy.web.org_blueprint`: before any view of a blueprint made by
:func:`partner_blueprint` runs, the visitor must be logged in (else: sent to log in) and a
user of the partner in the URL (else: 404, whether or not it exists). No organization is in
scope on these pages: a partner reads only what its services fetch for it explicitly.
:func:`requires_partner_role` then answers 403 to a role without the right.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, abort, g
from flask_login import current_user

from inclusive.extensions import login_manager
from inclusive.partners.models import CapitalPartner, PartnerMembership, PartnerRole
from inclusive.partners.services import partner_memberships_of
from inclusive.tenancy.scope import enter_tenant

F = TypeVar("F", bound=Callable[..., Any])


def partner_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    """Create a blueprint whose routes live under ``/p/<partner_slug>`` and act for it."""
    bp = Blueprint(name, import_name, url_prefix="/p/<partner_slug>" + url_prefix)
    bp.url_value_preprocessor(_take_partner_slug)
    bp.before_request(_enter_partner)
    bp.url_defaults(_add_partner_slug)
    return bp


def _take_partner_slug(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.partner_slug = (values or {}).pop("partner_slug", None)


def _enter_partner() -> Any:
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    slug = g.get("partner_slug") or ""
    g.my_partner_memberships = partner_memberships_of(current_user) if len(slug) <= 40 else []
    membership = next((m for m in g.my_partner_memberships if m.partner.slug == slug), None)
    if membership is None:
        abort(404)
    g.partner_membership = membership
    g.partner = membership.partner
    enter_tenant(None)  # a partner acts for no organization


def _add_partner_slug(endpoint: str, values: dict[str, Any]) -> None:
    if "partner_slug" not in values and "partner" in g:
        values["partner_slug"] = g.partner.slug


def current_partner() -> CapitalPartner:
    """The capital partner of the current partner-side request."""
    return g.partner


def current_partner_membership() -> PartnerMembership:
    """The current user's role at the partner of the request."""
    return g.partner_membership


def has_partner_role(*roles: PartnerRole) -> bool:
    """Tell whether the current partner user has one of these roles (templates, views)."""
    membership = g.get("partner_membership")
    return membership is not None and membership.role in roles


def requires_partner_role(*roles: PartnerRole) -> Callable[[F], F]:
    """Answer 403 unless the current partner user has one of these roles."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not has_partner_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_partner_roles = roles  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator
