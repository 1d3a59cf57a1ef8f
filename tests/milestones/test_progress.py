"""Recording progress, verifying, waiving, sending back, missing; progress and risk."""

from __future__ import annotations

from datetime import timedelta

import pytest

from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones.models import EnrollmentState, Evidence, Milestone
from inclusive.milestones.models import MilestoneStatus as M
from inclusive.storage import storage
from inclusive.tenancy.scope import tenant_scope
from tests.milestones.conftest import load, put_in_state
from tests.programs.support import (
    PNG,
    assign,
    days_ago,
    done,
    enroll,
    events,
    fresh,
    milestones_of,
    new_producer,
    new_program,
    today,
)

S = EnrollmentState
SUPPLIER_WEIGHTS = [1, 2, 1, 3, 2, 3, 2, 2]  # the default supplier template, 16 in all


@pytest.fixture
def plan(org, program):
    """One live plan of the supplier program, enrolled today; its milestone ids in order."""
    [enrollment] = enroll(program, [new_producer(org.id)])
    return enrollment.id, [m.id for m in milestones_of(org.id, enrollment.id)]


def _act(org_id: int, milestone_id: int, action, *args) -> Milestone:
    """Run a milestone service on a freshly loaded milestone, then write it."""
    with tenant_scope(org_id):
        milestone = db.session.get(Milestone, milestone_id)
        try:
            action(milestone, *args)
        finally:
            done()
    return milestone


def _status(org_id: int, milestone_id: int, status: M) -> None:
    _act(org_id, milestone_id, plans.record_progress, status, "", None)


def _evidence(org_id: int, milestone_id: int) -> None:
    with tenant_scope(org_id):
        db.session.add(
            Evidence(
                milestone_id=milestone_id,
                filename="photo.png",
                content_type="image/png",
                size=len(PNG),
                storage_key=storage().save(PNG, ".png"),
                sha256="0" * 64,
            )
        )
        done()


