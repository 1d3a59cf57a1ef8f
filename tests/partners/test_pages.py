"""Partner pages on both sides: the flow, the refusals, and what a partner may not see."""

from __future__ import annotations

from sqlalchemy import select

from inclusive.extensions import db
from inclusive.partners import services
from inclusive.partners.models import Partnership
from inclusive.tenancy.scope import ALL_TENANTS


def _partnership(org, partner) -> Partnership:
    """The row as it is now (requests commit, which expires what the test holds)."""
    query = select(Partnership).filter_by(org_id=org.id, partner_id=partner.id)
    options = {"populate_existing": True, **ALL_TENANTS}
    return db.session.scalars(query.execution_options(**options)).one()


def test_the_organization_finds_partners_and_reads_one(client, login_as, org, mfi, fund):
    login_as("viewer")
    page = client.get("/o/acme/partners/").get_data(as_text=True)
    assert "Microfinanciera Andina" in page and "Fundo do Sertão" in page
    assert "No partnerships yet" in page
    page = client.get("/o/acme/partners/?kind=local_fund").get_data(as_text=True)
    assert "Fundo do Sertão" in page and "Microfinanciera Andina" not in page
    page = client.get("/o/acme/partners/?country=PE&q=andina").get_data(as_text=True)
    assert "Microfinanciera Andina" in page and "Fundo do Sertão" not in page
    assert client.get("/o/acme/partners/?kind=nonsense&country=" + "x" * 50).status_code == 200

    page = client.get("/o/acme/partners/andina").get_data(as_text=True)
    assert "Working-capital loan" in page and "Asset loan" in page
    assert "PEN 500.00 \N{EN DASH} 30,000.00" in page and "Cusco, Puno" in page
    assert "Propose a partnership" not in page  # a viewer reads only
    assert client.get("/o/acme/partners/nowhere").status_code == 404


