"""Enrollments and milestone plans: every state change, its rules and its audit event."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from flask_babel import gettext as _
from sqlalchemy import and_, case, delete, func, select, update

from inclusive.audit.services import record
from inclusive.babelcache import lazy_gettext as _l
from inclusive.extensions import db
from inclusive.milestones import stats
from inclusive.milestones.models import (
    DONE_STATUSES,
    LIVE_STATES,
    Enrollment,
    EnrollmentState,
    Milestone,
    MilestoneStatus,
)
from inclusive.programs.models import ProgramStateCount
from inclusive.refusals import Refused
from inclusive.timeutil import utcnow

if TYPE_CHECKING:
    from inclusive.programs.models import Program, TemplateStep

S = EnrollmentState
M = MilestoneStatus

STATE_LABELS = {
    S.APPLIED: _l("Applied"),
    S.WAITLISTED: _l("Waitlisted"),
    S.ENROLLED: _l("Enrolled"),
    S.ACTIVE: _l("Active"),
    S.PAUSED: _l("Paused"),
    S.GRADUATED: _l("Graduated"),
    S.WITHDRAWN: _l("Withdrawn"),
}
MILESTONE_LABELS = {
    M.PLANNED: _l("Planned"),
    M.IN_PROGRESS: _l("In progress"),
    M.ACHIEVED: _l("Achieved"),
    M.VERIFIED: _l("Verified"),
    M.MISSED: _l("Missed"),
    M.WAIVED: _l("Waived"),
}
TRANSITIONS: dict[str, frozenset[str]] = {
    S.APPLIED: frozenset({S.WAITLISTED, S.ENROLLED, S.WITHDRAWN}),
    S.WAITLISTED: frozenset({S.ENROLLED, S.WITHDRAWN}),
    S.ENROLLED: frozenset({S.ACTIVE, S.WITHDRAWN}),
    S.ACTIVE: frozenset({S.PAUSED, S.GRADUATED, S.WITHDRAWN}),
    S.PAUSED: frozenset({S.ACTIVE, S.WITHDRAWN}),
    S.GRADUATED: frozenset(),
    S.WITHDRAWN: frozenset(),
}
# Who may move a milestone where: field officers record, managers verify, waive and reopen.
RECORD_MOVES: dict[str, frozenset[str]] = {
    M.PLANNED: frozenset({M.IN_PROGRESS, M.ACHIEVED}),
    M.IN_PROGRESS: frozenset({M.PLANNED, M.ACHIEVED}),
    M.MISSED: frozenset({M.IN_PROGRESS, M.ACHIEVED}),
    M.ACHIEVED: frozenset({M.IN_PROGRESS}),
    M.VERIFIED: frozenset(),
    M.WAIVED: frozenset(),
}


class PlanError(Refused):
    """An enrollment or milestone change that is refused; the message says why."""


def today() -> date:
    return utcnow().date()


# Enrollments -----------------------------------------------------------------------------


def _plan_rows(enrollment: Enrollment, steps: Sequence[TemplateStep], start: date) -> list[dict]:
    return [
        {
            "org_id": enrollment.org_id,
            "enrollment_id": enrollment.id,
            "program_id": enrollment.program_id,
            "producer_id": enrollment.producer_id,
            "step_id": step.id,
            "position": step.position,
            "name": step.name,
            "due_date": start + timedelta(days=step.offset_days),
            "weight": step.weight,
            "evidence_required": step.evidence_required,
            "status": M.PLANNED.value,
        }
        for step in steps
    ]


def _template(program: Program) -> list[TemplateStep]:
    from inclusive.programs.models import TemplateStep

    query = select(TemplateStep).filter_by(program_id=program.id).order_by(TemplateStep.position)
    return list(db.session.scalars(query))


def enroll(
    program: Program,
    producer_ids: Iterable[int],
    state: EnrollmentState = S.ENROLLED,
    on: date | None = None,
) -> tuple[list[Enrollment], int]:
    """Enroll producers (or record their applications); return the new ones and the skipped."""
    if state not in (S.APPLIED, S.ENROLLED):
        raise PlanError(_("New enrollments start as applied or enrolled."))
    if program.status == "closed":
        raise PlanError(_("This program is closed: nobody can join it."))
    from inclusive.producers.models import Producer

    wanted = set(producer_ids)
    found = set(db.session.scalars(select(Producer.id).where(Producer.id.in_(wanted))))
    if found != wanted:
        raise PlanError(_("Some of the producers do not exist in this organization."))
    already = set(
        db.session.scalars(
            select(Enrollment.producer_id).where(
                Enrollment.program_id == program.id, Enrollment.producer_id.in_(wanted)
            )
        )
    )
    start = on or today()
    steps = _template(program) if state == S.ENROLLED else []
    created = []
    for producer_id in sorted(wanted - already):
        enrollment = Enrollment(
            program_id=program.id,
            producer_id=producer_id,
            state=state,
            applied_on=start,
            enrolled_on=start if state == S.ENROLLED else None,
        )
        db.session.add(enrollment)
        created.append(enrollment)
    db.session.flush()
    rows = [row for e in created for row in _plan_rows(e, steps, start)]
    if rows:
        db.session.execute(Milestone.__table__.insert(), rows)
    stats.bump_state(program.id, state.value, len(created))
    stats.bump_steps(Counter({step.id: len(created) for step in steps}), Counter())
    for enrollment in created:
        record(
            "enrollment.created",
            producer_id=enrollment.producer_id,
            program_id=program.id,
            program=program.name,
            state=state.value,
        )
    if created and state == S.ENROLLED:
        refresh(created)
    return created, len(already)


def transition(enrollment: Enrollment, new_state: EnrollmentState, reason: str = "") -> None:
    """Move an enrollment to another state, or say why not."""
    current = EnrollmentState(enrollment.state)
    if new_state not in TRANSITIONS[current]:
        raise PlanError(
            _(
                "An enrollment that is %(current)s cannot become %(new)s.",
                current=STATE_LABELS[current],
                new=STATE_LABELS[new_state],
            )
        )
    reason = reason.strip()
    if new_state == S.WITHDRAWN and not reason:
        raise PlanError(_("Say why the producer is withdrawn."))
    if new_state == S.GRADUATED:
        open_ones = [m.name for m in enrollment.milestones if not m.is_done]
        if open_ones:
            raise PlanError(
                _(
                    "Graduation needs every milestone achieved, verified or waived; "
                    "still open: %(names)s.",
                    names=", ".join(open_ones[:3]),
                )
            )
    if new_state == S.ENROLLED and not enrollment.milestones:
        start = today()
        enrollment.enrolled_on = start
        db.session.execute(
            Milestone.__table__.insert(),
            _plan_rows(enrollment, _template(enrollment.program), start),
        )
        db.session.expire(enrollment, ["milestones"])
    if new_state in (S.GRADUATED, S.WITHDRAWN):
        enrollment.ended_on = today()
    record(
        "enrollment.state",
        producer_id=enrollment.producer_id,
        program_id=enrollment.program_id,
        program=enrollment.program.name,
        old=current.value,
        new=new_state.value,
        reason=reason,
    )
    enrollment.state = new_state
    enrollment.state_reason = reason
    db.session.flush()
    stats.bump_state(enrollment.program_id, current.value, -1)
    stats.bump_state(enrollment.program_id, new_state.value, +1)
    was_counted = current in stats.COUNTED_STATES
    if was_counted != (new_state in stats.COUNTED_STATES):
        stats.count_plan(enrollment.milestones, -1 if was_counted else +1)
    refresh([enrollment])


# Milestones ------------------------------------------------------------------------------


def record_progress(
    milestone: Milestone, status: MilestoneStatus, note: str, actor_id: int
) -> None:
    """A field officer or manager records progress on a milestone."""
    current = MilestoneStatus(milestone.status)
    if status != current and status not in RECORD_MOVES[current]:
        raise PlanError(
            _(
                "A milestone that is %(current)s cannot be marked %(new)s here.",
                current=MILESTONE_LABELS[current],
                new=MILESTONE_LABELS[status],
            )
        )
    _require_live(milestone)
    note = note.strip()
    record(
        "milestone.recorded",
        producer_id=milestone.producer_id,
        program_id=milestone.program_id,
        milestone=milestone.name,
        old=current.value,
        new=status.value,
        note=note,
        actor_id=actor_id,
    )
    _set_status(milestone, status)
    if note:
        milestone.note = note
    milestone.recorded_by_id = actor_id
    milestone.recorded_at = utcnow()
    db.session.flush()
    refresh([milestone.enrollment])


def _move(milestone: Milestone, action: str, status: MilestoneStatus, **details: object) -> None:
    """Record the audit event, change the status, then refresh the enrollment's figures."""
    record(
        action,
        producer_id=milestone.producer_id,
        program_id=milestone.program_id,
        milestone=milestone.name,
        **details,
    )
    _set_status(milestone, status)


