"""Every route of the app, who may use it, and proof that nobody else can.

The matrix is checked against ``app.url_map``: a new route with no entry here fails
``test_every_route_is_in_the_matrix``. For each staff route (``/o/<slug>/...``): an
anonymous visitor is sent to log in, a member of another organization gets 404, a role
without the right gets 403, and a role with it gets through. Partner routes
(``/p/<slug>/...``) are checked the same way with partner roles, and answer 404 to staff
with no role at that partner.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import url_for

from inclusive.extensions import db
from inclusive.milestones.models import Evidence
from inclusive.partners.models import PartnerRole
from inclusive.partners.services import add_partner_user, create_partner
from inclusive.storage import storage
from inclusive.tenancy.models import Invitation, Organization
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.api.routes import API_ROUTES
from tests.consents.routes import CONSENT_ROUTES, consent_for
from tests.partners.routes import PARTNER_ROUTES, partner_rows
from tests.producers.routes import IMPORT_ROUTES, import_batch_for
from tests.referrals.routes import REFERRAL_ROUTES, referral_for
from tests.routes import ADMIN, ALL_ROLES, Rule, org
from tests.workspace_routes import WORKSPACE_ROUTES

MATRIX: dict[str, Rule] = {
    **IMPORT_ROUTES,
    **CONSENT_ROUTES,
    **REFERRAL_ROUTES,
    **PARTNER_ROUTES,
    **WORKSPACE_ROUTES,
    **API_ROUTES,
    "static": Rule("public", args=lambda ctx: {"filename": "css/app.css"}),
    "main.home": Rule("public"),
    "main.health": Rule("public"),
    "auth.login": Rule("public"),
    "auth.logout": Rule("public", method="POST"),
    "auth.signup": Rule("public"),
    "auth.forgot_password": Rule("public"),
    "auth.reset_password": Rule("public", args=lambda ctx: {"token": "not-a-token"}),
    "auth.set_language": Rule("public", method="POST", data={"language": "es"}),
    "auth.account": Rule("login"),
    "auth.change_password": Rule("login", method="POST"),
    "invitations.choose": Rule("login"),
    "invitations.accept": Rule("public", args=lambda ctx: {"token": "not-a-token"}),
    "dev.mailbox": Rule("public"),
    "dev.mail": Rule("public", args=lambda ctx: {"name": "missing.eml"}),
    "org.home": org(ALL_ROLES),
    "org.members": org(ALL_ROLES),
    "org.settings": org(ADMIN),
    "org.invite": org(ADMIN, "POST", data={"email": "new@example.org", "role": "viewer"}),
    "org.change_role": org(
        ADMIN, "POST", args=lambda ctx: {"membership_id": ctx["victim"]}, data={"role": "viewer"}
    ),
    "org.remove_member": org(ADMIN, "POST", args=lambda ctx: {"membership_id": ctx["victim"]}),
    "org.resend_invitation": org(
        ADMIN, "POST", args=lambda ctx: {"invitation_id": ctx["invitation"]}
    ),
    "org.revoke_invitation": org(
        ADMIN, "POST", args=lambda ctx: {"invitation_id": ctx["invitation"]}
    ),
}


def test_every_route_is_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    missing = endpoints - MATRIX.keys()
    stale = MATRIX.keys() - endpoints
    assert not missing, f"Routes with no entry in the route matrix: {sorted(missing)}"
    assert not stale, f"Matrix entries for routes that no longer exist: {sorted(stale)}"


def test_every_matrix_method_is_allowed_by_its_route(app):
    for rule in app.url_map.iter_rules():
        assert MATRIX[rule.endpoint].method in rule.methods, rule.endpoint


@pytest.fixture
def world(make_member):
    """An organization with a victim member and an open invitation; another organization."""
    home = factories.OrganizationFactory(slug="home-org")
    elsewhere = factories.OrganizationFactory(slug="elsewhere")
    victim = make_member("viewer", organization=home)
    with tenant_scope(home.id):
        invitation = factories.InvitationFactory(organization=home)
        victim_membership = victim and _membership_id(victim, home)
    outsider = make_member("admin", organization=elsewhere)
    ctx = {
        "org": home,
        "outsider": outsider,
        "victim": victim_membership,
        "invitation": invitation.id,
        "make_member": make_member,
        "import_batch": import_batch_for(home),
    }
    ctx.update(partner_rows(home))
    ctx["refresh"] = lambda: ctx.update(_workspace(home, make_member))
    ctx["refresh"]()
    return ctx


def _workspace(home: Organization, make_member) -> dict[str, int]:
    """Fresh rows for the workspace routes (each allowed role gets its own to act on)."""
    with tenant_scope(home.id):
        program = factories.make_program(home)
        producer = factories.ProducerFactory()
        enrollment = factories.make_enrollment(program, producer)
        milestone = enrollment.milestones[0]
        evidence = Evidence(
            milestone_id=milestone.id,
            filename="photo.png",
            content_type="image/png",
            size=8,
            storage_key=storage().save(b"\x89PNG\r\n\x1a\n", ".png"),
            sha256="0" * 64,
        )
        db.session.add(evidence)
        db.session.flush()
        victim = make_member("viewer", organization=home)
        consent = consent_for(producer.id)
        return {
            "program": program.id,
            "step": program.steps[-1].id,
            "producer": producer.id,
            "enrollment": enrollment.id,
            "milestone": milestone.id,
            "evidence": evidence.id,
            "consent": consent,
            "referral": referral_for(producer.id, consent),
            "victim": _membership_id(victim, home),
        }


def _membership_id(user, organization: Organization) -> int:
    from tests.conftest import membership_of

    return membership_of(user, organization).id


def _request(client, rule: Rule, url: str):
    if rule.method == "POST":
        return client.post(url, data=rule.data)
    return client.get(url)


def _url(endpoint: str, rule: Rule, ctx: dict[str, Any]) -> str:
    values = rule.args(ctx)
    if rule.audience == "org":
        values["org_slug"] = ctx["org"].slug
    if rule.audience == "partner":
        values["partner_slug"] = ctx["partner_slug"]
    return url_for(endpoint, **values)


ORG_ROUTES = sorted(name for name, rule in MATRIX.items() if rule.audience == "org")
LOGIN_ROUTES = sorted(name for name, rule in MATRIX.items() if rule.audience == "login")
PUBLIC_ROUTES = sorted(name for name, rule in MATRIX.items() if rule.audience == "public")
PARTNER_ROUTE_NAMES = sorted(name for name, rule in MATRIX.items() if rule.audience == "partner")


@pytest.mark.parametrize("endpoint", ORG_ROUTES)
def test_staff_route_guards(endpoint, client, login, world):
    rule = MATRIX[endpoint]
    url = _url(endpoint, rule, world)

    anonymous = _request(client, rule, url)
    assert anonymous.status_code == 302, endpoint
    assert "/login" in anonymous.headers["Location"], endpoint

    login(world["outsider"])
    assert _request(client, rule, url).status_code == 404, f"{endpoint}: another org's member"

    # Roles without the right first, the allowed ones last (they may change state).
    for role in sorted(Role, key=lambda r: r in rule.roles):
        login(world["make_member"](role.value, organization=world["org"]))
        if role in rule.roles:
            world["refresh"]()  # its own rows: an earlier allowed role may have removed them
            url = _url(endpoint, rule, world)
        status = _request(client, rule, url).status_code
        if role in rule.roles:
            # 400: the request reached the view, which refused the (empty) form data.
            assert status in (200, 302, 400), f"{endpoint}: {role} should get through, got {status}"
        else:
            assert status == 403, f"{endpoint}: {role} should get 403, got {status}"


def test_unknown_organization_is_404_even_for_members_of_others(client, login, world):
    login(world["outsider"])
    assert client.get("/o/does-not-exist/").status_code == 404
    assert client.get("/o/" + "x" * 300 + "/").status_code == 404


def test_malformed_ids_in_urls_are_404(client, login, world):
    admin = world["make_member"]("admin", organization=world["org"])
    login(admin)
    assert client.post("/o/home-org/members/abc/role").status_code == 404
    assert client.post("/o/home-org/members/99999999/remove").status_code == 404
    assert client.post("/o/home-org/invitations/-1/revoke").status_code == 404


def test_another_organizations_object_under_my_slug_is_404(client, login, world, make_member):
    """A forged id of another organization's row answers 404, not 403 or success."""
    elsewhere = db.session.scalars(db.select(Organization).filter_by(slug="elsewhere")).one()
    with tenant_scope(elsewhere.id):
        foreign_id = factories.InvitationFactory(organization=elsewhere).id
    login(world["make_member"]("admin", organization=world["org"]))
    response = client.post(f"/o/home-org/invitations/{foreign_id}/revoke")
    assert response.status_code == 404
    with tenant_scope(elsewhere.id):
        assert db.session.get(Invitation, foreign_id).revoked_at is None


