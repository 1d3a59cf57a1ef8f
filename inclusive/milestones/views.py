"""Enrollment transitions, milestone progress and verification, and evidence files."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones.evidence import attach
from inclusive.milestones.forms import (
    OptionalReasonForm,
    ReasonForm,
    RecordForm,
    TransitionForm,
)
from inclusive.milestones.models import (
    Enrollment,
    EnrollmentState,
    Evidence,
    Milestone,
    MilestoneStatus,
)
from inclusive.programs.access import can_record_for_program, require_record_for_program
from inclusive.refusals import act
from inclusive.storage import storage
from inclusive.tenancy.roles import Permission
from inclusive.tenancy.web import can, load_or_404, org_blueprint, requires

bp = org_blueprint("plans", __name__)


def _back(milestone_or_enrollment: Milestone | Enrollment) -> Any:
    return redirect(
        url_for("producers.show", producer_id=milestone_or_enrollment.producer_id, _anchor="plan")
    )


@bp.route("/enrollments/<int:enrollment_id>/transition", methods=["POST"])
@requires(Permission.MANAGE_PROGRAMS)
def transition(enrollment_id: int) -> Any:
    """Move an enrollment to another state (refusals say why)."""
    enrollment = load_or_404(Enrollment, enrollment_id)
    form = TransitionForm()
    if form.validate_on_submit():
        act(
            lambda: plans.transition(
                enrollment, EnrollmentState(form.state.data), form.reason.data or ""
            ),
            lambda: _(
                "The enrollment is now %(state)s.",
                state=plans.STATE_LABELS[EnrollmentState(enrollment.state)],
            ),
        )
    else:
        flash(_("Choose a state."), "error")
    return _back(enrollment)


@bp.route("/milestones/<int:milestone_id>", methods=["GET", "POST"])
def milestone(milestone_id: int) -> Any:
    """One milestone: record progress with a note and evidence (made for a phone)."""
    item = load_or_404(Milestone, milestone_id)
    form = RecordForm(
        status=item.status if item.status != MilestoneStatus.PLANNED else "in_progress"
    )
    may_record = can_record_for_program(item.program_id)
    if form.is_submitted():
        require_record_for_program(item.program_id)
        if form.validate():
            saved: list[str] = []
            try:
                for upload in form.files.data or []:
                    if upload and upload.filename:
                        saved.append(attach(item, upload, current_user.id).storage_key)
                plans.record_progress(
                    item, MilestoneStatus(form.status.data), form.note.data or "", current_user.id
                )
            except plans.PlanError as exc:
                db.session.rollback()
                for key in saved:  # nothing half-written: no file without its row
                    storage().delete(key)
                form.files.errors = [*list(form.files.errors), str(exc)]
                flash(str(exc), "error")
            else:
                db.session.commit()
                flash(_("Progress on “%(name)s” is recorded.", name=item.name), "success")
                return _back(item)
    status = 400 if form.errors else 200
    return render_template(
        "milestones/milestone.html",
        milestone=item,
        form=form,
        may_record=may_record,
        reason_form=ReasonForm(formdata=None),
        optional_form=OptionalReasonForm(formdata=None),
        may_verify=can(Permission.VERIFY),
        today=plans.today(),
    ), status


def _manager_action(milestone_id: int, action: str) -> Any:
    item = load_or_404(Milestone, milestone_id)
    form = OptionalReasonForm() if action in ("verify", "miss") else ReasonForm()
    if not form.validate_on_submit():
        flash(_("Say why."), "error")
        return redirect(url_for("plans.milestone", milestone_id=item.id))
    try:
        if action == "verify":
            plans.verify(item, current_user.id)
        elif action == "waive":
            plans.waive(item, form.reason.data)
        elif action == "miss":
            plans.mark_missed(item, form.reason.data or "")
        else:
            plans.reject(item, form.reason.data)
    except plans.PlanError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("plans.milestone", milestone_id=item.id))
    db.session.commit()
    flash(
        _(
            "“%(name)s” is now %(status)s.",
            name=item.name,
            status=plans.MILESTONE_LABELS[MilestoneStatus(item.status)],
        ),
        "success",
    )
    return _back(item)


@bp.route("/milestones/<int:milestone_id>/verify", methods=["POST"])
@requires(Permission.VERIFY)
def verify(milestone_id: int) -> Any:
    """Verify an achieved milestone."""
    return _manager_action(milestone_id, "verify")


@bp.route("/milestones/<int:milestone_id>/waive", methods=["POST"])
@requires(Permission.VERIFY)
def waive(milestone_id: int) -> Any:
    """Waive a milestone, with a reason."""
    return _manager_action(milestone_id, "waive")


@bp.route("/milestones/<int:milestone_id>/miss", methods=["POST"])
@requires(Permission.VERIFY)
def miss(milestone_id: int) -> Any:
    """Record that a milestone was missed."""
    return _manager_action(milestone_id, "miss")


@bp.route("/milestones/<int:milestone_id>/send-back", methods=["POST"])
@requires(Permission.VERIFY)
def send_back(milestone_id: int) -> Any:
    """Send an achieved or verified milestone back to in progress, with a reason."""
    return _manager_action(milestone_id, "send_back")


@bp.route("/evidence/<int:evidence_id>")
def evidence(evidence_id: int) -> Any:
    """Serve an evidence file to members of the organization (never to anyone else)."""
    item = load_or_404(Evidence, evidence_id)
    try:
        handle = storage().open(item.storage_key)
    except (FileNotFoundError, ValueError):
        abort(404)
    response = send_file(
        handle,
        mimetype=item.content_type,
        download_name=item.filename,
        as_attachment=item.content_type == "application/pdf",
        max_age=0,
    )
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response