class TestRecordThroughThePage:
    def test_an_assigned_field_officer_records_progress(self, client, login_as, org, program, plan):
        officer = login_as("field_officer")
        assign(program, officer)
        enrollment_id, ids = plan
        response = client.post(
            f"/o/acme/milestones/{ids[0]}",
            data={"status": "in_progress", "note": "Visited the farm"},
        )
        assert response.status_code == 302
        producer_id = load(org.id, enrollment_id).producer_id
        assert response.headers["Location"].endswith(f"/producers/{producer_id}#plan")
        saved = fresh(org.id, Milestone, ids[0])
        assert (saved.status, saved.note, saved.recorded_by_id) == (
            M.IN_PROGRESS,
            "Visited the farm",
            officer.id,
        )

    def test_an_unassigned_field_officer_gets_403_and_changes_nothing(
        self, client, login_as, org, plan
    ):
        login_as("field_officer")
        _enrollment_id, ids = plan
        response = client.post(f"/o/acme/milestones/{ids[0]}", data={"status": "achieved"})
        assert response.status_code == 403
        assert fresh(org.id, Milestone, ids[0]).status == M.PLANNED

    def test_an_officer_of_another_program_gets_403(self, client, login_as, org, plan):
        officer = login_as("field_officer")
        assign(new_program(org, name="Another"), officer)
        _enrollment_id, ids = plan
        response = client.post(f"/o/acme/milestones/{ids[0]}", data={"status": "achieved"})
        assert response.status_code == 403

    def test_an_unassigned_officer_reads_the_page_without_the_form(
        self, client, login_as, org, plan
    ):
        login_as("field_officer")
        page = client.get(f"/o/acme/milestones/{plan[1][0]}")
        assert page.status_code == 200
        assert "Record progress" not in page.text
        assert 'enctype="multipart/form-data"' not in page.text

    def test_a_viewer_cannot_record(self, client, login_as, org, plan):
        login_as("viewer")
        response = client.post(f"/o/acme/milestones/{plan[1][0]}", data={"status": "achieved"})
        assert response.status_code == 403
        assert fresh(org.id, Milestone, plan[1][0]).status == M.PLANNED

    def test_a_manager_records_in_any_program(self, client, login_as, org, plan):
        login_as("program_manager")
        response = client.post(f"/o/acme/milestones/{plan[1][0]}", data={"status": "achieved"})
        assert response.status_code == 302
        assert fresh(org.id, Milestone, plan[1][0]).status == M.ACHIEVED

    def test_a_closed_plan_refuses_progress_with_a_message(self, client, login_as, org, program):
        login_as("admin")
        enrollment_id = put_in_state(org.id, program, S.WITHDRAWN)
        milestone_id = milestones_of(org.id, enrollment_id)[0].id
        response = client.post(f"/o/acme/milestones/{milestone_id}", data={"status": "achieved"})
        assert response.status_code == 400
        assert "This enrollment is Withdrawn: its plan is closed." in response.text
        assert fresh(org.id, Milestone, milestone_id).status == M.PLANNED

    def test_a_verified_milestone_cannot_be_reopened_here(self, client, login_as, org, plan):
        login_as("admin")
        first = plan[1][0]  # evidence required
        _status(org.id, first, M.ACHIEVED)
        _evidence(org.id, first)
        _act(org.id, first, plans.verify, None)
        response = client.post(f"/o/acme/milestones/{first}", data={"status": "planned"})
        assert response.status_code == 400
        assert "A milestone that is Verified cannot be marked Planned here." in response.text
        assert fresh(org.id, Milestone, first).status == M.VERIFIED

    def test_a_status_outside_the_form_is_refused(self, client, login_as, org, plan):
        login_as("admin")
        response = client.post(f"/o/acme/milestones/{plan[1][0]}", data={"status": "verified"})
        assert response.status_code == 400
        assert fresh(org.id, Milestone, plan[1][0]).status == M.PLANNED

    def test_another_organizations_milestone_is_404(self, client, login_as, other_org):
        login_as("admin")
        [foreign] = enroll(new_program(other_org), [new_producer(other_org.id)])
        milestone_id = milestones_of(other_org.id, foreign.id)[0].id
        assert client.get(f"/o/acme/milestones/{milestone_id}").status_code == 404
        response = client.post(f"/o/acme/milestones/{milestone_id}", data={"status": "achieved"})
        assert response.status_code == 404
        assert fresh(other_org.id, Milestone, milestone_id).status == M.PLANNED


class TestRecordRules:
    def test_progress_is_audited_with_the_note(self, org, plan):
        _act(org.id, plan[1][1], plans.record_progress, M.IN_PROGRESS, "  Half done ", None)
        [event] = events(org.id, "milestone.recorded")
        assert event.details["old"] == "planned" and event.details["new"] == "in_progress"
        assert event.details["note"] == "Half done"
        assert fresh(org.id, Milestone, plan[1][1]).note == "Half done"

    @pytest.mark.parametrize(
        ("start", "target"),
        [(M.VERIFIED, M.IN_PROGRESS), (M.WAIVED, M.ACHIEVED), (M.ACHIEVED, M.PLANNED)],
    )
    def test_refused_moves_say_why(self, org, plan, start, target):
        milestone_id = plan[1][7]  # no evidence required
        with tenant_scope(org.id):
            db.session.get(Milestone, milestone_id).status = start
            done()
        with pytest.raises(plans.PlanError) as refused:
            _act(org.id, milestone_id, plans.record_progress, target, "", None)
        assert "cannot be marked" in str(refused.value)

    def test_a_missed_milestone_can_still_be_achieved(self, org, plan):
        _act(org.id, plan[1][0], plans.mark_missed, "late")
        _status(org.id, plan[1][0], M.ACHIEVED)
        assert fresh(org.id, Milestone, plan[1][0]).status == M.ACHIEVED


