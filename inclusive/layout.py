"""The layout (its head, header and footer) and the header menus, rendered once per
distinct input rather than on every page.

The organization switcher and the main navigation are the same on every page a member
opens in one organization and section: two dozen links and words, which cost a staff page
about a tenth of its time when rendered each time. :func:`header_menus` renders them from
explicit inputs only (the names, slugs and roles shown, the section, two permissions, the
language, the script root); the fragment template sees nothing else. Each app keeps the
markup in a bounded cache keyed by those inputs: a renamed organization, a new role or
another language is another key, so nothing stale is ever shown, and two members with the
same organizations and role share the same markup, which holds nothing personal.

The rest of the layout (``templates/layout/_chrome.html``: the head, the user menu, the
language switch) is kept the same way by :func:`page_chrome`, keyed by the language, the
signed-in user's name, the header menus and two settings; what differs between two requests
of the same key (the CSRF token, the address to come back to) is written into the kept
markup at each request, escaped, and the page's title, flash messages and content go
between its parts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from flask import current_app, g, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

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


#: Stand-ins written into the kept layout, replaced at each request (no markup has them).
_TITLE, _CONTENT, _CSRF, _NEXT = "\x00title\x00", "\x00content\x00", "\x00csrf\x00", "\x00next\x00"


class ChromeInputs(NamedTuple):
    """Everything the layout shows but the page's own parts and the per-request values."""

    locale: str
    script_root: str
    user_name: str | None  # None: not logged in
    menus: str
    signup: bool
    dev_mail: bool


class Chrome(NamedTuple):
    """The layout of the current request in three parts: before the title, between the
    title and the flash messages, after the content."""

    head: Markup
    header: Markup
    footer: Markup


def page_chrome(
    memberships: Callable[[], Sequence[Any]], partner_memberships: Callable[[], Sequence[Any]]
) -> Chrome:
    """The layout's parts for the current request (``base.html``), CSRF token and return
    address written in."""
    authenticated = current_user.is_authenticated
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    inputs = ChromeInputs(
        locale=_locale_name(),
        script_root=request.script_root,
        user_name=current_user.name if authenticated else None,
        menus=str(header_menus(memberships(), partner_memberships())) if authenticated else "",
        signup=bool(app.config.get("SIGNUP_ENABLED")),
        dev_mail="dev" in app.blueprints,
    )
    head, header, footer = _chrome_renderer()(inputs)
    token = str(escape(generate_csrf()))
    back = str(escape(request.full_path)) if request.method == "GET" else ""
    return Chrome(
        head,
        Markup(header.replace(_CSRF, token)),  # noqa: S704 (kept markup, escaped values)
        Markup(footer.replace(_CSRF, token).replace(_NEXT, back)),  # noqa: S704 (as above)
    )


def _chrome_renderer() -> Callable[[ChromeInputs], tuple[Markup, str, str]]:
    extensions = current_app.extensions
    render = extensions.get("inclusive.chrome")
    if render is None:
        env = current_app.jinja_env

        @functools.lru_cache(maxsize=CACHE_SIZE)
        def render(inputs: ChromeInputs) -> tuple[Markup, str, str]:
            # The template is fetched at each miss, in the language of the request.
            context = inputs._asdict()
            context.update(
                authenticated=inputs.user_name is not None,
                menus=Markup(inputs.menus),  # noqa: S704 (header_menus' own markup)
                TITLE=_TITLE,
                CONTENT=_CONTENT,
                CSRF=_CSRF,
                NEXT=_NEXT,
            )
            page = env.get_template("layout/_chrome.html").render(context)
            head, rest = page.split(_TITLE)
            header, footer = rest.split(_CONTENT)
            return Markup(head), header, footer  # noqa: S704 (autoescaped template)

        extensions["inclusive.chrome"] = render
    return render
