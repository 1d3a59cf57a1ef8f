"""The layout's header menus, rendered once per distinct input rather than on every page.

The organization switcher and the main navigation are the same on every page a member
opens in one organization and section: two dozen links and words, which cost a staff page
about a tenth of its time when rendered each time. :func:`header_menus` renders them from
explicit inputs only (the names, slugs and roles shown, the section, two permissions, the
language, the script root); the fragment template sees nothing else. Each app keeps the
markup in a bounded cache keyed by those inputs: a renamed organization, a new role or
another language is another key, so nothing stale is ever shown, and two members with the
same organizations and role share the same markup, which holds nothing personal.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from flask import current_app, g, request
from markupsafe import Markup

from inclusive.presentation import _label, _locale_name
from inclusive.tenancy.roles import ROLE_LABELS, Permission, Role
from inclusive.tenancy.web import can

#: Distinct header menus kept per app (a few kilobytes each).
CACHE_SIZE = 4096

#: The navigation item marked as the current page: by blueprint, then by endpoint.
_SECTION_BY_BLUEPRINT = {
    "programs": "programs",
    "producers": "producers",
    "imports": "imports",
    "referrals": "referrals",
    "partners": "partners",
}
_SECTION_BY_ENDPOINT = {"org.home": "home", "org.members": "members", "org.settings": "settings"}


class MenuInputs(NamedTuple):
    """Everything the header menus show; the fragment template is given these and no more."""

    locale: str
    script_root: str
    organizations: tuple[tuple[str, str, str, bool], ...]  # slug, name, role label, current
    partners: tuple[tuple[str, str, str, bool], ...]
    current_name: str | None
    org_slug: str | None
    section: str | None
    may_import: bool
    may_manage: bool
    signup: bool


def header_menus(memberships: Sequence[Any], partner_memberships: Sequence[Any]) -> Markup:
    """The switcher and the main navigation of the current request (logged in)."""
    from inclusive.partners.services import PARTNER_ROLE_LABELS

    org, partner = g.get("org"), g.get("partner")
    inputs = MenuInputs(
        locale=_locale_name(),
        script_root=request.script_root,
        organizations=tuple(
            (
                m.organization.slug,
                m.organization.name,
                _label(ROLE_LABELS, Role, m.role),
                org is not None and org.id == m.org_id,
            )
            for m in memberships
        ),
        partners=tuple(
            (
                pm.partner.slug,
                pm.partner.name,
                str(PARTNER_ROLE_LABELS.get(pm.role, pm.role)),
                partner is not None and partner.id == pm.partner_id,
            )
            for pm in partner_memberships
        ),
        current_name=org.name if org is not None else (partner.name if partner else None),
        org_slug=org.slug if org is not None else None,
        section=_SECTION_BY_BLUEPRINT.get(request.blueprint or "")
        or _SECTION_BY_ENDPOINT.get(request.endpoint or ""),
        may_import=can(Permission.MANAGE_PRODUCERS) or can(Permission.RECORD),
        may_manage=can(Permission.MANAGE_ORGANIZATION),
        signup=bool(current_app.config.get("SIGNUP_ENABLED")),
    )
    return _renderer()(inputs)


def _renderer() -> Callable[[MenuInputs], Markup]:
    extensions = current_app.extensions
    render = extensions.get("inclusive.header_menus")
    if render is None:
        template_name = "layout/_header_menus.html"
        env = current_app.jinja_env

        @functools.lru_cache(maxsize=CACHE_SIZE)
        def render(inputs: MenuInputs) -> Markup:
            # The template is fetched at each miss, in the language of the request.
            return Markup(env.get_template(template_name).render(inputs._asdict()))  # noqa: S704 (autoescaped template)

        extensions["inclusive.header_menus"] = render
    return render
