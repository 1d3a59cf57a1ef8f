"""A program manager's journey in a real browser: program, CSV import, enrollment, milestones."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from inclusive.extensions import db
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.browser.conftest import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.committed]

Snap = Callable[[Page, str], Path]

BAD_CSV = (
    "kind,name,national_id,phone,region,municipality,sectors\n"
    "individual,Rosa Quispe Mamani,10234567,+51 984 111 222,Cusco,Urubamba,agriculture\n"
    "cooperative,Cooperativa Agraria Anta,20555666,+51 984 333 444,Cusco,Anta,agriculture\n"
    "spaceship,Juan Condori,10999888,+51 984 555 666,Cusco,Calca,agriculture\n"
)


@pytest.fixture
def manager(app: Flask, live_server: LiveServer) -> dict[str, str]:
    """An organization with a program manager (committed, for the live server)."""
    with app.app_context():
        org = factories.OrganizationFactory(
            name="Andes Emprende", slug="andes", default_language="en"
        )
        person = factories.UserFactory(name="Julián Condori", email="julian@andes.example")
        with tenant_scope(org.id):
            factories.MembershipFactory(user=person, organization=org, role="program_manager")
        db.session.commit()
        db.session.remove()
    return {"email": "julian@andes.example", "password": factories.PASSWORD}


def test_program_import_enroll_record_and_verify(
    page: Page, live_server: LiveServer, manager: dict[str, str], snap: Snap, tmp_path: Path
) -> None:
    page.goto(live_server.url + "/login")
    page.get_by_label("E-mail").fill(manager["email"])
    page.get_by_label("Password").fill(manager["password"])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Andes Emprende")).to_be_visible()

    # 1. Create a supplier program: it gets the default milestone plan.
    page.get_by_role("link", name="Programs", exact=True).click()
    page.get_by_role("link", name="New program").click()
    page.get_by_label("Kind of program").select_option("supplier_program")
    page.get_by_label("Name", exact=True).fill("Quinoa suppliers for Andina Foods")
    page.get_by_label("Counterpart's name").fill("Andina Foods S.A.C.")
    snap(page, "01-new-program")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Milestone plan")).to_be_visible()
    expect(page.locator("input[value='Quality standards training completed']")).to_be_visible()
    snap(page, "02-milestone-plan")

    # 2. Import a CSV with a bad row: the preview explains it; nothing is imported yet.
    bad = tmp_path / "producers.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")
    page.goto(live_server.url + "/o/andes/imports/producers/new")
    page.get_by_label("CSV file").set_input_files(str(bad))
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("row", name=re.compile(r"^4 kind Choose one of"))).to_be_visible()
    snap(page, "03-preview-with-bad-row")

    # 3. Fix the file and import it again: all three rows go in.
    fixed = tmp_path / "producers-fixed.csv"
    fixed.write_text(BAD_CSV.replace("spaceship", "individual"), encoding="utf-8")
    page.goto(live_server.url + "/o/andes/imports/producers/new")
    page.get_by_label("CSV file").set_input_files(str(fixed))
    page.get_by_role("button", name="Check the file").click()
    page.get_by_role("button", name="Import the rows ready to import").click()
    expect(page.get_by_text("3 rows imported")).to_be_visible()
    snap(page, "04-imported")

    # 4. Enroll the imported producers in the program from the filtered list.
    page.goto(live_server.url + "/o/andes/producers/?region=Cusco")
    for name in ("Rosa Quispe Mamani", "Cooperativa Agraria Anta", "Juan Condori"):
        page.get_by_label(f"Select {name}").check()
    page.get_by_label("Program").last.select_option(label="Quinoa suppliers for Andina Foods")
    page.get_by_role("button", name="Enroll", exact=True).click()
    expect(page.get_by_text("3 producers joined")).to_be_visible()
    snap(page, "05-cohort")

    # 5. Record the first milestone as achieved with a photo, then verify it.
    page.get_by_role("link", name="Rosa Quispe Mamani").first.click()
    page.get_by_role("link", name="Baseline diagnostic and supplier agreement signed").click()
    photo = tmp_path / "agreement.png"
    photo.write_bytes(_tiny_png())
    page.get_by_label("Status").select_option("achieved")
    page.get_by_label("Note").fill("Agreement signed at the Andina Foods plant.")
    page.get_by_label("Evidence (PDF, JPEG or PNG)").set_input_files(str(photo))
    snap(page, "06-record-milestone")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("is recorded")).to_be_visible()
    page.get_by_role("link", name="Baseline diagnostic and supplier agreement signed").click()
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("is now Verified")).to_be_visible()
    expect(page.get_by_text("verified.").first).to_be_visible()  # on the timeline
    snap(page, "07-verified-and-timeline")


def _tiny_png() -> bytes:
    import base64

    return base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
