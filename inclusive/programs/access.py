"""Who may record progress: managers anywhere, field officers on their own programs."""

from __future__ import annotations

from flask import abort, g
from flask_login import current_user
from sqlalchemy import select

from inclusive.extensions import db
from inclusive.milestones.models import Enrollment
from inclusive.programs.models import ProgramOfficer
from inclusive.tenancy.roles import Permission
from inclusive.tenancy.web import can


def _assigned() -> set[int]:
    if "assigned_programs" not in g:
        g.assigned_programs = set(
            db.session.scalars(select(ProgramOfficer.program_id).filter_by(user_id=current_user.id))
        )
    return g.assigned_programs


def can_record_for_program(program_id: int) -> bool:
    """Managers record anywhere; field officers in the programs assigned to them."""
    if can(Permission.MANAGE_PROGRAMS):
        return True
    return can(Permission.RECORD) and program_id in _assigned()


def can_record_for_producer(producer_id: int) -> bool:
    """Managers record anywhere; field officers for producers of their programs."""
    if can(Permission.MANAGE_PROGRAMS):
        return True
    if not can(Permission.RECORD) or not _assigned():
        return False
    programs = set(
        db.session.scalars(select(Enrollment.program_id).filter_by(producer_id=producer_id))
    )
    return bool(programs & _assigned())


def require_record_for_program(program_id: int) -> None:
    """Answer 403 unless the current member may record progress in the program."""
    if not can_record_for_program(program_id):
        abort(403)


def require_record_for_producer(producer_id: int) -> None:
    """Answer 403 unless the current member may record figures for the producer."""
    if not can_record_for_producer(producer_id):
        abort(403)
