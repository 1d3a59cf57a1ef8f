"""Programs: creating and running them, their field officers and milestone templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select

from inclusive.audit.services import record
from inclusive.babelcache import lazy_gettext as _l
from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones import stats
from inclusive.programs.catalog import DEFAULT_TEMPLATES
from inclusive.programs.models import (
    CounterpartKind,
    Program,
    ProgramKind,
    ProgramOfficer,
    ProgramStatus,
    TemplateStep,
)
from inclusive.refusals import Refused
from inclusive.tenancy.models import Membership, Organization
from inclusive.tenancy.roles import Role

STATUS_LABELS = {
    ProgramStatus.DRAFT: _l("Draft"),
    ProgramStatus.OPEN: _l("Open for applications"),
    ProgramStatus.RUNNING: _l("Running"),
    ProgramStatus.CLOSED: _l("Closed"),
}
COUNTERPART_LABELS = {
    CounterpartKind.LEAD_CORPORATION: _l("Lead corporation"),
    CounterpartKind.FRANCHISOR: _l("Franchisor"),
    CounterpartKind.AGRO_INDUSTRY: _l("Agro-industry"),
    CounterpartKind.INSTITUTE: _l("Science or technology institute"),
    CounterpartKind.OTHER: _l("Other"),
}
STATUS_FLOW: dict[str, frozenset[str]] = {
    ProgramStatus.DRAFT: frozenset(
        {ProgramStatus.OPEN, ProgramStatus.RUNNING, ProgramStatus.CLOSED}
    ),
    ProgramStatus.OPEN: frozenset({ProgramStatus.RUNNING, ProgramStatus.CLOSED}),
    ProgramStatus.RUNNING: frozenset({ProgramStatus.CLOSED}),
    ProgramStatus.CLOSED: frozenset(),
}
PROGRAM_FIELDS = (
    "name",
    "description",
    "region",
    "start_date",
    "end_date",
    "counterpart_kind",
    "counterpart_name",
    "counterpart_contact",
    "counterpart_email",
    "counterpart_phone",
)


class ProgramError(Refused):
    """A program change that is refused; the message says why."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _check_dates(start: date | None, end: date | None) -> None:
    if start and end and end < start:
        raise ProgramError(_("The end date is before the start date."), "end_date")


def create_program(org: Organization, kind: ProgramKind, **fields: Any) -> Program:
    """Create a draft program with the default milestone template of its kind."""
    _check_dates(fields.get("start_date"), fields.get("end_date"))
    program = Program(
        kind=kind,
        status=ProgramStatus.DRAFT,
        **{k: v for k, v in fields.items() if k in PROGRAM_FIELDS},
    )
    with force_locale(org.default_language):
        program.steps = [
            TemplateStep(
                position=index,
                name=str(spec.name),
                offset_days=spec.offset_days,
                weight=spec.weight,
                evidence_required=spec.evidence_required,
            )
            for index, spec in enumerate(DEFAULT_TEMPLATES[kind], start=1)
        ]
    db.session.add(program)
    db.session.flush()
    stats.add_state_rows(program.id)
    record("program.created", program_id=program.id, name=program.name, kind=kind.value)
    return program


def update_program(program: Program, **fields: Any) -> None:
    """Change a program's description, dates and counterpart."""
    _check_dates(
        fields.get("start_date", program.start_date), fields.get("end_date", program.end_date)
    )
    changes = {}
    for key in PROGRAM_FIELDS:
        if key in fields and getattr(program, key) != fields[key]:
            changes[key] = [getattr(program, key), fields[key]]
            setattr(program, key, fields[key])
    if changes:
        record("program.updated", program_id=program.id, changes=changes)


def set_status(program: Program, status: ProgramStatus) -> None:
    """Move a program along draft, open, running, closed (never back)."""
    if status == program.status:
        return
    if status not in STATUS_FLOW[program.status]:
        raise ProgramError(
            _(
                "A program that is %(current)s cannot become %(new)s.",
                current=STATUS_LABELS[ProgramStatus(program.status)],
                new=STATUS_LABELS[status],
            )
        )
    record("program.status", program_id=program.id, old=program.status, new=status.value)
    program.status = status


def officers(program: Program) -> list[ProgramOfficer]:
    """The field officers assigned to a program."""
    return list(db.session.scalars(select(ProgramOfficer).filter_by(program_id=program.id)))


