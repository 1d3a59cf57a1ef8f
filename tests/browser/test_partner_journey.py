"""A referral's loop in a real browser: the organization refers, the capital partner answers.

The program manager refers a consenting producer to a microfinance institution and sends
the frozen profile; the MFI's loan officer acknowledges, reviews, approves and records the
disbursement; the manager sees the answer. Revoking the consent withdraws the referral on
both sides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Locator, Page, expect

from inclusive.consents.services import record_consent
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.partners.services import add_partner_user, create_partner, link_partner
from inclusive.referrals import services
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.browser.conftest import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.committed]

Snap = Callable[[Page, str], Path]

ALL_SCOPES = ["identity", "contact", "program_record", "economic_figures", "offtake_ledger"]
ORG_NAME = "Andes Emprende"
PARTNER_NAME = "Microfinanciera Andina"
PRODUCER_NAME = "Ana Quispe Huamán"
DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Loop:
    """Who and what the journeys start from (all committed, for the live server)."""

    org_slug: str
    partner_slug: str
    manager_email: str
    officer_email: str
    password: str
    producer_id: int
    referral_id: int | None = None


def _set_up(app: Flask, send_a_referral: bool) -> Loop:
    """An organization with a program manager, an active partnership with an MFI that has a
    loan officer, and an enrolled producer whose consent covers every scope; with
    ``send_a_referral``, a referral of that producer already sent through the services."""
    with app.app_context():
        org = factories.OrganizationFactory(
            name=ORG_NAME, slug="andes", default_language="en", currency="PEN"
        )
        manager = factories.UserFactory(name="Julián Condori", email="julian@andes.example")
        witness = factories.UserFactory(name="Carla Rojas", email="carla@andes.example")
        officer = factories.UserFactory(name="Luis Loans", email="luis@andina.example")
        partner = create_partner(
            slug="andina",
            name=PARTNER_NAME,
            kind="mfi",
            products=["working_capital_loan", "asset_loan"],
        )
        link_partner(org, partner)
        add_partner_user(partner, officer, "loan_officer")
        with tenant_scope(org.id):
            factories.MembershipFactory(user=manager, organization=org, role="program_manager")
            factories.MembershipFactory(user=witness, organization=org, role="field_officer")
            producer = factories.ProducerFactory(name=PRODUCER_NAME, phone="+51 984 111 222")
            program = factories.make_program(org, name="Bakers of the Sacred Valley")
            factories.make_enrollment(program, producer)
            record_consent(
                producer,
                partner_id=partner.id,
                purpose="Working-capital loan",
                scopes=ALL_SCOPES,
                method="verbal",
                witness_id=witness.id,
                given_on=today() - timedelta(days=2),
                recorder=manager,
            )
            db.session.flush()
            referral_id = None
            if send_a_referral:
                referral = services.create_referral(
                    producer,
                    partnership_id=services.partnership_choices()[0].id,
                    product="working_capital_loan",
                    amount="1500",
                    purpose="Buy a second oven",
                    actor=manager,
                )
                services.send(referral, manager)
                referral_id = referral.id
            producer_id = producer.id
        db.session.commit()
        db.session.remove()
    return Loop(
        org_slug="andes",
        partner_slug="andina",
        manager_email="julian@andes.example",
        officer_email="luis@andina.example",
        password=factories.PASSWORD,
        producer_id=producer_id,
        referral_id=referral_id,
    )


@pytest.fixture
def partnered(app: Flask, live_server: LiveServer) -> Loop:
    return _set_up(app, send_a_referral=False)


@pytest.fixture
def sent_referral(app: Flask, live_server: LiveServer) -> Loop:
    return _set_up(app, send_a_referral=True)


def log_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def timeline(page: Page) -> Locator:
    return page.locator("#timeline li")


def test_partner_reviews_approves_and_disburses_a_referral(
    new_context: Callable[..., BrowserContext], partnered: Loop, snap: Snap
) -> None:
    # The program manager logs in and opens the producer's page.
    org_page = new_context().new_page()
    log_in(org_page, partnered.manager_email, partnered.password)
    expect(org_page.get_by_role("heading", name=ORG_NAME)).to_be_visible()
    org_page.get_by_role("link", name="Producers", exact=True).click()
    org_page.get_by_role("link", name=PRODUCER_NAME).first.click()
    expect(org_page.get_by_role("heading", level=1)).to_have_text(PRODUCER_NAME)
    referrals = org_page.locator("#referrals")
    expect(referrals).to_contain_text("Not referred to any capital partner yet.")
    snap(org_page, "01-producer")

    # Refer: the readiness check and the consent check come before anything is prepared.
    referrals.get_by_role("link", name="Refer to a capital partner").click()
    expect(org_page.get_by_role("heading", name="Refer to a capital partner")).to_be_visible()
    expect(org_page.get_by_role("heading", name="Readiness")).to_be_visible()
    expect(org_page.locator("#readiness")).to_contain_text("Verified milestones")
    expect(org_page.locator("#consent-check")).to_contain_text(PARTNER_NAME)
    expect(org_page.locator("#consent-check")).to_contain_text("Valid consent")
    org_page.get_by_label("Capital partner").select_option(label=PARTNER_NAME)
    org_page.get_by_label("Product").select_option("working_capital_loan")
    org_page.get_by_label("Amount requested").fill("1500")
    org_page.get_by_label("Purpose").fill("Buy a second oven for the bakery.")
    snap(org_page, "02-new-referral")
    org_page.get_by_role("button", name="Prepare the referral").click()

    # The draft: a preview of the profile, then the referral is sent and its profile frozen.
    expect(org_page.locator(".flash-success")).to_contain_text("The draft referral is ready")
    heading = org_page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("Draft")
    expect(org_page.get_by_role("heading", name="Profile the partner will receive")).to_be_visible()
    referral_url = org_page.url
    referral_id = int(re.search(r"/referrals/(\d+)$", referral_url).group(1))
    snap(org_page, "03-draft")
    org_page.once("dialog", lambda dialog: dialog.accept())
    org_page.get_by_role("button", name=f"Send to {PARTNER_NAME}").click()
    expect(org_page.locator(".flash-success")).to_have_text(
        f"The referral is sent to {PARTNER_NAME}."
    )
    expect(heading).to_contain_text("Sent")
    expect(org_page.get_by_role("heading", name="Profile sent")).to_be_visible()
    digest = org_page.locator("#profile code.digest")
    expect(digest).to_have_text(DIGEST)
    sha256 = digest.inner_text()
    expect(timeline(org_page)).to_contain_text(["Draft prepared", "Sent to the partner"])
    snap(org_page, "04-sent")

    # The loan officer, in a browser of their own, finds it in the inbox.
    mfi_page = new_context().new_page()
    log_in(mfi_page, partnered.officer_email, partnered.password)
    expect(mfi_page).to_have_url(re.compile(rf"/p/{partnered.partner_slug}/$"))
    expect(mfi_page.locator("#awaiting")).to_contain_text("1 referral awaits acknowledgement.")
    mfi_page.get_by_role("link", name="Inbox", exact=True).click()
    expect(mfi_page).to_have_url(re.compile(rf"/p/{partnered.partner_slug}/referrals/$"))
    row = mfi_page.get_by_role("row").filter(has_text=f"#{referral_id}")
    expect(row).to_contain_text(ORG_NAME)
    expect(row).to_contain_text(PRODUCER_NAME)
    expect(row).to_contain_text("Sent")
    expect(row).to_contain_text("to acknowledge")
    snap(mfi_page, "05-inbox")

    # The referral: the frozen profile (the name comes from it) and the same digest.
    row.get_by_role("link", name=PRODUCER_NAME).click()
    expect(mfi_page).to_have_url(
        re.compile(rf"/p/{partnered.partner_slug}/referrals/{referral_id}$")
    )
    expect(mfi_page.locator(".lead")).to_contain_text(PRODUCER_NAME)
    profile = mfi_page.locator("#profile")
    expect(profile.get_by_role("heading", name="Identity")).to_be_visible()
    expect(profile).to_contain_text(PRODUCER_NAME)
    expect(profile).to_contain_text("+51 984 111 222")
    expect(profile.locator("code.digest")).to_have_text(sha256)
    snap(mfi_page, "06-partner-referral")

    # Acknowledge, start the review, approve: one step at a time, each on the timeline.
    mfi_heading = mfi_page.get_by_role("heading", level=1)
    for button, state, event, step in [
        ("Acknowledge", "Received", "Acknowledged by the partner", "07-acknowledged"),
        ("Start review", "Under review", "Review started", "08-under-review"),
        ("Approve", "Approved", "Approved", "09-approved"),
    ]:
        mfi_page.get_by_role("group", name=button).get_by_role("button", name=button).click()
        expect(mfi_page.locator(".flash-success")).to_have_text(f"Done: {button.lower()}.")
        expect(mfi_heading).to_contain_text(state)
        expect(timeline(mfi_page).last).to_contain_text(event)
        snap(mfi_page, step)

    # A disbursement dated tomorrow is refused next to the date; what was typed stays.
    disburse = mfi_page.get_by_role("group", name="Record disbursement")
    expect(disburse.get_by_label("Currency")).to_have_value("PEN")
    expect(disburse.get_by_label("Product")).to_have_value("working_capital_loan")
    disburse.get_by_label("Amount disbursed").fill("1400.50")
    tomorrow = (today() + timedelta(days=1)).isoformat()
    disburse.get_by_label("Disbursed on").fill(tomorrow)
    disburse.get_by_label("Term (months)").fill("12")
    disburse.get_by_label("Note").fill("First installment due in a month.")
    disburse.get_by_role("button", name="Record disbursement").click()
    date_field = disburse.get_by_label("Disbursed on")
    expect(date_field).to_have_attribute("aria-invalid", "true")
    expect(date_field).to_have_value(tomorrow)
    expect(disburse.locator(".field.has-error")).to_have_count(1)
    expect(disburse.locator(".field.has-error")).to_contain_text(
        "The date cannot be in the future."
    )
    expect(mfi_heading).to_contain_text("Approved")
    expect(disburse.get_by_label("Amount disbursed")).to_have_value("1400.50")
    expect(disburse.get_by_label("Term (months)")).to_have_value("12")
    expect(disburse.get_by_label("Note")).to_have_value("First installment due in a month.")
    snap(mfi_page, "10-disbursement-refused")

    # Corrected: disbursed today.
    date_field.fill(today().isoformat())
    disburse.get_by_role("button", name="Record disbursement").click()
    expect(mfi_page.locator(".flash-success")).to_have_text("Done: record disbursement.")
    expect(mfi_heading).to_contain_text("Disbursed")
    summary = mfi_page.locator("#summary")
    expect(summary).to_contain_text("PEN")
    expect(summary).to_contain_text("12 months")
    expect(timeline(mfi_page)).to_contain_text(
        [
            "Sent to the partner",
            "Acknowledged by the partner",
            "Review started",
            "Approved",
            "Disbursed",
        ]
    )
    expect(timeline(mfi_page).last).to_contain_text("1400.50 PEN")
    expect(mfi_page.locator("#actions")).to_contain_text("Close")
    snap(mfi_page, "11-disbursed")

    # Back with the manager: the answer and every one of the partner's steps.
    org_page.goto(referral_url)
    expect(org_page.get_by_role("heading", level=1)).to_contain_text("Disbursed")
    expect(org_page.locator("#summary")).to_contain_text("12 months")
    events = timeline(org_page)
    expect(events).to_have_count(6)
    expect(events).to_contain_text(
        [
            "Draft prepared",
            "Sent to the partner",
            "Acknowledged by the partner",
            "Review started",
            "Approved",
            "Disbursed",
        ]
    )
    for index in range(2, 6):
        expect(events.nth(index)).to_contain_text("Luis Loans · Partner")
    snap(org_page, "12-manager-sees-disbursed")


def test_revoking_consent_withdraws_the_referral_for_both_sides(
    new_context: Callable[..., BrowserContext], sent_referral: Loop, snap: Snap
) -> None:
    referral_id = sent_referral.referral_id
    org_page = new_context().new_page()
    log_in(org_page, sent_referral.manager_email, sent_referral.password)
    expect(org_page.get_by_role("heading", name=ORG_NAME)).to_be_visible()

    # The producer's consent, revoked in one step with a reason.
    org_page.goto(f"/o/{sent_referral.org_slug}/producers/{sent_referral.producer_id}")
    consents = org_page.locator("#consents")
    consent_row = consents.get_by_role("row").filter(has_text=PARTNER_NAME)
    expect(consent_row).to_contain_text("Working-capital loan")
    expect(org_page.locator("#referrals").get_by_role("row").nth(1)).to_contain_text("Sent")
    consent_row.get_by_label("Why it is revoked").fill("The producer asked to stop sharing.")
    snap(org_page, "01-consent-before")
    consent_row.get_by_role("button", name="Revoke").click()
    expect(org_page.locator(".flash-success")).to_have_text(
        f"The consent for {PARTNER_NAME} is revoked."
    )
    consent_row = org_page.locator("#consents").get_by_role("row").filter(has_text=PARTNER_NAME)
    expect(consent_row).to_contain_text("Revoked")
    expect(consent_row).to_contain_text("The producer asked to stop sharing.")
    expect(consent_row.get_by_role("button", name="Revoke")).to_have_count(0)
    referral_row = org_page.locator("#referrals").get_by_role("row").nth(1)
    expect(referral_row).to_contain_text("Withdrawn")
    snap(org_page, "02-consent-revoked")

    # The referral is withdrawn, the revocation on its timeline; nothing left to do.
    referral_row.get_by_role("link", name=f"#{referral_id}").click()
    expect(org_page.get_by_role("heading", level=1)).to_contain_text("Withdrawn")
    expect(timeline(org_page).last).to_contain_text("Withdrawn: consent revoked")
    expect(timeline(org_page).last).to_contain_text("the platform · Platform")
    expect(org_page.locator("#actions")).to_have_count(0)
    snap(org_page, "03-referral-withdrawn")

    # The loan officer's inbox shows it withdrawn; its page offers no action.
    mfi_page = new_context().new_page()
    log_in(mfi_page, sent_referral.officer_email, sent_referral.password)
    expect(mfi_page.locator("#awaiting")).to_contain_text("No referral awaits acknowledgement.")
    mfi_page.goto(f"/p/{sent_referral.partner_slug}/referrals/")
    row = mfi_page.get_by_role("row").filter(has_text=f"#{referral_id}")
    expect(row).to_contain_text(PRODUCER_NAME)
    expect(row).to_contain_text("Withdrawn")
    expect(row).not_to_contain_text("to acknowledge")
    snap(mfi_page, "04-inbox-withdrawn")
    row.get_by_role("link", name=f"#{referral_id}").click()
    expect(mfi_page.get_by_role("heading", level=1)).to_contain_text("Withdrawn")
    expect(timeline(mfi_page).last).to_contain_text("Withdrawn: consent revoked")
    expect(mfi_page.locator("#actions")).to_have_count(0)
    expect(mfi_page.get_by_role("heading", name="Answer")).to_have_count(0)
    for button in ("Acknowledge", "Start review", "Approve", "Decline", "Record disbursement"):
        expect(mfi_page.get_by_role("button", name=button)).to_have_count(0)
    snap(mfi_page, "05-partner-referral-withdrawn")
