"""Journeys through the platform in a real browser, with real CSRF, as users take them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Locator, Page, expect

from inclusive.extensions import db
from inclusive.tenancy.models import Organization
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.browser.conftest import LiveServer, Mailbox

pytestmark = [pytest.mark.browser, pytest.mark.committed]

Snap = Callable[[Page, str], Path]

ADMIN_PASSWORD = "river-lantern-orchard-42"
COLLEAGUE_PASSWORD = "copper-meadow-violin-17"


@dataclass(frozen=True)
class Seeded:
    org_name: str
    slug: str
    email: str
    password: str


@pytest.fixture
def seeded_admin(app: Flask, live_server: LiveServer) -> Seeded:
    """An organization with an administrator and two colleagues, committed for the server.

    (Asking for ``live_server`` also checks that the test is marked ``committed``.)
    """
    with app.app_context():
        org = factories.OrganizationFactory(
            name="Andes Coffee Growers", slug="andes", default_language="en"
        )
        admin = factories.UserFactory(name="Ana Quispe", email="ana@andes.example")
        with tenant_scope(org.id):
            factories.MembershipFactory(user=admin, organization=org, role="admin")
            for name, email, role in [
                ("Bartolomé Mamani Huanca", "bartolome@andes.example", "viewer"),
                ("Carla Rojas", "carla@andes.example", "field_officer"),
            ]:
                person = factories.UserFactory(name=name, email=email)
                factories.MembershipFactory(user=person, organization=org, role=role)
            factories.InvitationFactory(
                organization=org, email="diego@andes.example", invited_by_id=admin.id
            )
        db.session.commit()
        db.session.remove()
    return Seeded("Andes Coffee Growers", "andes", "ana@andes.example", factories.PASSWORD)


LONG_MEMBER_EMAIL = "bartolome.mamani.huanca@cooperativa-agraria.example"
LONG_INVITEE_EMAIL = "maria.fernanda.quispe@asociacion-de-productores.example"


@pytest.fixture
def long_addresses(app: Flask, seeded_admin: Seeded) -> Seeded:
    """Long e-mail addresses, as institutions hand out: a member's and an invitee's."""
    with app.app_context():
        org = db.session.scalars(db.select(Organization).filter_by(slug=seeded_admin.slug)).one()
        with tenant_scope(org.id):
            person = factories.UserFactory(name="Bartolomé Mamani", email=LONG_MEMBER_EMAIL)
            factories.MembershipFactory(user=person, organization=org, role="viewer")
            factories.InvitationFactory(organization=org, email=LONG_INVITEE_EMAIL)
        db.session.commit()
        db.session.remove()
    return seeded_admin


def log_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def log_out(page: Page, name: str) -> None:
    page.locator("details.usermenu > summary", has_text=name).click()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash-info")).to_have_text("You have logged out.")


def fill_organization(page: Page, name: str, country: str, language: str, currency: str) -> None:
    page.get_by_label("Organization name").fill(name)
    page.get_by_label("Country").select_option(country)
    page.get_by_label("Default language").select_option(language)
    page.get_by_label("Currency").select_option(currency)


def test_sign_up_invite_join_and_switch_organizations(
    page: Page, mailbox: Mailbox, snap: Snap
) -> None:
    # A visitor signs up with their organization.
    page.goto("/signup")
    expect(page.get_by_role("heading", level=1)).to_have_text("Create an organization")
    page.get_by_label("Your name").fill("Rosa Huamán")
    page.get_by_label("E-mail").fill("rosa@riverside.example")
    page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    fill_organization(page, "Riverside Growers", country="PE", language="en", currency="PEN")
    snap(page, "01-signup")
    page.get_by_role("button", name="Create the organization").click()

    # ... and lands on the organization's home as its administrator.
    expect(page).to_have_url(re.compile(r"/o/riverside-growers/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Riverside Growers")
    expect(page.locator(".flash-success")).to_have_text("Welcome! Riverside Growers is ready.")
    expect(page.locator(".lead")).to_contain_text("You are Administrator here.")
    snap(page, "02-org-home")

    # Members: invite a colleague as field officer.
    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Members").click()
    expect(page).to_have_url(re.compile(r"/o/riverside-growers/members$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    snap(page, "03-members")
    invite = page.locator("form", has=page.get_by_role("button", name="Send invitation"))
    invite.get_by_label("E-mail").fill("tomas@riverside.example")
    invite.get_by_label("Role").select_option("field_officer")
    invite.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".flash-success")).to_have_text(
        "Invitation sent to tomas@riverside.example."
    )
    expect(page.locator("li.row", has_text="tomas@riverside.example")).to_contain_text(
        "Field officer"
    )
    snap(page, "04-invited")

    # The invitation e-mail, written to MAIL_DIR; its link is built from BASE_URL.
    message = mailbox.newest()
    assert message["To"] == "tomas@riverside.example"
    assert "Riverside Growers" in message["Subject"]
    link = mailbox.link(message, "/invitations/")

    # The administrator logs out.
    log_out(page, "Rosa Huamán")
    snap(page, "05-admin-logged-out")

    # The colleague opens the link and creates their account.
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Join Riverside Growers")
    expect(page.locator(".lead")).to_contain_text("Field officer")
    expect(page.locator(".lead")).to_contain_text("tomas@riverside.example")
    page.get_by_label("Your name").fill("Tomás Flores")
    page.get_by_label("New password", exact=True).fill(COLLEAGUE_PASSWORD)
    page.get_by_label("Repeat the new password").fill(COLLEAGUE_PASSWORD)
    snap(page, "06-invitation")
    page.get_by_role("button", name="Create my account and join").click()

    # ... and lands in the organization as a member.
    expect(page).to_have_url(re.compile(r"/o/riverside-growers/$"))
    expect(page.locator(".flash-success")).to_have_text("Welcome to Riverside Growers!")
    expect(page.locator(".lead")).to_contain_text("Welcome, Tomás Flores. You are Field officer")
    # A field officer sees no Settings link.
    nav = page.get_by_role("navigation", name="Organization")
    expect(nav.get_by_role("link", name="Members")).to_be_visible()
    expect(nav.get_by_role("link", name="Settings")).to_have_count(0)
    snap(page, "07-colleague-joined")

    # Logs out, then in again with e-mail and password.
    log_out(page, "Tomás Flores")
    log_in(page, "tomas@riverside.example", COLLEAGUE_PASSWORD)
    expect(page).to_have_url(re.compile(r"/o/riverside-growers/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Riverside Growers")
    snap(page, "08-colleague-logged-in")

    # Creates an organization of their own: logged in, only its fields are asked for.
    switcher = page.locator("details.switcher")
    switcher.locator("summary").click()
    switcher.get_by_role("link", name="Create an organization").click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    for label in ("Your name", "E-mail", "Password"):
        expect(page.get_by_label(label, exact=True)).to_have_count(0)
    fill_organization(page, "Flores Crafts", country="BO", language="es", currency="BOB")
    snap(page, "09-second-org-form")
    page.get_by_role("button", name="Create the organization").click()
    expect(page).to_have_url(re.compile(r"/o/flores-crafts/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Flores Crafts")
    expect(switcher.locator("summary")).to_contain_text("Flores Crafts")
    snap(page, "10-second-org-home")

    # The organization switcher in the header leads back to the first one.
    switcher.locator("summary").click()
    expect(switcher).to_have_attribute("open", "")
    back = switcher.get_by_role("link", name=re.compile(r"^Riverside Growers"))
    expect(back).to_contain_text("Field officer")
    snap(page, "11-switcher-open")
    back.click()
    expect(page).to_have_url(re.compile(r"/o/riverside-growers/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Riverside Growers")
    expect(switcher.locator("summary")).to_contain_text("Riverside Growers")
    snap(page, "12-switched-back")


def assert_no_horizontal_scroll(page: Page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width + 1, f"{page.url} scrolls sideways: {scroll_width}px > {width}px"


def test_pages_fit_a_360_px_wide_screen(
    new_context: Callable[..., BrowserContext], seeded_admin: Seeded, snap: Snap
) -> None:
    page = new_context(width=360, height=780).new_page()

    page.goto("/login")
    assert_no_horizontal_scroll(page, 360)
    snap(page, "01-login")

    page.goto("/signup")
    assert_no_horizontal_scroll(page, 360)
    snap(page, "02-signup")

    log_in(page, seeded_admin.email, seeded_admin.password)
    expect(page).to_have_url(re.compile(rf"/o/{seeded_admin.slug}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(seeded_admin.org_name)
    assert_no_horizontal_scroll(page, 360)
    snap(page, "03-org-home")

    page.goto(f"/o/{seeded_admin.slug}/members")
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    expect(page.get_by_role("row")).to_have_count(4)  # the header and three members
    assert_no_horizontal_scroll(page, 360)
    snap(page, "04-members")

    for menu, step in (("switcher", "05-switcher-open"), ("usermenu", "06-user-menu-open")):
        summary = page.locator(f"details.{menu} > summary")
        summary.click()
        expect(page.locator(f"details.{menu}")).to_have_attribute("open", "")
        assert_no_horizontal_scroll(page, 360)
        snap(page, step)
        summary.click()  # closed again, so it covers nothing


def test_long_email_addresses_fit_a_360_px_wide_screen(
    new_context: Callable[..., BrowserContext], long_addresses: Seeded, snap: Snap
) -> None:
    page = new_context(width=360, height=780).new_page()
    log_in(page, long_addresses.email, long_addresses.password)
    page.goto(f"/o/{long_addresses.slug}/members")
    expect(page.get_by_text(LONG_MEMBER_EMAIL)).to_be_visible()
    expect(page.get_by_text(LONG_INVITEE_EMAIL)).to_be_visible()
    snap(page, "01-members")
    assert_no_horizontal_scroll(page, 360)
    # Nor does anything hide behind a scroll bar inside the page (the members table).
    overflowing = page.evaluate(
        """[...document.querySelectorAll('main *')]
            .filter(e => e.scrollWidth > e.clientWidth + 1
                         && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
            .map(e => e.className || e.tagName)"""
    )
    assert overflowing == [], f"content scrolls sideways inside: {overflowing}"


def test_a_failed_login_shows_one_generic_error_and_keeps_the_email(
    page: Page, seeded_admin: Seeded, snap: Snap
) -> None:
    # The same single message whether the e-mail belongs to an account or not.
    for step, email in (
        ("01-wrong-password", seeded_admin.email),
        ("02-unknown-email", "nobody@andes.example"),
    ):
        log_in(page, email, "not-the-password-at-all")
        expect(page).to_have_url(re.compile(r"/login$"))
        errors = page.locator(".error, .flash-error, [role=alert]")
        expect(errors).to_have_count(1)
        expect(errors).to_have_text("The e-mail or password is not correct.")
        expect(page.get_by_label("E-mail")).to_have_value(email)
        expect(page.get_by_label("Password", exact=True)).to_have_value("")
        expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
        snap(page, step)


def submit_sign_up(page: Page, password: str, slug: str) -> None:
    page.goto("/signup")
    page.get_by_label("Your name").fill("Mateo Condori")
    page.get_by_label("E-mail").fill("mateo@altiplano.example")
    page.get_by_label("Password", exact=True).fill(password)
    fill_organization(page, "Altiplano Weavers", country="BO", language="es", currency="BOB")
    page.get_by_label("Web address").fill(slug)
    page.get_by_role("button", name="Create the organization").click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    expect(page.locator(".flash-error")).to_have_text("Please correct the fields marked below.")


def field_error(page: Page, label: str, timeout: float | None = None) -> Locator:
    """The error shown inside the field of that label (whose control is marked invalid)."""
    control = page.get_by_label(label, exact=True)
    expect(control).to_have_attribute("aria-invalid", "true", timeout=timeout)
    return page.locator(".field", has=control).locator(".error")


def expect_sign_up_kept(page: Page, slug: str) -> None:
    """What was typed is shown again, but the password."""
    expect(page.get_by_label("Your name")).to_have_value("Mateo Condori")
    expect(page.get_by_label("E-mail")).to_have_value("mateo@altiplano.example")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    expect(page.get_by_label("Organization name")).to_have_value("Altiplano Weavers")
    expect(page.get_by_label("Web address")).to_have_value(slug)
    expect(page.get_by_label("Country")).to_have_value("BO")
    expect(page.get_by_label("Default language")).to_have_value("es")
    expect(page.get_by_label("Currency")).to_have_value("BOB")


def test_sign_up_errors_are_shown_next_to_the_fields_and_keep_what_was_typed(
    page: Page, seeded_admin: Seeded, snap: Snap
) -> None:
    # A web address already taken (and a too-short password).
    submit_sign_up(page, password="short", slug=seeded_admin.slug)
    expect(field_error(page, "Web address")).to_have_text(
        "This address is already taken; choose another."
    )
    expect_sign_up_kept(page, seeded_admin.slug)
    snap(page, "01-slug-taken")

    # A free web address, and the same too-short password.
    page.get_by_label("Web address").fill("altiplano")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_role("button", name="Create the organization").click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    expect(field_error(page, "Password")).to_have_text("Use at least 10 characters.")
    expect(page.locator(".field .error")).to_have_count(1)
    expect_sign_up_kept(page, "altiplano")
    snap(page, "02-password-too-short")


def test_sign_up_reports_every_refused_field_at_once(
    page: Page, seeded_admin: Seeded, snap: Snap
) -> None:
    submit_sign_up(page, password="short", slug=seeded_admin.slug)
    snap(page, "01-submitted")
    expect(field_error(page, "Web address")).to_have_text(
        "This address is already taken; choose another."
    )
    # The page is loaded: no need to wait long for what is missing.
    expect(field_error(page, "Password", timeout=500)).to_have_text(
        "Use at least 10 characters.", timeout=500
    )


def test_tab_first_reaches_the_skip_link(page: Page, seeded_admin: Seeded, snap: Snap) -> None:
    def tab_from_the_top() -> None:
        page.keyboard.press("Tab")
        focused = page.locator(":focus")
        expect(focused).to_have_text("Skip to content")
        expect(focused).to_have_attribute("href", "#main")
        box = focused.bounding_box()
        assert box is not None and box["x"] >= 0, "the focused skip link is off screen"

    page.goto("/signup")
    tab_from_the_top()
    snap(page, "01-signup-skip-link")
    page.keyboard.press("Enter")
    expect(page.locator(":focus")).to_have_id("main")

    log_in(page, seeded_admin.email, seeded_admin.password)
    expect(page).to_have_url(re.compile(rf"/o/{seeded_admin.slug}/$"))
    tab_from_the_top()
    snap(page, "02-org-home-skip-link")
    page.keyboard.press("Enter")
    expect(page.locator(":focus")).to_have_id("main")
