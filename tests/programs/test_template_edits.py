"""Editing a program's milestone template, with and without reaching current plans."""

from __future__ import annotations

from datetime import timedelta

import pytest

from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones.models import Enrollment, EnrollmentState, Milestone, MilestoneStatus
from inclusive.programs import services
from inclusive.programs.models import TemplateStep
from inclusive.tenancy.scope import tenant_scope
from tests.programs.support import (
    days_ago,
    detach,
    enroll,
    events,
    fresh,
    main_of,
    milestones_of,
    new_producer,
    new_program,
)

M = MilestoneStatus


@pytest.fixture
def cohort(org):
    """A supplier program with three live plans (enrolled 10 days ago) and one applicant."""
    program = new_program(org)
    people = [new_producer(org.id, name=f"Producer {i}") for i in range(4)]
    live = enroll(program, people[:3], on=days_ago(10))
    with tenant_scope(org.id):
        applied, _ = plans.enroll(program, [people[3].id], state=EnrollmentState.APPLIED)
        db.session.flush()
    return {"program": program, "live": live, "applied": applied[0]}


def _steps(org, program) -> list[TemplateStep]:
    detach()
    with tenant_scope(org.id):
        return list(
            db.session.scalars(
                db.select(TemplateStep)
                .filter_by(program_id=program.id)
                .order_by(TemplateStep.position)
            )
        )


def _set(org, enrollment: Enrollment, position: int, status: MilestoneStatus) -> Milestone:
    with tenant_scope(org.id):
        milestone = db.session.scalars(
            db.select(Milestone).filter_by(enrollment_id=enrollment.id, position=position)
        ).one()
        milestone.status = status
        db.session.flush()
        return milestone


def _fields(step: TemplateStep, **changes) -> services.StepFields:
    values = {
        "name": step.name,
        "offset_days": step.offset_days,
        "weight": step.weight,
        "evidence_required": step.evidence_required,
        **changes,
    }
    return services.StepFields(**values)


class TestAddStep:
    def test_with_apply_every_live_plan_gets_it_due_from_its_enrollment(self, org, cohort):
        program = cohort["program"]
        with tenant_scope(org.id):
            step = services.add_step(
                program, services.StepFields("Fair price audit", 400, 2, True), True
            )
            db.session.flush()
        assert step.position == 9
        for enrollment in cohort["live"]:
            added = [m for m in milestones_of(org.id, enrollment.id) if m.step_id == step.id]
            assert len(added) == 1
            assert added[0].name == "Fair price audit"
            assert added[0].due_date == days_ago(10) + timedelta(days=400)
            assert (added[0].weight, added[0].evidence_required) == (2, True)
            assert added[0].status == M.PLANNED
        assert milestones_of(org.id, cohort["applied"].id) == []  # applicants have no plan yet

    def test_without_apply_only_new_enrollments_get_it(self, org, cohort):
        program = cohort["program"]
        with tenant_scope(org.id):
            step = services.add_step(program, services.StepFields("Extra", 30, 1, False), False)
            db.session.flush()
        for enrollment in cohort["live"]:
            assert len(milestones_of(org.id, enrollment.id)) == 8
        [newcomer] = enroll(program, [new_producer(org.id, name="Late")])
        plan = milestones_of(org.id, newcomer.id)
        assert len(plan) == 9 and plan[-1].step_id == step.id
        [event] = events(org.id, "template.step_added", program_id=program.id)
        assert event.details == {"step": "Extra", "applied": False}

    def test_adding_an_overdue_step_puts_live_plans_at_risk(self, org, cohort):
        with tenant_scope(org.id):
            services.add_step(cohort["program"], services.StepFields("Day one", 0, 1, False), True)
            db.session.flush()
        assert all(fresh(org.id, Enrollment, e.id).at_risk for e in cohort["live"])

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            (("", 10, 1, False), "name"),
            (("   ", 10, 1, False), "name"),
            (("Step", -1, 1, False), "offset_days"),
            (("Step", 3651, 1, False), "offset_days"),
            (("Step", 10, 0, False), "weight"),
            (("Step", 10, 101, False), "weight"),
        ],
    )
    def test_bad_steps_are_refused_per_field(self, org, cohort, fields, field):
        with tenant_scope(org.id), pytest.raises(services.ProgramError) as refused:
            services.add_step(cohort["program"], services.StepFields(*fields), True)
        assert refused.value.field == field
        assert len(_steps(org, cohort["program"])) == 8

    def test_the_form_refuses_a_bad_step_with_400_and_keeps_what_was_typed(
        self, client, login_as, org
    ):
        login_as("program_manager")
        program = new_program(org)
        response = client.post(
            f"/o/acme/programs/{program.id}/template/steps",
            data={"name": "Soil analysis", "offset_days": "9999", "weight": "1"},
        )
        assert response.status_code == 400
        assert 'value="Soil analysis"' in response.text
        assert "Number must be between 0 and 3650." in response.text
        assert len(_steps(org, program)) == 8

    def test_the_form_adds_a_step_to_live_plans_when_asked(self, client, login_as, org):
        login_as("program_manager")
        program = new_program(org)
        [enrollment] = enroll(program, [new_producer(org.id)])
        response = client.post(
            f"/o/acme/programs/{program.id}/template/steps",
            data={"name": "Extra", "offset_days": "30", "weight": "2", "apply_to_existing": "y"},
        )
        assert response.status_code == 302
        assert [m.name for m in milestones_of(org.id, enrollment.id)][-1] == "Extra"