def _settle(milestone: Milestone) -> None:
    db.session.flush()
    refresh([milestone.enrollment])


def verify(milestone: Milestone, actor_id: int) -> None:
    """A manager verifies an achieved milestone (with its evidence, when required)."""
    if milestone.status != M.ACHIEVED:
        raise PlanError(_("Only an achieved milestone can be verified."))
    if milestone.evidence_required and not milestone.evidence:
        raise PlanError(_("This milestone needs evidence (a document or photo) first."))
    _move(milestone, "milestone.verified", M.VERIFIED, actor_id=actor_id)
    milestone.verified_by_id = actor_id
    milestone.verified_at = utcnow()
    _settle(milestone)


def reject(milestone: Milestone, reason: str) -> None:
    """A manager sends an achieved or verified milestone back to in progress."""
    if milestone.status not in (M.ACHIEVED, M.VERIFIED):
        raise PlanError(_("Only an achieved or verified milestone can be sent back."))
    if not reason.strip():
        raise PlanError(_("Say why it goes back."))
    _move(milestone, "milestone.sent_back", M.IN_PROGRESS, reason=reason.strip())
    milestone.status_reason = reason.strip()
    milestone.verified_by_id = None
    milestone.verified_at = None
    _settle(milestone)


def waive(milestone: Milestone, reason: str) -> None:
    """A manager waives a milestone that does not apply to this producer."""
    if milestone.status in (M.VERIFIED, M.WAIVED):
        raise PlanError(_("This milestone is already closed."))
    if not reason.strip():
        raise PlanError(_("Say why the milestone is waived."))
    _move(milestone, "milestone.waived", M.WAIVED, reason=reason.strip())
    milestone.status_reason = reason.strip()
    _settle(milestone)


