"""Sign-up, organizations, members and invitations, through the pages a user sees."""

from __future__ import annotations

import email
import re
from email import policy

import pytest
from sqlalchemy import select

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.tenancy import services
from inclusive.tenancy.models import Invitation, Membership, Organization
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.conftest import membership_of

SIGNUP = {
    "name": "Rosa Quispe",
    "email": "rosa@andes.example",
    "password": "river-lantern-orchard-42",
    "org_name": "Andes Emprende",
    "slug": "",
    "country": "PE",
    "language": "es",
    "currency": "PEN",
}


def _org(slug: str) -> Organization | None:
    return db.session.scalar(select(Organization).filter_by(slug=slug))


def _invitation_path(mail_dir) -> str:
    newest = sorted(mail_dir.glob("*.eml"))[-1]
    message = email.message_from_bytes(newest.read_bytes(), policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"http://testserver\.local(/invitations/\S+)", text).group(1)


class TestSignUp:
    def test_creates_the_organization_with_its_first_admin(self, client):
        response = client.post("/signup", data=SIGNUP)
        assert response.status_code == 302
        assert response.headers["Location"] == "/o/andes-emprende/"
        org = _org("andes-emprende")
        user = db.session.scalar(select(User).filter_by(email="rosa@andes.example"))
        assert membership_of(user, org).role == Role.ADMIN
        assert client.get("/o/andes-emprende/").status_code == 200

    def test_errors_are_shown_next_to_fields_and_typed_values_kept(self, client):
        factories.OrganizationFactory(slug="taken")
        factories.UserFactory(email="used@example.org")
        data = {**SIGNUP, "email": "used@example.org", "slug": "taken", "password": "short"}
        response = client.post("/signup", data=data)
        assert response.status_code == 200
        assert 'value="Rosa Quispe"' in response.text
        assert 'value="Andes Emprende"' in response.text
        assert "short" not in re.findall(r'type="password"[^>]*', response.text)[0]
        bad_slug = client.post("/signup", data={**SIGNUP, "slug": "Not A Slug!"})
        assert "lowercase letters" in bad_slug.text
        taken = client.post("/signup", data={**SIGNUP, "slug": "taken"})
        assert "already taken" in taken.text
        used = client.post("/signup", data={**SIGNUP, "email": "used@example.org"})
        assert "already exists" in used.text
        assert _org("andes-emprende") is None  # nothing half-written

    def test_can_be_turned_off(self, app, client):
        app.config["SIGNUP_ENABLED"] = False
        try:
            assert client.get("/signup").status_code == 404
            assert client.post("/signup", data=SIGNUP).status_code == 404
        finally:
            app.config["SIGNUP_ENABLED"] = True

    def test_a_logged_in_user_creates_another_organization(self, client, login_as, org):
        user = login_as("viewer")
        data = {k: SIGNUP[k] for k in ("org_name", "country", "language", "currency")}
        response = client.post("/signup", data={**data, "slug": "second"})
        assert response.headers["Location"] == "/o/second/"
        assert membership_of(user, _org("second")).role == Role.ADMIN
        assert membership_of(user, org).role == Role.VIEWER


class TestMembers:
    def test_admin_changes_a_role(self, client, login_as, make_member, org):
        login_as("admin")
        colleague = make_member("viewer")
        membership = membership_of(colleague, org)
        client.post(f"/o/{org.slug}/members/{membership.id}/role", data={"role": "program_manager"})
        db.session.expire_all()
        assert membership_of(colleague, org).role == Role.PROGRAM_MANAGER

    def test_the_last_admin_can_be_neither_removed_nor_demoted(self, client, login_as, org):
        admin = login_as("admin")
        membership = membership_of(admin, org)
        response = client.post(
            f"/o/{org.slug}/members/{membership.id}/role",
            data={"role": "viewer"},
            follow_redirects=True,
        )
        assert "at least one administrator" in response.text
        response = client.post(
            f"/o/{org.slug}/members/{membership.id}/remove", follow_redirects=True
        )
        assert "at least one administrator" in response.text
        db.session.expire_all()
        assert membership_of(admin, org).role == Role.ADMIN

    def test_with_two_admins_one_may_leave(self, client, login_as, make_member, org):
        admin = login_as("admin")
        make_member("admin")
        membership = membership_of(admin, org)
        response = client.post(f"/o/{org.slug}/members/{membership.id}/remove")
        assert response.headers["Location"] == "/"
        db.session.expunge_all()  # the request used a session of its own
        with tenant_scope(org.id):
            assert db.session.get(Membership, membership.id) is None

    def test_services_refuse_the_last_admin_too(self, org, make_member):
        admin = make_member("admin")
        with tenant_scope(org.id):
            membership = membership_of(admin, org)
            with pytest.raises(services.MembershipError):
                services.remove_member(membership)
            with pytest.raises(services.MembershipError):
                services.change_role(membership, Role.VIEWER)