class TestVerify:
    def test_only_achieved_milestones_are_verified(self, org, plan):
        with pytest.raises(plans.PlanError) as refused:
            _act(org.id, plan[1][7], plans.verify, None)
        assert "Only an achieved milestone can be verified." in str(refused.value)

    def test_evidence_is_needed_when_the_step_requires_it(self, org, plan):
        first = plan[1][0]
        _status(org.id, first, M.ACHIEVED)
        with pytest.raises(plans.PlanError) as refused:
            _act(org.id, first, plans.verify, None)
        assert "needs evidence" in str(refused.value)
        assert fresh(org.id, Milestone, first).status == M.ACHIEVED

    def test_with_evidence_it_is_verified_by_the_manager(self, org, plan, make_member):
        manager = make_member("program_manager")
        first = plan[1][0]
        _status(org.id, first, M.ACHIEVED)
        _evidence(org.id, first)
        _act(org.id, first, plans.verify, manager.id)
        saved = fresh(org.id, Milestone, first)
        assert (saved.status, saved.verified_by_id) == (M.VERIFIED, manager.id)
        assert saved.verified_at is not None
        assert len(events(org.id, "milestone.verified")) == 1

    def test_no_evidence_needed_when_not_required(self, org, plan):
        step_without = plan[1][7]
        _status(org.id, step_without, M.ACHIEVED)
        _act(org.id, step_without, plans.verify, None)
        assert fresh(org.id, Milestone, step_without).status == M.VERIFIED

    def test_the_page_explains_missing_evidence(self, client, login_as, org, plan):
        login_as("program_manager")
        _status(org.id, plan[1][0], M.ACHIEVED)
        response = client.post(f"/o/acme/milestones/{plan[1][0]}/verify", follow_redirects=True)
        assert "This milestone needs evidence (a document or photo) first." in response.text
        assert fresh(org.id, Milestone, plan[1][0]).status == M.ACHIEVED

    def test_field_officers_cannot_verify(self, client, login_as, org, program, plan):
        assign(program, login_as("field_officer"))
        _status(org.id, plan[1][7], M.ACHIEVED)
        response = client.post(f"/o/acme/milestones/{plan[1][7]}/verify")
        assert response.status_code == 403
        assert fresh(org.id, Milestone, plan[1][7]).status == M.ACHIEVED


class TestWaiveSendBackMiss:
    @pytest.mark.parametrize("reason", ["", "  "])
    def test_waiving_needs_a_reason(self, org, plan, reason):
        with pytest.raises(plans.PlanError) as refused:
            _act(org.id, plan[1][2], plans.waive, reason)
        assert "Say why the milestone is waived." in str(refused.value)
        assert fresh(org.id, Milestone, plan[1][2]).status == M.PLANNED

    def test_the_page_asks_why_before_waiving(self, client, login_as, org, plan):
        login_as("admin")
        response = client.post(
            f"/o/acme/milestones/{plan[1][2]}/waive", data={"reason": ""}, follow_redirects=True
        )
        assert "Say why." in response.text
        assert fresh(org.id, Milestone, plan[1][2]).status == M.PLANNED

    def test_a_waiver_keeps_its_reason_and_counts_as_done(self, client, login_as, org, plan):
        login_as("admin")
        client.post(f"/o/acme/milestones/{plan[1][3]}/waive", data={"reason": "Has the machine"})
        saved = fresh(org.id, Milestone, plan[1][3])
        assert (saved.status, saved.status_reason) == (M.WAIVED, "Has the machine")
        assert load(org.id, plan[0]).progress == round(100 * 3 / 16)

    def test_verified_or_waived_milestones_cannot_be_waived(self, org, plan):
        _act(org.id, plan[1][2], plans.waive, "n/a")
        with pytest.raises(plans.PlanError) as refused:
            _act(org.id, plan[1][2], plans.waive, "again")
        assert "already closed" in str(refused.value)

    def test_send_back_reopens_a_verified_milestone(self, org, plan):
        milestone_id = plan[1][7]  # no evidence required
        _status(org.id, milestone_id, M.ACHIEVED)
        _act(org.id, milestone_id, plans.verify, None)
        _act(org.id, milestone_id, plans.reject, "Photo is blurry")
        saved = fresh(org.id, Milestone, milestone_id)
        assert (saved.status, saved.status_reason) == (M.IN_PROGRESS, "Photo is blurry")
        assert saved.verified_by_id is None and saved.verified_at is None

    def test_send_back_needs_an_achieved_milestone_and_a_reason(self, org, plan):
        with pytest.raises(plans.PlanError) as not_achieved:
            _act(org.id, plan[1][7], plans.reject, "why")
        assert "Only an achieved or verified milestone can be sent back." in str(not_achieved.value)
        _status(org.id, plan[1][7], M.ACHIEVED)
        with pytest.raises(plans.PlanError) as no_reason:
            _act(org.id, plan[1][7], plans.reject, " ")
        assert "Say why it goes back." in str(no_reason.value)
        assert fresh(org.id, Milestone, plan[1][7]).status == M.ACHIEVED

    def test_send_back_through_the_page(self, client, login_as, org, plan):
        login_as("program_manager")
        _status(org.id, plan[1][7], M.ACHIEVED)
        response = client.post(
            f"/o/acme/milestones/{plan[1][7]}/send-back", data={"reason": "Missing signature"}
        )
        assert response.status_code == 302
        assert fresh(org.id, Milestone, plan[1][7]).status == M.IN_PROGRESS
        [event] = events(org.id, "milestone.sent_back")
        assert event.details["reason"] == "Missing signature"

    @pytest.mark.parametrize("start", [M.PLANNED, M.IN_PROGRESS])
    def test_open_milestones_can_be_marked_missed(self, client, login_as, org, plan, start):
        login_as("admin")
        if start == M.IN_PROGRESS:
            _status(org.id, plan[1][1], start)
        response = client.post(f"/o/acme/milestones/{plan[1][1]}/miss", data={"reason": ""})
        assert response.status_code == 302
        assert fresh(org.id, Milestone, plan[1][1]).status == M.MISSED

    @pytest.mark.parametrize("start", [M.ACHIEVED, M.MISSED])
    def test_only_open_milestones_can_be_missed(self, org, plan, start):
        milestone_id = plan[1][7]
        if start == M.ACHIEVED:
            _status(org.id, milestone_id, M.ACHIEVED)
        else:
            _act(org.id, milestone_id, plans.mark_missed, "")
        with pytest.raises(plans.PlanError) as refused:
            _act(org.id, milestone_id, plans.mark_missed, "")
        assert "Only a planned or started milestone can be missed." in str(refused.value)


