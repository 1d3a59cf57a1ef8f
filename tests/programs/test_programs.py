"""Programs: default plans per kind and language, dates, the status flow, field officers."""

from __future__ import annotations

import html
from contextlib import contextmanager
from datetime import date

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from inclusive.extensions import db
from inclusive.programs import services
from inclusive.programs.catalog import DEFAULT_TEMPLATES, GRADUATION
from inclusive.programs.models import Program, ProgramKind, ProgramOfficer, ProgramStatus
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.programs.support import count, detach, done, events, fresh, new_program

KINDS = list(ProgramKind)
STATUSES = list(ProgramStatus)
ALLOWED_STATUS = [(a, b) for a in STATUSES for b in sorted(services.STATUS_FLOW[a])]
REFUSED_STATUS = [
    (a, b) for a in STATUSES for b in STATUSES if a != b and b not in services.STATUS_FLOW[a]
]


def _msgid(lazy) -> str:
    """The English source string of a lazy catalog entry."""
    return lazy._args[0]


def _program(org, kind="supplier_program", **fields) -> Program:
    return new_program(org, kind, **fields)


def _steps(program):
    with tenant_scope(program.org_id):
        return list(program.steps)


@contextmanager
def _spy_locale(monkeypatch, seen: list[str]):
    real = services.force_locale

    @contextmanager
    def spy(locale):
        seen.append(str(locale))
        with real(locale):
            yield

    monkeypatch.setattr(services, "force_locale", spy)
    yield


class TestDefaultTemplates:
    @pytest.mark.parametrize("kind", KINDS)
    def test_each_kind_gets_six_to_ten_steps_in_order(self, org, kind):
        steps = _steps(_program(org, kind))
        assert 6 <= len(steps) <= 10
        assert [s.position for s in steps] == list(range(1, len(steps) + 1))
        offsets = [s.offset_days for s in steps]
        assert offsets == sorted(offsets), "steps come due in the order they are listed"
        assert all(s.weight >= 1 for s in steps)

    @pytest.mark.parametrize("kind", KINDS)
    def test_each_template_copies_the_catalog_and_ends_with_graduation(self, org, kind):
        steps = _steps(_program(org, kind))
        spec = DEFAULT_TEMPLATES[kind]
        assert [s.name for s in steps] == [str(x.name) for x in spec]
        assert [(s.offset_days, s.weight, s.evidence_required) for s in steps] == [
            (x.offset_days, x.weight, x.evidence_required) for x in spec
        ]
        assert steps[-1].name == str(GRADUATION)

    @pytest.mark.parametrize("language", ["es", "pt", "en"])
    @pytest.mark.parametrize("kind", [ProgramKind.RURAL_NETWORK, ProgramKind.SERVICE_CENTER])
    def test_step_names_are_in_the_organizations_language(self, language, kind):
        home = factories.OrganizationFactory(default_language=language)
        steps = _steps(_program(home, kind))
        with force_locale(language):
            expected = [gettext(_msgid(spec.name)) for spec in DEFAULT_TEMPLATES[kind]]
        assert [s.name for s in steps] == expected
        assert all(type(s.name) is str for s in steps)  # stored text, not a lazy string

    def test_the_organizations_language_wins_over_the_managers(
        self, client, make_member, login, monkeypatch
    ):
        home = factories.OrganizationFactory(slug="andes", default_language="es")
        login(make_member("admin", organization=home, locale="en"))
        seen: list[str] = []
        with _spy_locale(monkeypatch, seen):
            response = client.post(
                "/o/andes/programs/new",
                data={"kind": "rural_network", "name": "Cacao", "counterpart_kind": "other"},
            )
        assert response.status_code == 302
        assert seen == ["es"]
        with tenant_scope(home.id):
            program = db.session.scalars(select(Program).filter_by(name="Cacao")).one()
        with force_locale("es"):
            first = gettext(_msgid(DEFAULT_TEMPLATES[ProgramKind.RURAL_NETWORK][0].name))
        assert _steps(program)[0].name == first

    def test_creation_is_audited(self, org):
        program = _program(org, "export_consortium", name="Alpaca wool")
        [event] = events(org.id, "program.created", program_id=program.id)
        assert event.details == {"name": "Alpaca wool", "kind": "export_consortium"}