class TestUpdateStep:
    def test_with_apply_open_milestones_follow_and_done_ones_do_not(self, org, cohort):
        program = cohort["program"]
        first, second, third = cohort["live"]
        step = _steps(org, program)[1]  # position 2, offset 45
        _set(org, first, 2, M.IN_PROGRESS)
        _set(org, second, 2, M.ACHIEVED)
        _set(org, third, 2, M.VERIFIED)
        with tenant_scope(org.id):
            step = db.session.get(TemplateStep, step.id)
            fields = _fields(step, name="Renamed", offset_days=50, weight=5)
            services.update_step(step, fields, True)
            db.session.flush()
        moved = milestones_of(org.id, first.id)[1]
        assert (moved.name, moved.due_date, moved.weight, moved.status) == (
            "Renamed",
            days_ago(10) + timedelta(days=50),
            5,
            M.IN_PROGRESS,
        )
        for done in (second, third):
            kept = milestones_of(org.id, done.id)[1]
            assert kept.name != "Renamed"
            assert kept.due_date == days_ago(10) + timedelta(days=45)
            assert kept.weight == 2

    def test_with_apply_planned_and_missed_milestones_follow(self, org, cohort):
        first, second, _third = cohort["live"]
        _set(org, second, 1, M.MISSED)
        step = _steps(org, cohort["program"])[0]
        with tenant_scope(org.id):
            step = db.session.get(TemplateStep, step.id)
            services.update_step(step, _fields(step, name="Visit"), True)
            db.session.flush()
        assert milestones_of(org.id, first.id)[0].name == "Visit"
        assert milestones_of(org.id, second.id)[0].name == "Visit"

    def test_waived_milestones_are_never_changed(self, org, cohort):
        first = cohort["live"][0]
        _set(org, first, 3, M.WAIVED)
        step = _steps(org, cohort["program"])[2]
        with tenant_scope(org.id):
            step = db.session.get(TemplateStep, step.id)
            services.update_step(step, _fields(step, name="New name"), True)
            db.session.flush()
        assert milestones_of(org.id, first.id)[2].name != "New name"

    def test_without_apply_only_the_template_changes(self, org, cohort):
        step = _steps(org, cohort["program"])[0]
        old_name = step.name
        with tenant_scope(org.id):
            step = db.session.get(TemplateStep, step.id)
            services.update_step(step, _fields(step, name="Template only"), False)
            db.session.flush()
        assert _steps(org, cohort["program"])[0].name == "Template only"
        for enrollment in cohort["live"]:
            assert milestones_of(org.id, enrollment.id)[0].name == old_name
        [event] = events(org.id, "template.step_changed")
        assert event.details["changes"]["name"] == [old_name, "Template only"]
        assert event.details["applied"] is False

    def test_a_heavier_step_changes_progress_of_current_plans(self, org, cohort):
        first = cohort["live"][0]
        with tenant_scope(org.id):
            milestone = milestones_of(org.id, first.id)[0]
            plans.record_progress(milestone, M.ACHIEVED, "", None)
            db.session.flush()
        before = fresh(org.id, Enrollment, first.id).progress
        step = _steps(org, cohort["program"])[1]
        with tenant_scope(org.id):
            step = db.session.get(TemplateStep, step.id)
            services.update_step(step, _fields(step, weight=20), True)
            db.session.flush()
        # weights 1+20+1+3+2+3+2+2 = 34; the achieved step weighs 1
        assert before == round(100 * 1 / 16)
        assert fresh(org.id, Enrollment, first.id).progress == round(100 * 1 / 34)

    def test_applying_an_earlier_template_only_change_later(self, org, cohort):
        step = _steps(org, cohort["program"])[0]
        with tenant_scope(org.id):
            step = db.session.get(TemplateStep, step.id)
            services.update_step(step, _fields(step, name="Farm visit"), False)
            db.session.flush()
            services.update_step(step, _fields(step), True)  # same values, now applied
            db.session.flush()
        first = cohort["live"][0]
        assert milestones_of(org.id, first.id)[0].name == "Farm visit"