class TestBulkAchieve:
    @pytest.fixture
    def cohort(self, org, program):
        live = enroll(program, [new_producer(org.id, name=f"P{i}") for i in range(3)])
        gone = put_in_state(org.id, program, S.WITHDRAWN, name="Gone")
        step_id = program.steps[2].id
        return [e.id for e in live], gone, step_id

    def _milestone(self, org, enrollment_id, step_id) -> Milestone:
        return next(m for m in milestones_of(org.id, enrollment_id) if m.step_id == step_id)

    def test_one_step_is_achieved_for_every_live_enrollment_chosen(
        self, org, program, cohort, make_member
    ):
        officer = make_member("field_officer")
        live, gone, step_id = cohort
        already = self._milestone(org, live[2], step_id)
        _status(org.id, already.id, M.ACHIEVED)
        _evidence(org.id, already.id)
        _act(org.id, already.id, plans.verify, None)
        with tenant_scope(org.id):
            changed = plans.bulk_achieve(program, step_id, [*live, gone], " Workshop ", officer.id)
            done()
        assert changed == 2
        for enrollment_id in live[:2]:
            milestone = self._milestone(org, enrollment_id, step_id)
            assert (milestone.status, milestone.note, milestone.recorded_by_id) == (
                M.ACHIEVED,
                "Workshop",
                officer.id,
            )
            assert load(org.id, enrollment_id).progress == round(100 * 1 / 16)
        assert self._milestone(org, live[2], step_id).status == M.VERIFIED
        assert self._milestone(org, gone, step_id).status == M.PLANNED
        recorded = events(org.id, "milestone.recorded")
        assert len([e for e in recorded if e.details.get("bulk")]) == 2

    def test_enrollments_of_another_program_are_left_alone(self, org, program, cohort):
        live, _gone, step_id = cohort
        [stranger] = enroll(new_program(org, name="Other"), [new_producer(org.id, name="X")])
        with tenant_scope(org.id):
            changed = plans.bulk_achieve(program, step_id, [live[0], stranger.id], "", None)
            done()
        assert changed == 1
        assert all(m.status == M.PLANNED for m in milestones_of(org.id, stranger.id))

    def test_an_assigned_officer_uses_the_program_page(
        self, client, login_as, org, program, cohort
    ):
        assign(program, login_as("field_officer"))
        live, _gone, step_id = cohort
        response = client.post(
            f"/o/acme/programs/{program.id}/bulk-achieve",
            data={"step_id": step_id, "enrollment_ids": live[:2], "note": ""},
            follow_redirects=True,
        )
        assert "2 milestones marked achieved." in response.text
        assert self._milestone(org, live[0], step_id).status == M.ACHIEVED
        assert self._milestone(org, live[2], step_id).status == M.PLANNED

    @pytest.mark.parametrize("role", ["field_officer", "viewer"])
    def test_others_get_403(self, client, login_as, org, program, cohort, role):
        login_as(role)
        live, _gone, step_id = cohort
        response = client.post(
            f"/o/acme/programs/{program.id}/bulk-achieve",
            data={"step_id": step_id, "enrollment_ids": live},
        )
        assert response.status_code == 403
        assert self._milestone(org, live[0], step_id).status == M.PLANNED

    @pytest.mark.parametrize("ids", [[], ["x"]])
    def test_nobody_chosen_is_explained(self, client, login_as, org, program, cohort, ids):
        login_as("admin")
        _live, _gone, step_id = cohort
        response = client.post(
            f"/o/acme/programs/{program.id}/bulk-achieve",
            data={"step_id": step_id, "enrollment_ids": ids},
            follow_redirects=True,
        )
        assert "Choose a milestone and at least one producer." in response.text

    def test_an_id_beyond_the_integer_range_is_not_a_500(
        self, client, login_as, org, program, cohort
    ):
        login_as("admin")
        _live, _gone, step_id = cohort
        response = client.post(
            f"/o/acme/programs/{program.id}/bulk-achieve",
            data={"step_id": step_id, "enrollment_ids": "99999999999999999999"},
        )
        assert response.status_code == 302

    def test_a_step_of_another_program_is_refused(self, client, login_as, org, program, cohort):
        login_as("admin")
        live, _gone, _step_id = cohort
        other_step = new_program(org, name="Other").steps[0].id
        response = client.post(
            f"/o/acme/programs/{program.id}/bulk-achieve",
            data={"step_id": other_step, "enrollment_ids": live},
            follow_redirects=True,
        )
        assert "Choose a milestone and at least one producer." in response.text
        assert all(m.status == M.PLANNED for m in milestones_of(org.id, live[0]))


