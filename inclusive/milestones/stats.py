"""Counters the program page reads instead of counting millions of rows on every visit.

Enrollments per state (ProgramStateCount) and, per template step, its milestones in live
and graduated plans and how many of those are done (TemplateStep.plans_total/plans_done).
The plan services adjust them in the same transaction as each change; ``recount`` rebuilds
them from the rows (used after bulk loads, and by the tests to prove the two agree).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import case, func, select, update

from inclusive.extensions import db
from inclusive.milestones.models import (
    DONE_STATUSES,
    LIVE_STATES,
    Enrollment,
    EnrollmentState,
    Milestone,
)
from inclusive.programs.models import ProgramStateCount, TemplateStep

#: Enrollments whose milestones count toward "completion per milestone".
COUNTED_STATES = frozenset(LIVE_STATES | {EnrollmentState.GRADUATED})


def add_state_rows(program_id: int) -> None:
    """Create the zeroed counters of a new program."""
    for state in EnrollmentState:
        db.session.add(ProgramStateCount(program_id=program_id, state=state.value, n=0))


def bump_state(program_id: int, state: str, delta: int) -> None:
    """Add ``delta`` enrollments to a state's counter."""
    if delta:
        db.session.execute(
            update(ProgramStateCount)
            .where(ProgramStateCount.program_id == program_id, ProgramStateCount.state == state)
            .values(n=ProgramStateCount.n + delta)
        )


def bump_steps(totals: Counter[int], done: Counter[int]) -> None:
    """Add to the per-step counters: ``totals`` and ``done`` map step ids to deltas."""
    for step_id in set(totals) | set(done):
        if totals[step_id] or done[step_id]:
            db.session.execute(
                update(TemplateStep)
                .where(TemplateStep.id == step_id)
                .values(
                    plans_total=TemplateStep.plans_total + totals[step_id],
                    plans_done=TemplateStep.plans_done + done[step_id],
                )
            )


def count_plan(milestones: Iterable[Milestone], sign: int) -> None:
    """Add (+1) or remove (-1) a plan's milestones from the per-step counters."""
    totals: Counter[int] = Counter()
    done: Counter[int] = Counter()
    for milestone in milestones:
        if milestone.step_id is not None:
            totals[milestone.step_id] += sign
            if milestone.status in DONE_STATUSES:
                done[milestone.step_id] += sign
    bump_steps(totals, done)


def milestone_status_changed(milestone: Milestone, old_status: str, state: str) -> None:
    """Keep the done counter right when a milestone enters or leaves a done status."""
    if milestone.step_id is None or state not in COUNTED_STATES:
        return
    was, now = old_status in DONE_STATUSES, milestone.status in DONE_STATUSES
    if was != now:
        bump_steps(Counter(), Counter({milestone.step_id: 1 if now else -1}))


def recount(program_id: int) -> None:
    """Rebuild a program's counters from its enrollments and milestones."""
    states = dict(
        db.session.execute(
            select(Enrollment.state, func.count())
            .where(Enrollment.program_id == program_id)
            .group_by(Enrollment.state)
        ).all()
    )
    rows = {
        r.state: r
        for r in db.session.scalars(
            select(ProgramStateCount).where(ProgramStateCount.program_id == program_id)
        )
    }
    for state in EnrollmentState:
        row = rows.get(state.value)
        if row is None:
            row = ProgramStateCount(program_id=program_id, state=state.value, n=0)
            db.session.add(row)
        row.n = states.get(state.value, 0)
    counted = select(Enrollment.id).where(
        Enrollment.program_id == program_id, Enrollment.state.in_(COUNTED_STATES)
    )
    done = func.sum(case((Milestone.status.in_(DONE_STATUSES), 1), else_=0))
    per_step = {
        step_id: (n, int(d or 0))
        for step_id, n, d in db.session.execute(
            select(Milestone.step_id, func.count(), done)
            .where(
                Milestone.program_id == program_id,
                Milestone.step_id.is_not(None),
                Milestone.enrollment_id.in_(counted),
            )
            .group_by(Milestone.step_id)
        ).all()
    }
    for step in db.session.scalars(
        select(TemplateStep).where(TemplateStep.program_id == program_id)
    ):
        step.plans_total, step.plans_done = per_step.get(step.id, (0, 0))
    db.session.flush()
