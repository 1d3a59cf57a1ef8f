"""A staff page loads the login session, the memberships and the partner flag in one query."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from inclusive.extensions import db
from inclusive.partners.models import PartnerRole
from inclusive.partners.services import add_partner_user, create_partner
from inclusive.tenancy import web
from inclusive.tenancy.scope import tenant_scope
from tests import factories


@pytest.fixture
def statements(app):
    """The SQL statements the next requests send."""
    sent: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


def test_memberships_come_with_the_session_on_a_staff_page(
    client, login_as, org, other_org, statements, monkeypatch
):
    user = login_as("admin")
    with tenant_scope(other_org.id):
        factories.MembershipFactory(user=user, organization=other_org, role="viewer")
    db.session.commit()
    monkeypatch.setattr(web, "memberships_of", lambda user: pytest.fail("a second query"))
    statements.clear()
    page = client.get("/o/acme/producers/")
    assert page.status_code == 200
    assert 'href="/o/acme/"' in page.text and 'href="/o/other-org/"' in page.text
    sessions = [s for s in statements if "auth_sessions" in s]
    assert len(sessions) == 1 and "memberships" in sessions[0]
    assert not [s for s in statements if s.lstrip().startswith("SELECT partner_memberships")]


def test_a_member_of_another_organization_is_still_refused(client, login_as, other_org):
    login_as("admin")
    assert client.get("/o/other-org/producers/").status_code == 404


def test_a_partner_user_sees_their_partners_on_a_staff_page(client, login_as, org):
    user = login_as("admin")
    partner = create_partner(slug="andina", name="Microfinanciera Andina", kind="mfi")
    add_partner_user(partner, user, PartnerRole.PARTNER_ADMIN)
    db.session.commit()
    page = client.get("/o/acme/producers/")
    assert 'href="/p/andina/"' in page.text and "Microfinanciera Andina" in page.text


def test_a_staff_page_without_a_session_sends_to_login(client, org):
    response = client.get("/o/acme/producers/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