class TestInvitations:
    def test_invite_accept_as_a_new_user(self, app, client, login_as, org, mail_dir):
        login_as("admin")
        response = client.post(
            f"/o/{org.slug}/members/invite",
            data={"email": "New.Person@Example.org", "role": "field_officer"},
        )
        assert response.status_code == 302
        path = _invitation_path(mail_dir)
        client.post("/logout")

        page = client.get(path)
        assert page.status_code == 200
        assert "new.person@example.org" in page.text
        password = "copper-valley-sunrise-58"
        response = client.post(
            path, data={"name": "New Person", "password": password, "confirm": password}
        )
        assert response.status_code == 302
        assert response.headers["Location"] == f"/o/{org.slug}/"
        user = db.session.scalar(select(User).filter_by(email="new.person@example.org"))
        assert membership_of(user, org).role == Role.FIELD_OFFICER
        # The link is used up.
        client.post("/logout")
        assert client.get(path).status_code == 400

    def test_an_existing_user_logs_in_then_joins(
        self, client, login, login_as, org, other_org, mail_dir
    ):
        existing = factories.UserFactory(email="known@example.org")
        with tenant_scope(other_org.id):
            factories.MembershipFactory(user=existing, organization=other_org, role="viewer")
        login_as("admin")
        client.post(
            f"/o/{org.slug}/members/invite", data={"email": "known@example.org", "role": "viewer"}
        )
        path = _invitation_path(mail_dir)
        client.post("/logout")
        assert "Log in to accept" in client.get(path).text
        login(existing)
        assert client.post(path).headers["Location"] == f"/o/{org.slug}/"
        assert membership_of(existing, org).role == Role.VIEWER

    def test_someone_else_cannot_accept(self, client, login, login_as, org, mail_dir):
        login_as("admin")
        client.post(
            f"/o/{org.slug}/members/invite", data={"email": "target@example.org", "role": "viewer"}
        )
        path = _invitation_path(mail_dir)
        intruder = factories.UserFactory(email="intruder@example.org")
        login(intruder)
        assert "this invitation is for target@example.org" in client.get(path).text
        client.post(path, follow_redirects=True)
        with tenant_scope(org.id):
            assert db.session.scalar(select(Membership).filter_by(user_id=intruder.id)) is None

    def test_revoked_and_resent_links_stop_working(self, client, login_as, org, mail_dir):
        login_as("admin")
        client.post(
            f"/o/{org.slug}/members/invite", data={"email": "x@example.org", "role": "viewer"}
        )
        first = _invitation_path(mail_dir)
        with tenant_scope(org.id):
            invitation = db.session.scalar(select(Invitation).filter_by(email="x@example.org"))
            invitation_id = invitation.id
        client.post(f"/o/{org.slug}/invitations/{invitation_id}/resend")
        second = _invitation_path(mail_dir)
        assert first != second
        assert client.get(first).status_code == 400
        assert client.get(second).status_code == 200
        client.post(f"/o/{org.slug}/invitations/{invitation_id}/revoke")
        assert client.get(second).status_code == 400

    def test_inviting_a_member_again_is_refused(self, client, login_as, make_member, org):
        login_as("admin")
        make_member("viewer", email="member@example.org")
        response = client.post(
            f"/o/{org.slug}/members/invite", data={"email": "member@example.org", "role": "viewer"}
        )
        assert response.status_code == 400
        assert "already a member" in response.text
        assert 'value="member@example.org"' in response.text

    def test_expired_invitation(self, app, client, login_as, org, mail_dir):
        login_as("admin")
        client.post(
            f"/o/{org.slug}/members/invite", data={"email": "late@example.org", "role": "viewer"}
        )
        path = _invitation_path(mail_dir)
        app.config["INVITATION_MAX_AGE"] = -1
        try:
            assert client.get(path).status_code == 400
        finally:
            app.config["INVITATION_MAX_AGE"] = 7 * 24 * 3600


def test_members_page_lists_members_for_every_role(client, login_as, make_member, org):
    make_member("field_officer", name="Lucía Huamán")
    login_as("viewer")
    page = client.get(f"/o/{org.slug}/members")
    assert "Lucía Huamán" in page.text
    assert "Send invitation" not in page.text  # viewers do not manage members


def test_settings_keep_typed_values_on_error(client, login_as, org):
    login_as("admin")
    response = client.post(
        f"/o/{org.slug}/settings",
        data={"name": "", "country": "XX", "language": "es", "currency": "PEN"},
    )
    assert response.status_code == 400
    response = client.post(
        f"/o/{org.slug}/settings",
        data={"name": "Acme Renamed", "country": "BR", "language": "pt", "currency": "BRL"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert _org(org.slug).currency == "BRL"


def test_switching_organizations(client, login, org, other_org):
    user = factories.UserFactory()
    for target, role in ((org, "admin"), (other_org, "viewer")):
        with tenant_scope(target.id):
            factories.MembershipFactory(user=user, organization=target, role=role)
    login(user)
    assert client.get("/").headers["Location"] == "/orgs"
    page = client.get(f"/o/{org.slug}/")
    assert other_org.name in page.text  # in the switcher
    assert client.get("/").headers["Location"] == f"/o/{org.slug}/"  # the last one used
    client.get(f"/o/{other_org.slug}/")
    assert client.get("/").headers["Location"] == f"/o/{other_org.slug}/"