class TestDates:
    def test_end_before_start_is_refused(self, org):
        with tenant_scope(org.id), pytest.raises(services.ProgramError) as refused:
            factories.make_program(org, start_date=date(2025, 3, 1), end_date=date(2025, 2, 28))
        assert refused.value.field == "end_date"
        assert "before the start date" in str(refused.value)
        assert count(org.id, Program) == 0

    def test_one_day_programs_and_open_ends_are_fine(self, org):
        same = _program(org, start_date=date(2025, 3, 1), end_date=date(2025, 3, 1))
        open_ended = _program(org, name="Open", start_date=date(2025, 3, 1))
        assert same.end_date == same.start_date and open_ended.end_date is None

    def test_update_refuses_end_before_start(self, org):
        program = _program(org, start_date=date(2025, 1, 1))
        with tenant_scope(org.id), pytest.raises(services.ProgramError):
            services.update_program(
                program, start_date=date(2025, 6, 1), end_date=date(2025, 5, 31)
            )

    def test_update_with_only_an_end_date_checks_it_against_the_stored_start(self, org):
        program = _program(org, start_date=date(2025, 6, 1))
        with tenant_scope(org.id), pytest.raises(services.ProgramError):
            attached = db.session.get(Program, program.id)
            services.update_program(attached, end_date=date(2025, 1, 1))
            db.session.flush()

    def test_new_program_form_shows_the_date_error_and_keeps_typed_values(
        self, client, login_as, org
    ):
        login_as("program_manager")
        response = client.post(
            "/o/acme/programs/new",
            data={
                "kind": "supplier_program",
                "name": "Coffee growers",
                "start_date": "2025-05-10",
                "end_date": "2025-05-01",
                "counterpart_kind": "lead_corporation",
                "counterpart_name": "Café del Sur",
            },
        )
        page = html.unescape(response.text)
        assert "The end date is before the start date." in page
        assert 'value="Coffee growers"' in page and 'value="Café del Sur"' in page
        assert 'value="2025-05-01"' in page
        assert count(org.id, Program) == 0

    def test_edit_form_refuses_end_before_start_with_400(self, client, login_as, org):
        login_as("admin")
        program = _program(org, start_date=date(2025, 1, 1), end_date=date(2025, 12, 31))
        response = client.post(
            f"/o/acme/programs/{program.id}/edit",
            data={
                "name": "Renamed",
                "start_date": "2025-06-01",
                "end_date": "2025-05-01",
                "counterpart_kind": "other",
            },
        )
        assert response.status_code == 400
        assert "The end date is before the start date." in response.text
        saved = fresh(org.id, Program, program.id)
        assert (saved.name, saved.end_date) == ("Quinoa suppliers", date(2025, 12, 31))

    def test_edit_saves_and_audits_what_changed(self, client, login_as, org):
        login_as("admin")
        program = _program(org)
        response = client.post(
            f"/o/acme/programs/{program.id}/edit",
            data={"name": "Quinoa suppliers", "region": "Puno", "counterpart_kind": "other"},
        )
        assert response.status_code == 302
        assert fresh(org.id, Program, program.id).region == "Puno"
        [event] = events(org.id, "program.updated", program_id=program.id)
        assert event.details["changes"]["region"] == ["", "Puno"]

    def test_impossible_dates_in_the_form_are_field_errors_not_500(self, client, login_as, org):
        login_as("admin")
        response = client.post(
            "/o/acme/programs/new",
            data={
                "kind": "service_center",
                "name": "X",
                "start_date": "2025-02-30",
                "counterpart_kind": "other",
            },
        )
        assert response.status_code in (200, 400)
        assert "Not a valid date value." in response.text
        assert count(org.id, Program) == 0