class TestRemoveStep:
    def test_with_apply_only_untouched_planned_milestones_go(self, org, cohort):
        first, second, third = cohort["live"]
        step = _steps(org, cohort["program"])[3]
        _set(org, second, 4, M.IN_PROGRESS)
        _set(org, third, 4, M.ACHIEVED)
        with tenant_scope(org.id):
            services.remove_step(db.session.get(TemplateStep, step.id), True)
            db.session.flush()
        assert [m.step_id for m in milestones_of(org.id, first.id)].count(step.id) == 0
        assert len(milestones_of(org.id, first.id)) == 7
        for kept_in in (second, third):
            plan = milestones_of(org.id, kept_in.id)
            assert len(plan) == 8
            detached = [m for m in plan if m.step_id is None]
            assert len(detached) == 1 and detached[0].position == 4

    def test_without_apply_every_milestone_stays_detached(self, org, cohort):
        step = _steps(org, cohort["program"])[0]
        with tenant_scope(org.id):
            services.remove_step(db.session.get(TemplateStep, step.id), False)
            db.session.flush()
        for enrollment in cohort["live"]:
            plan = milestones_of(org.id, enrollment.id)
            assert len(plan) == 8
            assert plan[0].step_id is None and plan[0].name == step.name
        assert [s.position for s in _steps(org, cohort["program"])] == list(range(1, 8))

    def test_removing_the_only_overdue_step_clears_the_risk(self, org, cohort):
        first = cohort["live"][0]
        assert fresh(org.id, Enrollment, first.id).at_risk is False
        with tenant_scope(org.id):
            services.add_step(cohort["program"], services.StepFields("Late", 1, 1, False), True)
            db.session.flush()
        assert fresh(org.id, Enrollment, first.id).at_risk is True
        late = _steps(org, cohort["program"])[-1]
        with tenant_scope(org.id):
            services.remove_step(db.session.get(TemplateStep, late.id), True)
            db.session.flush()
        assert fresh(org.id, Enrollment, first.id).at_risk is False

    def test_the_last_step_cannot_be_removed(self, org):
        program = new_program(org)
        steps = _steps(org, program)
        with tenant_scope(org.id):
            for step in steps[:-1]:
                services.remove_step(db.session.get(TemplateStep, step.id), False)
            db.session.flush()
            last = db.session.get(TemplateStep, steps[-1].id)
            with pytest.raises(services.ProgramError) as refused:
                services.remove_step(last, False)
        assert "at least one step" in str(refused.value)
        assert len(_steps(org, program)) == 1

    def test_the_page_says_why_the_last_step_stays(self, client, login_as, org):
        login_as("admin")
        program = new_program(org)
        steps = _steps(org, program)
        with tenant_scope(org.id):
            for step in steps[:-1]:
                services.remove_step(db.session.get(TemplateStep, step.id), False)
            db.session.flush()
        response = client.post(
            f"/o/acme/programs/{program.id}/template/steps/{steps[-1].id}/remove",
            follow_redirects=True,
        )
        assert "A template keeps at least one step." in response.text
        assert len(_steps(org, program)) == 1

    def test_a_step_of_another_program_is_404(self, client, login_as, org):
        login_as("admin")
        program = new_program(org)
        other = new_program(org, name="Other")
        foreign_step = _steps(org, other)[0]
        response = client.post(
            f"/o/acme/programs/{program.id}/template/steps/{foreign_step.id}/remove"
        )
        assert response.status_code == 404
        assert len(_steps(org, other)) == 8


