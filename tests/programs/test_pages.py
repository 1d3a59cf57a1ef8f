"""The workspace pages with real data in them, for every role that may see them."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest

from inclusive.extensions import db
from inclusive.impact import services as impact
from inclusive.milestones import services as plans
from inclusive.milestones.models import Enrollment, EnrollmentState, Evidence
from inclusive.milestones.models import MilestoneStatus as M
from inclusive.storage import storage
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import tenant_scope
from tests.programs.support import (
    PNG,
    assign,
    days_ago,
    done,
    enroll,
    main_of,
    milestones_of,
    new_producer,
    new_program,
    text_of,
)

S = EnrollmentState
FIGURES = {
    "sales": "1000",
    "costs": "600",
    "household_withdrawals": "200",
    "reinvestment": "50",
    "assets": "3000",
    "debt": "100",
    "employees": "2",
}


@pytest.fixture
def world(org, make_member):
    """A supplier program with a full cohort; one producer with every kind of record."""
    officer = make_member("field_officer", name="Fidel Officer")
    program = new_program(org, name="Quinoa suppliers")
    assign(program, officer)
    rosa = new_producer(org.id, name="Rosa Huamán", national_id="R1")
    beto = new_producer(org.id, name="Beto Late", national_id="B1")
    carla = new_producer(org.id, name="Carla Applicant", national_id="C1")
    dora = new_producer(org.id, name="Dora Gone", national_id="D1")
    [on_time] = enroll(program, [rosa])
    [late] = enroll(program, [beto], on=days_ago(30))
    with tenant_scope(org.id):
        plans.enroll(program, [carla.id], state=S.APPLIED)
        [gone], _ = plans.enroll(program, [dora.id])
        plans.transition(gone, S.WITHDRAWN, "Moved")
        first = db.session.get(Enrollment, on_time.id).milestones[0]
        plans.record_progress(first, M.ACHIEVED, "Signed", officer.id)
        db.session.add(
            Evidence(
                milestone_id=first.id,
                filename="photo.png",
                content_type="image/png",
                size=len(PNG),
                storage_key=storage().save(PNG, ".png"),
                sha256="0" * 64,
            )
        )
        for month in (date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)):
            impact.save_snapshot(rosa.id, month, FIGURES, officer.id)
        scores = dict.fromkeys(impact.VIABILITY_FACTORS, 3)
        impact.save_assessment(rosa.id, date(2025, 2, 1), scores, "First", officer.id)
        impact.save_assessment(rosa.id, date(2025, 4, 1), scores, "Second", officer.id)
        impact.record_purchase(
            rosa.id,
            program,
            {
                "purchased_on": date(2025, 3, 5),
                "product": "Quinoa",
                "quantity": "100",
                "unit_price": "2.5",
                "on_time": True,
                "quality_accepted": True,
            },
            officer.id,
        )
        evidence_id = db.session.scalars(db.select(Evidence.id)).one()
        done()
    return {
        "program": program,
        "rosa": rosa,
        "beto": beto,
        "officer": officer,
        "on_time": on_time,
        "late": late,
        "first_milestone": first.id,
        "evidence": evidence_id,
    }


def _pages(world) -> dict[str, str]:
    program, rosa = world["program"].id, world["rosa"].id
    return {
        "programs": "/o/acme/programs/",
        "program": f"/o/acme/programs/{program}",
        "cohort filtered": f"/o/acme/programs/{program}?state=enrolled",
        "template": f"/o/acme/programs/{program}/template",
        "producers": "/o/acme/producers/",
        "producers filtered": "/o/acme/producers/?q=rosa&at_risk=y",
        "producer": f"/o/acme/producers/{rosa}",
        "export": "/o/acme/producers/export.csv",
        "milestone": f"/o/acme/milestones/{world['first_milestone']}",
        "evidence": f"/o/acme/evidence/{world['evidence']}",
    }


MANAGER_PAGES = ("programs.new", "programs.edit", "producers.new", "producers.edit")


@pytest.mark.parametrize("role", list(Role))
def test_every_page_answers_200_for_every_role(client, login_as, world, role):
    login_as(role.value)
    for name, url in _pages(world).items():
        response = client.get(url)
        assert response.status_code == 200, f"{role}: {name} answered {response.status_code}"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.PROGRAM_MANAGER])
def test_manager_forms_answer_200_for_managers(client, login_as, world, role):
    login_as(role.value)
    program, rosa = world["program"].id, world["rosa"].id
    for url in (
        "/o/acme/programs/new",
        f"/o/acme/programs/{program}/edit",
        "/o/acme/producers/new",
        f"/o/acme/producers/{rosa}/edit",
    ):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("language", ["es", "pt"])
def test_pages_render_in_other_languages(client, login_as, world, language):
    login_as("admin", locale=language)
    for name, url in _pages(world).items():
        assert client.get(url).status_code == 200, f"{language}: {name}"


class TestProgramPage:
    def test_counts_per_state(self, client, login_as, world):
        login_as("viewer")
        page = client.get(f"/o/acme/programs/{world['program'].id}").text
        counts = dict(
            re.findall(r'state=(\w+)"[^>]*><span>[^<]+</span> <strong>(\d+)</strong>', page)
        )
        assert counts == {
            "applied": "1",
            "waitlisted": "0",
            "enrolled": "2",
            "active": "0",
            "paused": "0",
            "graduated": "0",
            "withdrawn": "1",
        }

    def test_completion_per_milestone(self, client, login_as, world):
        login_as("viewer")
        page = html.unescape(client.get(f"/o/acme/programs/{world['program'].id}").text)
        bars = re.findall(
            r'<span class="bar-label">([^<]+)</span>.*?'
            r'<span class="bar-value">(\d+/\d+)</span>',
            page,
            re.S,
        )
        steps = world["program"].steps
        assert bars[0] == (steps[0].name, "1/2")  # the withdrawn plan does not count
        assert bars[1] == (steps[1].name, "0/2")
        assert len(bars) == len(steps)

    def test_the_at_risk_list_names_who_is_late(self, client, login_as, world):
        login_as("viewer")
        page = client.get(f"/o/acme/programs/{world['program'].id}").text
        panel = page.split("At risk</h2>", 1)[1].split("</section>", 1)[0]
        assert "Beto Late" in panel and "Rosa Huamán" not in panel

    def test_the_cohort_shows_each_producers_progress(self, client, login_as, world):
        login_as("program_manager")
        page = html.unescape(client.get(f"/o/acme/programs/{world['program'].id}").text)
        rows = re.findall(
            r'<tr( class="risk")?>\s*<td><input[^>]+></td>\s*<td data-label='
            r'"Producer"><a [^>]+>([^<]+)</a>.*?<progress max="100" value="(\d+)"',
            page,
            re.S,
        )
        progress = {name: (int(value), bool(risk)) for risk, name, value in rows}
        assert progress["Rosa Huamán"] == (round(100 * 1 / 16), False)
        assert progress["Beto Late"] == (0, True)
        assert set(progress) == {"Rosa Huamán", "Beto Late", "Carla Applicant", "Dora Gone"}

    def test_the_cohort_filtered_by_state(self, client, login_as, world):
        login_as("viewer")
        page = client.get(f"/o/acme/programs/{world['program'].id}?state=withdrawn").text
        cohort = page.split("Cohort", 1)[1]
        assert "Dora Gone" in cohort and "Rosa Huamán" not in cohort

    def test_the_cohort_is_paged_by_fifty(self, client, login_as, org):
        login_as("program_manager")
        program = new_program(org)
        with tenant_scope(org.id):
            from tests import factories

            ids = [factories.ProducerFactory().id for _ in range(51)]
            plans.enroll(program, ids, state=S.APPLIED)
            done()
        first = client.get(f"/o/acme/programs/{program.id}").text
        assert first.count('name="enrollment_ids"') == 50
        assert f"/o/acme/programs/{program.id}?page=2" in first
        second = client.get(f"/o/acme/programs/{program.id}?page=2").text
        assert second.count('name="enrollment_ids"') == 1
        assert "?page=3" not in second

    def test_a_cohort_page_number_beyond_reason_is_not_a_500(self, client, login_as, world):
        login_as("viewer")
        url = f"/o/acme/programs/{world['program'].id}?page=99999999999999999999"
        assert client.get(url).status_code in (200, 404)

    def test_the_index_counts_active_and_graduated(self, client, login_as, world):
        login_as("viewer")
        page = text_of(client.get("/o/acme/programs/").text)
        assert "Quinoa suppliers Supplier program with a lead corporation Draft 2 0 4" in page

    def test_a_viewer_sees_no_manager_forms(self, client, login_as, world):
        login_as("viewer")
        page = main_of(client.get(f"/o/acme/programs/{world['program'].id}").text)
        assert "/status" not in page and "/officers" not in page and "/edit" not in page

    def test_a_viewer_sees_no_bulk_achieve_form(self, client, login_as, world):
        login_as("viewer")
        page = main_of(client.get(f"/o/acme/programs/{world['program'].id}").text)
        assert "<form" not in page

    def test_a_manager_sees_the_forms(self, client, login_as, world):
        login_as("program_manager")
        page = client.get(f"/o/acme/programs/{world['program'].id}").text
        assert "/status" in page and "/bulk-achieve" in page and "Fidel Officer" in page


class TestProducerPage:
    def _page(self, client, world) -> str:
        return html.unescape(client.get(f"/o/acme/producers/{world['rosa'].id}").text)

    def test_the_plan_with_each_milestone_and_its_state(self, client, login_as, world):
        login_as("viewer")
        page = self._page(client, world)
        plan = page.split('id="plan"', 1)[1].split('id="figures"', 1)[0]
        names = [m.name for m in milestones_of(world["program"].org_id, world["on_time"].id)]
        for name in names:
            assert name in plan
        assert "Achieved" in plan and "evidence required" in plan
        assert f"{round(100 / 16)}%" in plan

    def test_figures_with_their_reproduction_status(self, client, login_as, world):
        login_as("viewer")
        figures = (
            self._page(client, world).split('id="figures"', 1)[1].split('id="diagnostic"', 1)[0]
        )
        assert "Amplified reproduction" in figures
        for month in ("2025-01", "2025-02", "2025-03"):
            assert month in figures
        assert "1,000.00" in figures and "Fidel Officer" in figures
        assert "<svg" in figures  # the monthly chart

    def test_diagnostic_ledger_and_timeline(self, client, login_as, world):
        login_as("viewer")
        page = self._page(client, world)
        assert "total 18 of 24. Second" in page
        assert "1 purchases, 250.00 in all; 100% on time, 100% quality accepted." in page
        timeline = text_of(page.split('id="timeline"', 1)[1])
        for line in (
            "Registered.",
            "Joined Quinoa suppliers (Enrolled).",
            "Figures for 2025-03-01 recorded.",
            "Viability diagnostic: 18 of 24.",
            "Purchase recorded: 100.0 of Quinoa.",
        ):
            assert line in timeline

    def test_a_viewer_sees_no_edit_forms(self, client, login_as, world):
        login_as("viewer")
        page = main_of(client.get(f"/o/acme/producers/{world['rosa'].id}").text)
        assert "<form" not in page
        assert "/edit" not in page

    def test_an_unassigned_field_officer_sees_no_record_forms(self, client, login_as, world):
        login_as("field_officer")
        page = main_of(client.get(f"/o/acme/producers/{world['rosa'].id}").text)
        assert "/snapshots" not in page and "/assessments" not in page
        assert "/offtake" not in page and "/transition" not in page

    def test_the_assigned_field_officer_gets_the_record_forms(self, client, login, world):
        login(world["officer"])
        page = main_of(client.get(f"/o/acme/producers/{world['rosa'].id}").text)
        assert "/snapshots" in page and "/assessments" in page and "/offtake" in page
        assert "/transition" not in page  # moving enrollments is for managers

    def test_a_manager_gets_every_form(self, client, login_as, world):
        login_as("program_manager")
        page = main_of(client.get(f"/o/acme/producers/{world['rosa'].id}").text)
        for action in ("/snapshots", "/assessments", "/offtake", "/transition", "/edit"):
            assert action in page

    def test_another_organizations_producer_is_404(self, client, login_as, other_org):
        login_as("admin")
        foreign = new_producer(other_org.id, name="Elsewhere")
        assert client.get(f"/o/acme/producers/{foreign.id}").status_code == 404

    def test_an_id_beyond_the_integer_range_is_404(self, client, login_as, org):
        login_as("admin")
        assert client.get("/o/acme/producers/99999999999999999999").status_code == 404