def mark_missed(milestone: Milestone, reason: str) -> None:
    """A manager records that a milestone was missed (the producer stays at risk)."""
    if milestone.status not in (M.PLANNED, M.IN_PROGRESS):
        raise PlanError(_("Only a planned or started milestone can be missed."))
    _move(milestone, "milestone.missed", M.MISSED, reason=reason.strip())
    milestone.status_reason = reason.strip()
    _settle(milestone)


def bulk_achieve(
    program: Program, step_id: int, enrollment_ids: Iterable[int], note: str, actor_id: int
) -> int:
    """Mark one milestone achieved for many producers of a cohort; return how many changed."""
    ids = set(enrollment_ids)
    milestones = list(
        db.session.scalars(
            select(Milestone).where(
                Milestone.program_id == program.id,
                Milestone.step_id == step_id,
                Milestone.enrollment_id.in_(ids),
                Milestone.status.in_([M.PLANNED, M.IN_PROGRESS, M.MISSED]),
            )
        )
    )
    live = set(
        db.session.scalars(
            select(Enrollment.id).where(Enrollment.id.in_(ids), Enrollment.state.in_(LIVE_STATES))
        )
    )
    changed = []
    for milestone in milestones:
        if milestone.enrollment_id not in live:
            continue
        record(
            "milestone.recorded",
            producer_id=milestone.producer_id,
            program_id=program.id,
            milestone=milestone.name,
            old=milestone.status,
            new=M.ACHIEVED.value,
            note=note.strip(),
            bulk=True,
            actor_id=actor_id,
        )
        _set_status(milestone, M.ACHIEVED)
        milestone.note = note.strip() or milestone.note
        milestone.recorded_by_id = actor_id
        milestone.recorded_at = utcnow()
        changed.append(milestone.enrollment_id)
    db.session.flush()
    if changed:
        refresh(list(db.session.scalars(select(Enrollment).where(Enrollment.id.in_(changed)))))
    return len(changed)