class TestStatusFlow:
    @staticmethod
    def _at(org, status: ProgramStatus) -> Program:
        program = _program(org)
        with tenant_scope(org.id):
            attached = db.session.get(Program, program.id)
            services.set_status(attached, status)  # from draft, every status is allowed
            done()
        return attached

    @staticmethod
    def _set(org, program: Program, status: ProgramStatus) -> Program:
        with tenant_scope(org.id):
            attached = db.session.get(Program, program.id)
            try:
                services.set_status(attached, status)
            finally:
                done()
        return attached

    @pytest.mark.parametrize(("old", "new"), ALLOWED_STATUS)
    def test_allowed_moves_are_made_and_audited(self, org, old, new):
        program = self._at(org, old)
        self._set(org, program, new)
        assert fresh(org.id, Program, program.id).status == new
        event = events(org.id, "program.status", program_id=program.id)[-1]
        assert event.details == {"old": old.value, "new": new.value}

    @pytest.mark.parametrize(("old", "new"), REFUSED_STATUS)
    def test_refusals_say_why(self, org, old, new):
        program = self._at(org, old)
        with pytest.raises(services.ProgramError) as refused, force_locale("en"):
            self._set(org, program, new)
        assert str(refused.value) == (
            f"A program that is {services.STATUS_LABELS[old]} "
            f"cannot become {services.STATUS_LABELS[new]}."
        )
        assert fresh(org.id, Program, program.id).status == old

    def test_the_same_status_again_changes_nothing(self, org):
        program = self._at(org, ProgramStatus.OPEN)
        self._set(org, program, ProgramStatus.OPEN)
        assert len(events(org.id, "program.status")) == 1  # draft -> open only

    def test_the_page_shows_the_refusal(self, client, login_as, org):
        login_as("program_manager")
        program = self._at(org, ProgramStatus.CLOSED)
        response = client.post(
            f"/o/acme/programs/{program.id}/status",
            data={"status": "open"},
            follow_redirects=True,
        )
        assert "A program that is Closed cannot become Open for applications." in response.text
        assert fresh(org.id, Program, program.id).status == ProgramStatus.CLOSED

    def test_a_manager_opens_a_draft(self, client, login_as, org):
        login_as("program_manager")
        program = _program(org)
        response = client.post(f"/o/acme/programs/{program.id}/status", data={"status": "open"})
        assert response.status_code == 302
        assert fresh(org.id, Program, program.id).status == ProgramStatus.OPEN

    def test_an_unknown_status_changes_nothing(self, client, login_as, org):
        login_as("admin")
        program = _program(org)
        client.post(f"/o/acme/programs/{program.id}/status", data={"status": "archived"})
        assert fresh(org.id, Program, program.id).status == ProgramStatus.DRAFT


class TestFieldOfficers:
    def _officers(self, org, program) -> list[int]:
        detach()
        with tenant_scope(org.id):
            return [o.user_id for o in services.officers(program)]

    def test_a_field_officer_is_assigned_once_and_audited(self, org, make_member):
        program = _program(org)
        officer = make_member("field_officer", name="Lucía Field")
        with tenant_scope(org.id):
            services.assign_officer(program, officer.id)
            services.assign_officer(program, officer.id)
            db.session.flush()
        assert self._officers(org, program) == [officer.id]
        [event] = events(org.id, "program.officer_assigned")
        assert event.details["officer"] == "Lucía Field"

    @pytest.mark.parametrize("role", ["admin", "program_manager", "viewer"])
    def test_other_roles_are_refused(self, org, make_member, role):
        program = _program(org)
        member = make_member(role)
        with tenant_scope(org.id), pytest.raises(services.ProgramError) as refused:
            services.assign_officer(program, member.id)
        assert "Only field officers" in str(refused.value)
        assert self._officers(org, program) == []

    def test_a_field_officer_of_another_organization_is_refused(self, org, other_org, make_member):
        program = _program(org)
        stranger = make_member("field_officer", organization=other_org)
        with tenant_scope(org.id), pytest.raises(services.ProgramError):
            services.assign_officer(program, stranger.id)
        assert self._officers(org, program) == []

    def test_the_page_offers_only_unassigned_field_officers(
        self, client, login_as, org, make_member
    ):
        login_as("admin")
        program = _program(org)
        make_member("field_officer", name="Free Officer")
        busy = make_member("field_officer", name="Busy Officer")
        make_member("viewer", name="Vera Viewer")
        with tenant_scope(org.id):
            services.assign_officer(program, busy.id)
            db.session.flush()
        page = client.get(f"/o/acme/programs/{program.id}").text
        options = page.split('name="user_id"', 1)[1].split("</select>", 1)[0]
        assert "Free Officer" in options
        assert "Busy Officer" not in options and "Vera Viewer" not in options
        assert "Busy Officer" in page  # listed as assigned

    def test_posting_a_viewers_id_is_refused(self, client, login_as, org, make_member):
        login_as("admin")
        program = _program(org)
        viewer = make_member("viewer")
        response = client.post(
            f"/o/acme/programs/{program.id}/officers",
            data={"user_id": viewer.id},
            follow_redirects=True,
        )
        assert "Choose a field officer of the organization." in response.text
        assert self._officers(org, program) == []

    def test_assign_and_remove_through_the_pages(self, client, login_as, org, make_member):
        login_as("program_manager")
        program = _program(org)
        officer = make_member("field_officer")
        client.post(f"/o/acme/programs/{program.id}/officers", data={"user_id": officer.id})
        assert self._officers(org, program) == [officer.id]
        client.post(f"/o/acme/programs/{program.id}/officers/{officer.id}/remove")
        assert self._officers(org, program) == []
        assert count(org.id, ProgramOfficer) == 0
