"""Enrolling producers, their plans, and every move of an enrollment between states."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from flask_babel import force_locale

from inclusive.audit.models import AuditEvent
from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones.models import Enrollment, EnrollmentState, Milestone, MilestoneStatus
from inclusive.programs import services as programs
from inclusive.programs.models import Program, ProgramStatus
from inclusive.tenancy.scope import tenant_scope
from tests.milestones.conftest import load
from tests.programs.support import (
    count,
    days_ago,
    done,
    enroll,
    events,
    milestones_of,
    new_producer,
    new_program,
    text_of,
    today,
)

S = EnrollmentState
ALLOWED = [(a, b) for a in S for b in sorted(plans.TRANSITIONS[a])]
REFUSED = [(a, b) for a in S for b in S if b not in plans.TRANSITIONS[a]]


def _move(org_id: int, enrollment_id: int, state: EnrollmentState, reason: str = "") -> None:
    with tenant_scope(org_id):
        try:
            plans.transition(db.session.get(Enrollment, enrollment_id), state, reason)
        finally:
            done()


class TestEnrollMany:
    def test_every_producer_gets_a_plan_due_from_the_enrollment_date(self, org, program):
        people = [new_producer(org.id, name=n) for n in ("Ana", "Beto", "Carla")]
        start = days_ago(3)
        created = enroll(program, people, on=start)
        assert sorted(e.producer_id for e in created) == sorted(p.id for p in people)
        for enrollment in created:
            assert (enrollment.state, enrollment.enrolled_on) == (S.ENROLLED, start)
            plan = milestones_of(org.id, enrollment.id)
            assert [(m.step_id, m.name, m.due_date, m.weight, m.status) for m in plan] == [
                (s.id, s.name, start + timedelta(days=s.offset_days), s.weight, "planned")
                for s in program.steps
            ]

    def test_those_already_enrolled_are_skipped(self, org, program):
        first, second = new_producer(org.id, name="Ana"), new_producer(org.id, name="Beto")
        enroll(program, [first])
        with tenant_scope(org.id):
            created, skipped = plans.enroll(program, [first.id, second.id])
            done()
        assert [e.producer_id for e in created] == [second.id] and skipped == 1
        assert count(org.id, Enrollment, program_id=program.id) == 2
        assert count(org.id, Milestone, producer_id=first.id) == 8

    def test_each_enrollment_is_audited(self, org, program):
        producer = new_producer(org.id)
        enroll(program, [producer])
        [event] = events(org.id, "enrollment.created", producer_id=producer.id)
        assert event.program_id == program.id
        assert event.details == {"program": "Quinoa suppliers", "state": "enrolled"}

    def test_forged_ids_of_another_organization_write_nothing(self, org, other_org, program):
        mine = new_producer(org.id, name="Mine")
        theirs = new_producer(other_org.id, name="Theirs")
        with tenant_scope(org.id), pytest.raises(plans.PlanError) as refused:
            plans.enroll(program, [mine.id, theirs.id])
        assert "do not exist in this organization" in str(refused.value)
        db.session.rollback()
        assert count(org.id, Enrollment) == 0
        assert count(other_org.id, Enrollment) == 0

    def test_a_closed_program_takes_nobody(self, org, program):
        producer = new_producer(org.id)
        with tenant_scope(org.id):
            programs.set_status(db.session.get(Program, program.id), ProgramStatus.CLOSED)
            done()
        with tenant_scope(org.id), pytest.raises(plans.PlanError) as refused:
            plans.enroll(db.session.get(Program, program.id), [producer.id])
        assert "closed" in str(refused.value)

    @pytest.mark.parametrize("state", [S.ACTIVE, S.WAITLISTED, S.GRADUATED])
    def test_new_enrollments_start_applied_or_enrolled(self, org, program, state):
        producer = new_producer(org.id)
        with tenant_scope(org.id), pytest.raises(plans.PlanError):
            plans.enroll(program, [producer.id], state=state)

    def test_applicants_have_no_plan_until_enrolled(self, org, program):
        producer = new_producer(org.id)
        with tenant_scope(org.id):
            [applicant], _ = plans.enroll(program, [producer.id], state=S.APPLIED)
            done()
        assert milestones_of(org.id, applicant.id) == []
        assert applicant.enrolled_on is None
        _move(org.id, applicant.id, S.ENROLLED)
        enrollment = load(org.id, applicant.id)
        assert enrollment.enrolled_on == today()
        plan = milestones_of(org.id, applicant.id)
        assert len(plan) == 8
        assert plan[0].due_date == today() + timedelta(days=program.steps[0].offset_days)

    def test_waitlisted_producers_get_their_plan_when_enrolled(self, in_state, org):
        enrollment_id = in_state(S.WAITLISTED)
        _move(org.id, enrollment_id, S.ENROLLED)
        assert len(milestones_of(org.id, enrollment_id)) == 8


class TestEnrollPage:
    def test_enroll_many_from_the_list(self, client, login_as, org, program):
        login_as("program_manager")
        people = [new_producer(org.id, name=n) for n in ("Ana", "Beto", "Carla")]
        enroll(program, people[:1])
        response = client.post(
            "/o/acme/producers/enroll",
            data={
                "program_id": program.id,
                "state": "enrolled",
                "producer_ids": [str(p.id) for p in people],
            },
            follow_redirects=True,
        )
        assert response.request.path == f"/o/acme/programs/{program.id}"
        page = text_of(response.text)
        assert re.search(r"\b2 producer(s|\(s\))? joined Quinoa suppliers", page)
        assert re.search(r"\b1 (was|were) already in it", page)
        assert count(org.id, Enrollment, program_id=program.id) == 3

    def test_from_a_producers_page_it_goes_back_there(self, client, login_as, org, program):
        login_as("admin")
        producer = new_producer(org.id)
        response = client.post(
            "/o/acme/producers/enroll",
            data={
                "program_id": program.id,
                "state": "applied",
                "producer_ids": producer.id,
                "back": "producer",
            },
        )
        assert response.headers["Location"] == f"/o/acme/producers/{producer.id}"
        assert count(org.id, Enrollment, producer_id=producer.id, state="applied") == 1

    def test_a_forged_producer_id_is_refused_with_a_message_and_nothing_written(
        self, client, login_as, org, other_org, program
    ):
        login_as("program_manager")
        mine = new_producer(org.id, name="Mine")
        theirs = new_producer(other_org.id, name="Theirs")
        response = client.post(
            "/o/acme/producers/enroll",
            data={
                "program_id": program.id,
                "state": "enrolled",
                "producer_ids": [mine.id, theirs.id],
            },
            follow_redirects=True,
        )
        assert response.status_code == 200
        assert "Some of the producers do not exist in this organization." in response.text
        assert count(org.id, Enrollment) == 0 and count(other_org.id, Enrollment) == 0
        assert count(org.id, Milestone) == 0
        assert events(org.id, "enrollment.created") == []

    def test_a_forged_program_id_is_refused(self, client, login_as, org, other_org):
        login_as("program_manager")
        foreign = new_program(other_org)
        producer = new_producer(org.id)
        response = client.post(
            "/o/acme/producers/enroll",
            data={"program_id": foreign.id, "state": "enrolled", "producer_ids": producer.id},
            follow_redirects=True,
        )
        assert "Choose a program and at least one producer." in response.text
        assert count(other_org.id, Enrollment) == 0

    @pytest.mark.parametrize("ids", [[], ["abc"], ["1; DROP TABLE producers"]])
    def test_no_or_garbled_ids_are_refused(self, client, login_as, org, program, ids):
        login_as("admin")
        response = client.post(
            "/o/acme/producers/enroll",
            data={"program_id": program.id, "state": "enrolled", "producer_ids": ids},
            follow_redirects=True,
        )
        assert "Choose a program and at least one producer." in response.text
        assert count(org.id, Enrollment) == 0

    def test_an_id_beyond_the_integer_range_is_refused(self, client, login_as, org, program):
        login_as("admin")
        response = client.post(
            "/o/acme/producers/enroll",
            data={
                "program_id": program.id,
                "state": "enrolled",
                "producer_ids": "99999999999999999999",
            },
            follow_redirects=True,
        )
        assert response.status_code == 200
        assert count(org.id, Enrollment) == 0

    def test_a_viewer_cannot_enroll(self, client, login_as, org, program):
        login_as("viewer")
        producer = new_producer(org.id)
        response = client.post(
            "/o/acme/producers/enroll",
            data={"program_id": program.id, "state": "enrolled", "producer_ids": producer.id},
        )
        assert response.status_code == 403
        assert count(org.id, Enrollment) == 0


class TestTransitions:
    @pytest.mark.parametrize(("old", "new"), REFUSED)
    def test_every_refused_move_says_why(self, org, in_state, old, new):
        enrollment_id = in_state(old)
        with pytest.raises(plans.PlanError) as refused, force_locale("en"):
            _move(org.id, enrollment_id, new, "a reason")
        assert str(refused.value) == (
            f"An enrollment that is {plans.STATE_LABELS[old]} "
            f"cannot become {plans.STATE_LABELS[new]}."
        )
        assert load(org.id, enrollment_id).state == old

    @pytest.mark.parametrize(("old", "new"), ALLOWED)
    def test_every_allowed_move_is_made_and_audited(self, org, in_state, old, new):
        enrollment_id = in_state(old)
        if new == S.GRADUATED:
            with tenant_scope(org.id):
                for milestone in db.session.get(Enrollment, enrollment_id).milestones:
                    plans.waive(milestone, "Not needed")
                done()
        _move(org.id, enrollment_id, new, "Because")
        enrollment = load(org.id, enrollment_id)
        assert enrollment.state == new
        last = events(org.id, "enrollment.state", producer_id=enrollment.producer_id)[-1]
        assert (last.details["old"], last.details["new"], last.details["reason"]) == (
            old.value,
            new.value,
            "Because",
        )
        assert enrollment.ended_on == (today() if new in (S.GRADUATED, S.WITHDRAWN) else None)

    @pytest.mark.parametrize("reason", ["", "   "])
    def test_withdrawal_needs_a_reason(self, org, in_state, reason):
        enrollment_id = in_state(S.ACTIVE)
        with pytest.raises(plans.PlanError) as refused:
            _move(org.id, enrollment_id, S.WITHDRAWN, reason)
        assert "Say why the producer is withdrawn." in str(refused.value)
        assert load(org.id, enrollment_id).state == S.ACTIVE

    def test_a_withdrawal_keeps_its_reason_and_clears_the_risk(self, org, program):
        [late] = enroll(program, [new_producer(org.id)], on=days_ago(60))
        assert load(org.id, late.id).at_risk is True
        _move(org.id, late.id, S.WITHDRAWN, "  Moved to Lima ")
        enrollment = load(org.id, late.id)
        assert (enrollment.state_reason, enrollment.at_risk) == ("Moved to Lima", False)

    def test_graduation_needs_every_milestone_done(self, org, in_state):
        enrollment_id = in_state(S.ACTIVE)
        with tenant_scope(org.id):
            enrollment = db.session.get(Enrollment, enrollment_id)
            for milestone in enrollment.milestones[:-1]:
                plans.waive(milestone, "Not needed")
            done()
        with pytest.raises(plans.PlanError) as refused:
            _move(org.id, enrollment_id, S.GRADUATED)
        assert "Graduation needs every milestone achieved, verified or waived" in str(refused.value)
        assert "Graduation review and credit-readiness profile" in str(refused.value)
        assert load(org.id, enrollment_id).state == S.ACTIVE

    def test_achieved_verified_and_waived_all_count_as_done(self, org, in_state):
        enrollment_id = in_state(S.ACTIVE)
        with tenant_scope(org.id):
            first, second, *rest = db.session.get(Enrollment, enrollment_id).milestones
            plans.record_progress(first, MilestoneStatus.ACHIEVED, "", None)
            plans.record_progress(second, MilestoneStatus.ACHIEVED, "", None)
            second.evidence_required = False
            plans.verify(second, None)
            for milestone in rest:
                plans.waive(milestone, "n/a")
            done()
        _move(org.id, enrollment_id, S.GRADUATED)
        assert load(org.id, enrollment_id).state == S.GRADUATED


class TestTransitionPage:
    def test_a_refused_move_is_explained_and_nothing_changes(self, client, login_as, org, in_state):
        login_as("program_manager")
        enrollment_id = in_state(S.APPLIED)
        response = client.post(
            f"/o/acme/enrollments/{enrollment_id}/transition",
            data={"state": "graduated"},
            follow_redirects=True,
        )
        assert "An enrollment that is Applied cannot become Graduated." in response.text
        assert load(org.id, enrollment_id).state == S.APPLIED

    def test_withdrawing_without_a_reason_is_explained(self, client, login_as, org, in_state):
        login_as("admin")
        enrollment_id = in_state(S.ENROLLED)
        response = client.post(
            f"/o/acme/enrollments/{enrollment_id}/transition",
            data={"state": "withdrawn", "reason": ""},
            follow_redirects=True,
        )
        assert "Say why the producer is withdrawn." in response.text
        assert load(org.id, enrollment_id).state == S.ENROLLED

    def test_enrolling_an_applicant_makes_the_plan(self, client, login_as, org, in_state):
        login_as("admin")
        enrollment_id = in_state(S.APPLIED)
        response = client.post(
            f"/o/acme/enrollments/{enrollment_id}/transition", data={"state": "enrolled"}
        )
        assert response.status_code == 302
        assert load(org.id, enrollment_id).state == S.ENROLLED
        assert len(milestones_of(org.id, enrollment_id)) == 8

    def test_an_unknown_state_is_refused(self, client, login_as, org, in_state):
        login_as("admin")
        enrollment_id = in_state(S.ENROLLED)
        response = client.post(
            f"/o/acme/enrollments/{enrollment_id}/transition",
            data={"state": "expelled"},
            follow_redirects=True,
        )
        assert "Choose a state." in response.text
        assert load(org.id, enrollment_id).state == S.ENROLLED

    @pytest.mark.parametrize("role", ["field_officer", "viewer"])
    def test_only_managers_move_enrollments(self, client, login_as, org, in_state, role):
        login_as(role)
        enrollment_id = in_state(S.ENROLLED)
        response = client.post(
            f"/o/acme/enrollments/{enrollment_id}/transition", data={"state": "active"}
        )
        assert response.status_code == 403
        assert load(org.id, enrollment_id).state == S.ENROLLED

    def test_another_organizations_enrollment_is_404(self, client, login_as, org, other_org):
        login_as("admin")
        foreign = new_program(other_org)
        [enrollment] = enroll(foreign, [new_producer(other_org.id)])
        response = client.post(
            f"/o/acme/enrollments/{enrollment.id}/transition", data={"state": "active"}
        )
        assert response.status_code == 404
        assert load(other_org.id, enrollment.id).state == S.ENROLLED


class TestTimeline:
    def test_the_producer_page_tells_each_change_with_its_author(
        self, client, login_as, org, program
    ):
        manager = login_as("program_manager", name="Marta Manager")
        producer = new_producer(org.id, name="Rosa Huamán")
        client.post(
            "/o/acme/producers/enroll",
            data={"program_id": program.id, "state": "enrolled", "producer_ids": producer.id},
        )
        with tenant_scope(org.id):
            enrollment_id = db.session.scalars(
                db.select(Enrollment.id).filter_by(producer_id=producer.id)
            ).one()
        client.post(f"/o/acme/enrollments/{enrollment_id}/transition", data={"state": "active"})
        client.post(
            f"/o/acme/enrollments/{enrollment_id}/transition",
            data={"state": "paused", "reason": "Rainy season"},
        )
        page = client.get(f"/o/acme/producers/{producer.id}").text
        timeline = text_of(html.unescape(page.split('id="timeline"', 1)[1]))
        assert "Joined Quinoa suppliers (Enrolled)." in timeline
        assert "Quinoa suppliers: Enrolled → Active." in timeline
        assert "Quinoa suppliers: Active → Paused. Rainy season" in timeline
        assert timeline.index("Paused") < timeline.index("Joined")  # newest first
        assert timeline.count(manager.name) >= 3
        with tenant_scope(org.id):
            actors = set(
                db.session.scalars(
                    db.select(AuditEvent.actor_id).where(
                        AuditEvent.producer_id == producer.id,
                        AuditEvent.action.startswith("enrollment."),
                    )
                )
            )
        assert actors == {manager.id}