def _set_status(milestone: Milestone, status: MilestoneStatus) -> None:
    old = milestone.status
    milestone.status = status
    stats.milestone_status_changed(milestone, old, milestone.enrollment.state)


def _require_live(milestone: Milestone) -> None:
    if milestone.enrollment.state not in LIVE_STATES:
        raise PlanError(
            _(
                "This enrollment is %(state)s: its plan is closed.",
                state=STATE_LABELS[EnrollmentState(milestone.enrollment.state)],
            )
        )


# Progress and risk -------------------------------------------------------------------------


def refresh(enrollments: Sequence[Enrollment], on: date | None = None) -> None:
    """Recompute progress and the at-risk flag of enrollments from their milestones."""
    if not enrollments:
        return
    on = on or today()
    ids = [e.id for e in enrollments]
    done = case((Milestone.status.in_(DONE_STATUSES), Milestone.weight), else_=0)
    overdue = case(
        (and_(Milestone.status.notin_(DONE_STATUSES), Milestone.due_date < on), 1), else_=0
    )
    rows = db.session.execute(
        select(
            Milestone.enrollment_id, func.sum(Milestone.weight), func.sum(done), func.max(overdue)
        )
        .where(Milestone.enrollment_id.in_(ids))
        .group_by(Milestone.enrollment_id)
    ).all()
    figures = {row[0]: row[1:] for row in rows}
    for enrollment in enrollments:
        total, achieved, late = figures.get(enrollment.id, (0, 0, 0))
        enrollment.progress = round(100 * (achieved or 0) / total) if total else 0
        enrollment.at_risk = bool(late) and enrollment.state in LIVE_STATES


def sweep_risk(on: date | None = None) -> int:
    """Flag every live enrollment of the organization in scope with an overdue milestone."""
    on = on or today()
    live = select(Enrollment.id).where(Enrollment.state.in_(LIVE_STATES))
    overdue = (
        select(Milestone.enrollment_id)
        .where(
            Milestone.status.in_([M.PLANNED, M.IN_PROGRESS, M.MISSED]),
            Milestone.due_date < on,
            Milestone.enrollment_id.in_(live),
        )
        .distinct()
    )
    late_ids = set(db.session.scalars(overdue))
    flagged = set(db.session.scalars(select(Enrollment.id).where(Enrollment.at_risk.is_(True))))
    to_flag = [i for i in late_ids - flagged]
    to_clear = [i for i in flagged - late_ids]
    for chunk in _chunks(to_flag):
        db.session.execute(
            update(Enrollment)
            .where(Enrollment.id.in_(chunk), Enrollment.state.in_(LIVE_STATES))
            .values(at_risk=True)
        )
    for chunk in _chunks(to_clear):
        db.session.execute(update(Enrollment).where(Enrollment.id.in_(chunk)).values(at_risk=False))
    return len(to_flag)


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# Template changes reaching current plans ----------------------------------------------------