def test_propose_accept_and_end_through_the_pages(
    client, login, login_as, org, mfi, make_partner_user
):
    org_admin = login_as("admin")
    response = client.post("/o/acme/partners/andina/propose", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Partnership proposed to Microfinanciera Andina" in page
    assert "Waiting for Microfinanciera Andina to accept it." in page
    again = client.post("/o/acme/partners/andina/propose", follow_redirects=True)
    assert "already proposed and waits for its answer" in again.get_data(as_text=True)
    partnership_id = _partnership(org, mfi).id

    login(make_partner_user(mfi, "partner_admin"))
    home = client.get("/p/andina/").get_data(as_text=True)
    assert org.name in home and "Proposed" in home and "Accept" in home
    response = client.post(f"/p/andina/partnerships/{partnership_id}/accept", follow_redirects=True)
    assert f"You are now partners with {org.name}." in response.get_data(as_text=True)
    refused = client.post(f"/p/andina/partnerships/{partnership_id}/accept", follow_redirects=True)
    assert "Only a proposed partnership can be accepted" in refused.get_data(as_text=True)
    partnership = _partnership(org, mfi)
    assert partnership.state == "active" and partnership.accepted_by_id is not None

    login(org_admin)
    page = client.get("/o/acme/partners/").get_data(as_text=True)
    assert "Active" in page
    response = client.post(
        f"/o/acme/partners/partnerships/{partnership_id}/end",
        data={"reason": "The program closed"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "The partnership with Microfinanciera Andina has ended." in page
    assert "The program closed" in page and "Propose a partnership" in page
    refused = client.post(f"/o/acme/partners/partnerships/{partnership_id}/end")
    assert refused.status_code == 302
    partnership = _partnership(org, mfi)
    assert (partnership.state, partnership.ended_side) == ("ended", "organization")


def test_the_partner_declines_or_ends_from_its_side(client, login, org, mfi, make_partner_user):
    services.link_partner(org, mfi)
    partnership_id = _partnership(org, mfi).id
    login(make_partner_user(mfi, "partner_admin"))
    too_long = client.post(
        f"/p/andina/partnerships/{partnership_id}/end",
        data={"reason": "x" * 501},
        follow_redirects=True,
    )
    assert "500 characters" in too_long.get_data(as_text=True)
    response = client.post(
        f"/p/andina/partnerships/{partnership_id}/end",
        data={"reason": "Outside our regions"},
        follow_redirects=True,
    )
    assert f"The partnership with {org.name} has ended." in response.get_data(as_text=True)
    partnership = _partnership(org, mfi)
    assert (partnership.state, partnership.ended_side) == ("ended", "partner")


def test_a_loan_officer_reads_but_does_not_act(client, login, org, mfi, make_partner_user):
    services.link_partner(org, mfi)
    partnership_id = _partnership(org, mfi).id
    login(make_partner_user(mfi, "loan_officer", name="Raúl Officer"))
    home = client.get("/p/andina/").get_data(as_text=True)
    assert org.name in home and "Active" in home and "End the partnership" not in home
    members = client.get("/p/andina/members").get_data(as_text=True)
    assert "Raúl Officer" in members and "Loan officer" in members
    assert client.post(f"/p/andina/partnerships/{partnership_id}/end").status_code == 403
    assert _partnership(org, mfi).state == "active"


def test_a_partner_sees_nothing_of_other_partners_or_unpartnered_organizations(
    client, login, org, other_org, mfi, fund, make_partner_user, make_member
):
    services.link_partner(other_org, fund)
    hidden_id = _partnership(other_org, fund).id
    login(make_partner_user(mfi, "loan_officer"))
    assert client.get("/p/fundo-sertao/").status_code == 404
    assert client.get("/p/fundo-sertao/members").status_code == 404
    assert client.get("/p/nowhere/").status_code == 404
    home = client.get("/p/andina/").get_data(as_text=True)
    assert other_org.name not in home and org.name not in home
    assert "No organization has proposed a partnership yet." in home
    # Another partner's partnership under my own slug is 404 too, and unchanged.
    admin = make_partner_user(mfi, "partner_admin")
    login(admin)
    assert client.post(f"/p/andina/partnerships/{hidden_id}/end").status_code == 404
    assert client.post(f"/p/andina/partnerships/{hidden_id}/accept").status_code == 404
    assert client.post("/p/andina/partnerships/99999999999/end").status_code == 404
    assert _partnership(other_org, fund).state == "active"
    # A partner user has no way into an organization's pages.
    assert client.get(f"/o/{other_org.slug}/").status_code == 404
    assert client.get(f"/o/{org.slug}/partners/").status_code == 404


def test_an_organization_member_is_not_a_partner_user(client, login_as, org, mfi):
    services.link_partner(org, mfi)
    login_as("admin")
    assert client.get("/p/andina/").status_code == 404
    assert client.get("/p/andina/members").status_code == 404


def test_another_organizations_partnership_is_404_to_an_admin(
    client, login_as, org, other_org, mfi
):
    services.link_partner(other_org, mfi)
    foreign_id = _partnership(other_org, mfi).id
    login_as("admin")
    assert client.post(f"/o/acme/partners/partnerships/{foreign_id}/end").status_code == 404
    assert _partnership(other_org, mfi).state == "active"


def test_partner_users_land_on_their_partner_and_see_it_in_the_switcher(
    client, login, login_as, org, mfi, fund, make_partner_user
):
    officer = login(make_partner_user(mfi, "loan_officer"))
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/p/andina/")
    services.add_partner_user(fund, officer, "partner_admin")
    page = client.get("/p/andina/").get_data(as_text=True)
    assert 'href="/p/fundo-sertao/"' in page and "Partner administrator" in page

    staff = login_as("viewer")
    services.add_partner_user(mfi, staff, "loan_officer")
    response = client.get("/")
    assert response.headers["Location"].endswith("/o/acme/")  # an organization comes first
    assert 'href="/p/andina/"' in client.get("/o/acme/").get_data(as_text=True)