class TestMoveStep:
    def test_moving_down_swaps_with_the_next_step_in_template_and_plans(self, org, cohort):
        before = _steps(org, cohort["program"])
        with tenant_scope(org.id):
            services.move_step(db.session.get(TemplateStep, before[0].id), +1, True)
            db.session.flush()
        after = _steps(org, cohort["program"])
        assert [s.id for s in after[:2]] == [before[1].id, before[0].id]
        plan = milestones_of(org.id, cohort["live"][0].id)
        assert [m.step_id for m in plan[:2]] == [before[1].id, before[0].id]

    def test_without_apply_plans_keep_their_order(self, org, cohort):
        before = _steps(org, cohort["program"])
        with tenant_scope(org.id):
            services.move_step(db.session.get(TemplateStep, before[2].id), -1, False)
            db.session.flush()
        assert [s.id for s in _steps(org, cohort["program"])][1:3] == [before[2].id, before[1].id]
        plan = milestones_of(org.id, cohort["live"][0].id)
        assert [m.step_id for m in plan] == [s.id for s in before]

    @pytest.mark.parametrize(("index", "direction"), [(0, -1), (7, +1)])
    def test_moving_past_either_end_changes_nothing(self, org, cohort, index, direction):
        before = [s.id for s in _steps(org, cohort["program"])]
        with tenant_scope(org.id):
            services.move_step(db.session.get(TemplateStep, before[index]), direction, True)
            db.session.flush()
        assert [s.id for s in _steps(org, cohort["program"])] == before

    def test_the_page_moves_a_step_up(self, client, login_as, org):
        login_as("program_manager")
        program = new_program(org)
        before = [s.id for s in _steps(org, program)]
        client.post(
            f"/o/acme/programs/{program.id}/template/steps/{before[3]}/move",
            data={"direction": "up", "apply_to_existing": "y"},
        )
        after = [s.id for s in _steps(org, program)]
        assert after[2:4] == [before[3], before[2]]


class TestTemplatePage:
    def test_a_viewer_reads_the_plan_without_forms(self, client, login_as, org):
        login_as("viewer")
        program = new_program(org)
        page = client.get(f"/o/acme/programs/{program.id}/template")
        assert page.status_code == 200
        assert "<form" not in main_of(page.text)
        assert _steps(org, program)[0].name in page.text

    def test_a_manager_gets_a_form_per_step(self, client, login_as, org):
        login_as("program_manager")
        program = new_program(org)
        page = client.get(f"/o/acme/programs/{program.id}/template").text
        for step in _steps(org, program):
            assert f"/template/steps/{step.id}/remove" in page

    def test_the_form_renames_a_step_in_live_plans(self, client, login_as, org):
        login_as("admin")
        program = new_program(org)
        [enrollment] = enroll(program, [new_producer(org.id)])
        step = _steps(org, program)[0]
        response = client.post(
            f"/o/acme/programs/{program.id}/template/steps/{step.id}",
            data={
                f"s{step.id}-name": "Visita a la finca",
                f"s{step.id}-offset_days": "7",
                f"s{step.id}-weight": "1",
                f"s{step.id}-apply_to_existing": "y",
            },
        )
        assert response.status_code == 302
        assert milestones_of(org.id, enrollment.id)[0].name == "Visita a la finca"

    def test_a_bad_step_edit_is_explained(self, client, login_as, org):
        login_as("admin")
        program = new_program(org)
        step = _steps(org, program)[0]
        response = client.post(
            f"/o/acme/programs/{program.id}/template/steps/{step.id}",
            data={
                f"s{step.id}-name": "",
                f"s{step.id}-offset_days": "7",
                f"s{step.id}-weight": "1",
            },
            follow_redirects=True,
        )
        assert "Check the step" in response.text
        assert _steps(org, program)[0].name == step.name