class TestProgress:
    def test_progress_is_weighted_by_step_weight(self, org, plan):
        enrollment_id, ids = plan
        assert load(org.id, enrollment_id).progress == 0
        _status(org.id, ids[3], M.ACHIEVED)  # weight 3 of 16
        assert load(org.id, enrollment_id).progress == 19
        _act(org.id, ids[0], plans.waive, "n/a")  # weight 1
        assert load(org.id, enrollment_id).progress == 25

    def test_started_and_missed_milestones_do_not_count(self, org, plan):
        enrollment_id, ids = plan
        _status(org.id, ids[1], M.IN_PROGRESS)
        _act(org.id, ids[2], plans.mark_missed, "")
        assert load(org.id, enrollment_id).progress == 0

    def test_a_complete_plan_is_100(self, org, plan):
        enrollment_id, ids = plan
        for milestone_id in ids:
            _status(org.id, milestone_id, M.ACHIEVED)
        assert load(org.id, enrollment_id).progress == 100

    def test_sending_back_takes_the_weight_away_again(self, org, plan):
        enrollment_id, ids = plan
        _status(org.id, ids[5], M.ACHIEVED)
        assert load(org.id, enrollment_id).progress == 19
        _act(org.id, ids[5], plans.reject, "Redo")
        assert load(org.id, enrollment_id).progress == 0

    def test_the_template_weights_are_the_ones_assumed_here(self, program):
        assert [s.weight for s in program.steps] == SUPPLIER_WEIGHTS