def assign_officer(program: Program, user_id: int) -> None:
    """Assign a field officer (a member with that role) to a program."""
    membership = db.session.scalar(select(Membership).filter_by(user_id=user_id))
    if membership is None or membership.role != Role.FIELD_OFFICER:
        raise ProgramError(_("Only field officers of this organization can be assigned."))
    exists = db.session.scalar(
        select(ProgramOfficer.id).filter_by(program_id=program.id, user_id=user_id)
    )
    if exists is None:
        db.session.add(ProgramOfficer(program_id=program.id, user_id=user_id))
        record("program.officer_assigned", program_id=program.id, officer=membership.user.name)


def unassign_officer(program: Program, user_id: int) -> None:
    """Take a field officer off a program."""
    row = db.session.scalar(
        select(ProgramOfficer).filter_by(program_id=program.id, user_id=user_id)
    )
    if row is not None:
        record("program.officer_removed", program_id=program.id, officer=row.user.name)
        db.session.delete(row)


@dataclass
class StepFields:
    name: str
    offset_days: int
    weight: int
    evidence_required: bool


def _check_step(fields: StepFields) -> None:
    if not fields.name.strip():
        raise ProgramError(_("A step needs a name."), "name")
    if not 0 <= fields.offset_days <= 3650:
        raise ProgramError(_("Days from enrollment: 0 to 3650."), "offset_days")
    if not 1 <= fields.weight <= 100:
        raise ProgramError(_("Weight: 1 to 100."), "weight")


def add_step(program: Program, fields: StepFields, apply_to_existing: bool) -> TemplateStep:
    """Add a step at the end of the template (and to current plans, if asked)."""
    _check_step(fields)
    last = db.session.scalar(
        select(func.max(TemplateStep.position)).filter_by(program_id=program.id)
    )
    step = TemplateStep(
        program_id=program.id,
        position=(last or 0) + 1,
        name=fields.name.strip(),
        offset_days=fields.offset_days,
        weight=fields.weight,
        evidence_required=fields.evidence_required,
    )
    db.session.add(step)
    db.session.flush()
    record("template.step_added", program_id=program.id, step=step.name, applied=apply_to_existing)
    if apply_to_existing:
        plans.add_step_to_plans(program, step)
    return step


def update_step(step: TemplateStep, fields: StepFields, apply_to_existing: bool) -> None:
    """Rename or re-time a step (and its open milestones in current plans, if asked)."""
    _check_step(fields)
    changes = {
        key: [getattr(step, key), value]
        for key, value in vars(fields).items()
        if getattr(step, key) != (value.strip() if isinstance(value, str) else value)
    }
    step.name = fields.name.strip()
    step.offset_days = fields.offset_days
    step.weight = fields.weight
    step.evidence_required = fields.evidence_required
    if changes:
        record(
            "template.step_changed",
            program_id=step.program_id,
            step=step.name,
            changes=changes,
            applied=apply_to_existing,
        )
    if apply_to_existing:  # also after a template-only edit saved earlier
        plans.update_step_in_plans(step)


def remove_step(step: TemplateStep, apply_to_existing: bool) -> None:
    """Remove a step (and its not-yet-started milestones from current plans, if asked)."""
    program_id = step.program_id
    steps = list(
        db.session.scalars(
            select(TemplateStep).filter_by(program_id=program_id).order_by(TemplateStep.position)
        )
    )
    if len(steps) <= 1:
        raise ProgramError(_("A template keeps at least one step."))
    record(
        "template.step_removed", program_id=program_id, step=step.name, applied=apply_to_existing
    )
    plans.detach_step(step, remove_open=apply_to_existing)
    db.session.delete(step)
    for position, other in enumerate((s for s in steps if s.id != step.id), start=1):
        other.position = position


def move_step(step: TemplateStep, direction: int, apply_to_existing: bool) -> None:
    """Move a step one place up (-1) or down (+1)."""
    steps = list(
        db.session.scalars(
            select(TemplateStep)
            .filter_by(program_id=step.program_id)
            .order_by(TemplateStep.position)
        )
    )
    index = next(i for i, s in enumerate(steps) if s.id == step.id)
    target = index + direction
    if not 0 <= target < len(steps):
        return
    steps[index], steps[target] = steps[target], steps[index]
    for position, other in enumerate(steps, start=1):
        other.position = position
    record(
        "template.step_moved", program_id=step.program_id, step=step.name, applied=apply_to_existing
    )
    if apply_to_existing:
        plans.reorder_plans(step.program_id, {s.id: s.position for s in steps})


def programs_overview() -> list[tuple[Program, dict[str, int]]]:
    """Every program of the organization in scope with its enrollment counts by state."""
    programs = list(db.session.scalars(select(Program).order_by(Program.status, Program.name)))
    counts = plans.state_counts_by_program()
    return [(p, counts.get(p.id, {})) for p in programs]