@pytest.mark.parametrize("endpoint", LOGIN_ROUTES)
def test_login_routes_send_anonymous_visitors_to_log_in(endpoint, client, login, world):
    rule = MATRIX[endpoint]
    url = _url(endpoint, rule, world)
    response = _request(client, rule, url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    login(world["outsider"])
    assert _request(client, rule, url).status_code in (200, 302, 400)


@pytest.mark.parametrize("endpoint", PUBLIC_ROUTES)
def test_public_routes_answer_anonymous_visitors(endpoint, client, world):
    rule = MATRIX[endpoint]
    response = _request(client, rule, _url(endpoint, rule, world))
    assert response.status_code < 500
    location = response.headers.get("Location", "")
    if endpoint != "main.home":
        assert "/login?" not in location, f"{endpoint} should not require logging in"


@pytest.mark.parametrize("endpoint", PARTNER_ROUTE_NAMES)
def test_partner_route_guards(endpoint, client, login, world):
    """Partner pages: log in first; 404 to everyone but the partner's users; 403 by role."""
    rule = MATRIX[endpoint]
    url = _url(endpoint, rule, world)

    anonymous = _request(client, rule, url)
    assert anonymous.status_code == 302, endpoint
    assert "/login" in anonymous.headers["Location"], endpoint

    other = create_partner(slug="matrix-other", name="Other partner", kind="angel_network")
    login(_partner_user(other, PartnerRole.PARTNER_ADMIN))
    assert _request(client, rule, url).status_code == 404, f"{endpoint}: another partner's user"

    login(world["outsider"])
    assert _request(client, rule, url).status_code == 404, f"{endpoint}: staff, no partner role"
    login(world["make_member"]("admin", organization=world["org"]))
    assert _request(client, rule, url).status_code == 404, f"{endpoint}: partnered org's admin"

    for role in sorted(PartnerRole, key=lambda r: r in rule.roles):
        login(_partner_user(world["partner"], role))
        status = _request(client, rule, url).status_code
        if role in rule.roles:
            assert status in (200, 302, 400), f"{endpoint}: {role} should get through, got {status}"
        else:
            assert status == 403, f"{endpoint}: {role} should get 403, got {status}"


def _partner_user(partner, role: PartnerRole):
    return add_partner_user(partner, factories.UserFactory(), role).user