def _live_enrollments(program_id: int) -> list[Enrollment]:
    return list(
        db.session.scalars(
            select(Enrollment).where(
                Enrollment.program_id == program_id, Enrollment.state.in_(LIVE_STATES)
            )
        )
    )


def add_step_to_plans(program: Program, step: TemplateStep) -> None:
    """Give every current plan of the program the new step."""
    enrollments = _live_enrollments(program.id)
    rows = [
        row for e in enrollments for row in _plan_rows(e, [step], e.enrolled_on or e.applied_on)
    ]
    if rows:
        db.session.execute(Milestone.__table__.insert(), rows)
    stats.bump_steps(Counter({step.id: len(rows)}), Counter())
    refresh(enrollments)


def update_step_in_plans(step: TemplateStep) -> None:
    """Carry a renamed or re-timed step to the open milestones of current plans."""
    milestones = list(
        db.session.scalars(
            select(Milestone)
            .join(Enrollment, Enrollment.id == Milestone.enrollment_id)
            .where(
                Milestone.step_id == step.id,
                Milestone.status.in_([M.PLANNED, M.IN_PROGRESS, M.MISSED]),
                Enrollment.state.in_(LIVE_STATES),
            )
        )
    )
    for milestone in milestones:
        start = milestone.enrollment.enrolled_on or milestone.enrollment.applied_on
        milestone.name = step.name
        milestone.weight = step.weight
        milestone.evidence_required = step.evidence_required
        milestone.due_date = start + timedelta(days=step.offset_days)
    db.session.flush()
    refresh(list({m.enrollment for m in milestones}))


def detach_step(step: TemplateStep, remove_open: bool) -> None:
    """Before a step is deleted: drop its untouched milestones (if asked), keep the rest."""
    if remove_open:
        live = select(Enrollment.id).where(
            Enrollment.program_id == step.program_id, Enrollment.state.in_(LIVE_STATES)
        )
        db.session.execute(
            delete(Milestone).where(
                Milestone.step_id == step.id,
                Milestone.status == M.PLANNED,
                Milestone.enrollment_id.in_(live),
            )
        )
    db.session.execute(update(Milestone).where(Milestone.step_id == step.id).values(step_id=None))
    refresh(_live_enrollments(step.program_id))


def reorder_plans(program_id: int, positions: dict[int, int]) -> None:
    """Give milestones of current plans the new order of their steps."""
    live = select(Enrollment.id).where(
        Enrollment.program_id == program_id, Enrollment.state.in_(LIVE_STATES)
    )
    for step_id, position in positions.items():
        db.session.execute(
            update(Milestone)
            .where(Milestone.step_id == step_id, Milestone.enrollment_id.in_(live))
            .values(position=position)
        )


# Figures for pages ---------------------------------------------------------------------------


def state_counts_by_program() -> dict[int, dict[str, int]]:
    """Enrollment counts per program and state, for the organization in scope."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for row in db.session.scalars(select(ProgramStateCount).where(ProgramStateCount.n != 0)):
        counts[row.program_id][row.state] = row.n
    return dict(counts)


def state_counts(program_id: int) -> dict[str, int]:
    """Enrollment counts per state for one program."""
    rows = db.session.execute(
        select(ProgramStateCount.state, ProgramStateCount.n).where(
            ProgramStateCount.program_id == program_id
        )
    )
    return {state: n for state, n in rows}


def completion_by_step(program_id: int) -> dict[int, tuple[int, int]]:
    """Per template step of a program: (milestones done, milestones in live or graduated plans)."""
    from inclusive.programs.models import TemplateStep

    steps = db.session.execute(
        select(TemplateStep.id, TemplateStep.plans_done, TemplateStep.plans_total).where(
            TemplateStep.program_id == program_id
        )
    ).all()
    return {step_id: (done, total) for step_id, done, total in steps}