class TestRisk:
    def test_a_past_due_open_milestone_puts_the_producer_at_risk(self, org, program):
        [late] = enroll(program, [new_producer(org.id)], on=days_ago(15))  # first due day 14
        assert load(org.id, late.id).at_risk is True

    def test_due_today_is_not_yet_late(self, org, program):
        [on_time] = enroll(program, [new_producer(org.id)], on=days_ago(14))
        assert load(org.id, on_time.id).at_risk is False

    def test_achieving_the_late_milestone_clears_the_risk(self, org, program):
        [late] = enroll(program, [new_producer(org.id)], on=days_ago(15))
        first = milestones_of(org.id, late.id)[0].id
        _status(org.id, first, M.IN_PROGRESS)
        assert load(org.id, late.id).at_risk is True  # started is not done
        _status(org.id, first, M.ACHIEVED)
        assert load(org.id, late.id).at_risk is False

    def test_a_waiver_clears_the_risk_and_a_miss_keeps_it(self, org, program):
        [late] = enroll(program, [new_producer(org.id)], on=days_ago(15))
        first = milestones_of(org.id, late.id)[0].id
        _act(org.id, first, plans.mark_missed, "")
        assert load(org.id, late.id).at_risk is True
        _act(org.id, first, plans.waive, "Signed elsewhere")
        assert load(org.id, late.id).at_risk is False

    def test_sweep_flags_plans_whose_milestones_fell_overdue(self, org, program):
        [on_time] = enroll(program, [new_producer(org.id)])
        assert load(org.id, on_time.id).at_risk is False
        with tenant_scope(org.id):
            flagged = plans.sweep_risk(on=today() + timedelta(days=15))
            done()
        assert flagged == 1
        assert load(org.id, on_time.id).at_risk is True
        with tenant_scope(org.id):
            assert plans.sweep_risk(on=today() + timedelta(days=15)) == 0  # already flagged
            plans.sweep_risk(on=today())
            done()
        assert load(org.id, on_time.id).at_risk is False  # nothing overdue today

    def test_sweep_leaves_done_milestones_and_other_organizations_alone(
        self, org, other_org, program
    ):
        [mine] = enroll(program, [new_producer(org.id)])
        _status(org.id, milestones_of(org.id, mine.id)[0].id, M.ACHIEVED)
        [theirs] = enroll(new_program(other_org), [new_producer(other_org.id)])
        with tenant_scope(org.id):
            plans.sweep_risk(on=today() + timedelta(days=15))  # only step 1 would be late
            done()
        assert load(org.id, mine.id).at_risk is False
        assert load(other_org.id, theirs.id).at_risk is False

    def test_sweep_never_flags_closed_plans(self, org, program):
        gone = put_in_state(org.id, program, S.WITHDRAWN)
        with tenant_scope(org.id):
            plans.sweep_risk(on=today() + timedelta(days=400))
            done()
        assert load(org.id, gone).at_risk is False

    def test_sweep_reports_only_what_it_flagged(self, org, program):
        put_in_state(org.id, program, S.WITHDRAWN)
        with tenant_scope(org.id):
            flagged = plans.sweep_risk(on=today() + timedelta(days=400))
            done()
        assert flagged == 0


class TestFigures:
    def test_counts_per_state(self, org, program, in_state):
        for state in (S.APPLIED, S.ENROLLED, S.ENROLLED, S.ACTIVE, S.WITHDRAWN):
            in_state(state)
        with tenant_scope(org.id):
            counts = plans.state_counts(program.id)
        assert {k: v for k, v in counts.items() if v} == {
            "applied": 1,
            "enrolled": 2,
            "active": 1,
            "withdrawn": 1,
        }

    def test_completion_per_step_counts_live_and_graduated_plans_only(self, org, program, in_state):
        live = [in_state(S.ENROLLED), in_state(S.ACTIVE)]
        in_state(S.WITHDRAWN)
        graduated = in_state(S.GRADUATED)
        first_step, second_step = program.steps[0].id, program.steps[1].id
        _status(org.id, milestones_of(org.id, live[0])[0].id, M.ACHIEVED)
        with tenant_scope(org.id):
            completion = plans.completion_by_step(program.id)
        assert completion[first_step] == (2, 3)  # live[0] achieved + graduated (waived)
        assert completion[second_step] == (1, 3)
        assert graduated
