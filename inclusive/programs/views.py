"""Program pages: the list, a program with its cohort, its template and its officers."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from markupsafe import Markup, escape

from inclusive.extensions import db
from inclusive.fieldcache import shown_form
from inclusive.milestones import services as plans
from inclusive.milestones.models import EnrollmentState
from inclusive.presentation import state_label, translations
from inclusive.programs import page as program_page
from inclusive.programs import services
from inclusive.programs.access import can_record_for_program, require_record_for_program
from inclusive.programs.forms import (
    BulkAchieveForm,
    NewProgramForm,
    OfficerForm,
    ProgramForm,
    StatusForm,
    StepForm,
    TemplateActionForm,
)
from inclusive.programs.models import Program, ProgramKind, ProgramStatus, TemplateStep
from inclusive.refusals import act
from inclusive.tenancy.roles import Permission
from inclusive.tenancy.web import (
    current_org_entity,
    form_ids,
    load_or_404,
    org_blueprint,
    page_number,
    requires,
)

bp = org_blueprint("programs", __name__, url_prefix="/programs")
COHORT_PAGE = 50


def _program_fields(form: ProgramForm) -> dict[str, Any]:
    return {
        name: getattr(form, name).data or ("" if name not in ("start_date", "end_date") else None)
        for name in services.PROGRAM_FIELDS
    }


@bp.route("/")
def index() -> Any:
    """Every program of the organization with its enrollment counts."""
    return render_template("programs/index.html", overview=services.programs_overview())


@bp.route("/new", methods=["GET", "POST"])
@requires(Permission.MANAGE_PROGRAMS)
def new() -> Any:
    """Create a program of one of the six kinds, with its default milestone plan."""
    form = NewProgramForm()
    if form.validate_on_submit():
        try:
            program = services.create_program(
                current_org_entity(), ProgramKind(form.kind.data), **_program_fields(form)
            )
        except services.ProgramError as exc:
            db.session.rollback()
            getattr(form, exc.field or "name").errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("The program is created as a draft. Review its milestone plan."), "success")
            return redirect(url_for("programs.template", program_id=program.id))
    return render_template("programs/form.html", form=form, program=None)


@bp.route("/<int:program_id>")
def show(program_id: int) -> Any:
    """A program: its cohort with progress, completion per milestone, states and risks."""
    # The template's steps in the same query (a join), not a second one.
    program = program_page.program_or_404(program_id)
    page = page_number()
    state = request.args.get("state", "")
    offset = (page - 1) * COHORT_PAGE
    # The cohort, the risks, the officers and the counts: one round trip (org_bundle).
    panels = program_page.panels(
        program.id, offset, COHORT_PAGE + 1, state if state in set(EnrollmentState) else None
    )
    cohort = panels.cohort
    may_record = can_record_for_program(program.id)
    show_url = url_for("producers.show", producer_id=0).removesuffix("0")
    steps = program.steps
    bulk_form = shown_form(BulkAchieveForm)
    bulk_form.step_id.choices = [(s.id, f"{s.position}. {s.name}") for s in steps]
    return render_template(
        "programs/show.html",
        program=program,
        cohort=cohort[:COHORT_PAGE],
        has_next=len(cohort) > COHORT_PAGE,
        page=page,
        state=state,
        counts=panels.state_counts,
        # The steps' counters, as plans.completion_by_step reads them (no second query).
        completion={s.id: (s.plans_done, s.plans_total) for s in steps},
        steps=steps,
        at_risk=panels.at_risk,
        officers=panels.officers,
        status_form=shown_form(StatusForm, status=program.status),
        officer_form=_officer_form(program, panels.officers, panels.field_officers, shown=True),
        bulk_form=bulk_form,
        may_record=may_record,
        show_url=show_url,
        rows=_cohort_rows(cohort[:COHORT_PAGE], show_url, may_record),
    )


#: The cohort's column labels, as the template's ``_()`` gives them (trusted markup).
_COHORT_LABELS = ("Producer", "State", "Progress", "at risk")


def _cohort_rows(cohort: list[program_page.CohortRow], show_url: str, may_record: bool) -> Markup:
    """The cohort's rows as the template's loop printed them, byte for byte.

    Fifty rows of eight escaped values each cost Jinja more than the rest of the page's
    markup; here every value is escaped once and each row is one string."""
    gettext = translations().ugettext
    # As the template's _(): the translation is trusted markup, formatted with nothing.
    t_producer, t_state, t_progress, t_risk = (
        str(Markup(gettext(label)) % {})  # noqa: S704
        for label in _COHORT_LABELS
    )
    # As Jinja's gettext does: the translation is trusted markup, the name escaped into it
    # (``Markup % {"name": name}`` is the text's %-formatting with the escaped name).
    select_label = str(Markup(gettext("Select %(name)s")))  # noqa: S704
    link = escape(show_url)
    risk_badge = f' <span class="badge risk">{t_risk}</span>'
    risk_class = ' class="risk"'
    states: dict[str, str] = {}
    parts = []
    for e in cohort:
        name = escape(e.producer_name)
        # Ids and progress are integers (the statement's columns): printed as they are.
        ident = int(e.id)
        select = (
            f'<td><input type="checkbox" name="enrollment_ids" value="{ident}" '
            f'id="e{ident}" aria-label="{select_label % {"name": name}}"></td>'
            if may_record
            else ""
        )
        state = states.get(e.state)
        if state is None:
            state = states[e.state] = str(escape(state_label(e.state)))
        progress = int(e.progress)
        parts.append(
            f"\n        <tr{risk_class if e.at_risk else ''}>\n          {select}"
            f'\n          <td data-label="{t_producer}"><a href="{link}{int(e.producer_id)}">'
            f"{name}</a>{risk_badge if e.at_risk else ''}</td>"
            f'\n          <td data-label="{t_state}">{state}</td>'
            f'\n          <td data-label="{t_progress}"><progress max="100" value="{progress}" '
            f'aria-label="{t_progress}">{progress}%</progress> {progress}%</td>'
            "\n        </tr>\n      "
        )
    return Markup("".join(parts))  # noqa: S704 (every value above is escaped)


def _officer_form(
    program: Program | program_page.ShownProgram,
    officers: list[Any] | None = None,
    members: list[tuple[int, str]] | None = None,
    shown: bool = False,
) -> OfficerForm:
    # shown: only printed (the program page), not taking a submission.
    form = shown_form(OfficerForm) if shown else OfficerForm()
    if officers is None:
        officers = program_page.officers(program.id)
    assigned = {o.user_id for o in officers}
    # The field officers' ids and names only (no membership, organization or user objects).
    if members is None:
        members = program_page.field_officers()
    form.user_id.choices = [(uid, name) for uid, name in members if uid not in assigned]
    return form


@bp.route("/<int:program_id>/edit", methods=["GET", "POST"])
@requires(Permission.MANAGE_PROGRAMS)
def edit(program_id: int) -> Any:
    """Change a program's description, dates and counterpart."""
    program = load_or_404(Program, program_id)
    form = ProgramForm(obj=program)
    if form.validate_on_submit():
        try:
            services.update_program(program, **_program_fields(form))
        except services.ProgramError as exc:
            db.session.rollback()
            getattr(form, exc.field or "name").errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("The program is saved."), "success")
            return redirect(url_for("programs.show", program_id=program.id))
    return render_template("programs/form.html", form=form, program=program), (
        400 if form.errors else 200
    )


@bp.route("/<int:program_id>/status", methods=["POST"])
@requires(Permission.MANAGE_PROGRAMS)
def status(program_id: int) -> Any:
    """Open, run or close a program."""
    program = load_or_404(Program, program_id)
    form = StatusForm()
    if form.validate_on_submit():
        act(
            lambda: services.set_status(program, ProgramStatus(form.status.data)),
            lambda: _("The program's status is changed."),
        )
    return redirect(url_for("programs.show", program_id=program.id))


@bp.route("/<int:program_id>/officers", methods=["POST"])
@requires(Permission.MANAGE_PROGRAMS)
def assign_officer(program_id: int) -> Any:
    """Assign a field officer to the program."""
    program = load_or_404(Program, program_id)
    form = _officer_form(program)
    if form.validate_on_submit():
        act(
            lambda: services.assign_officer(program, form.user_id.data),
            lambda: _("The field officer is assigned."),
        )
    else:
        flash(_("Choose a field officer of the organization."), "error")
    return redirect(url_for("programs.show", program_id=program.id))


@bp.route("/<int:program_id>/officers/<int:user_id>/remove", methods=["POST"])
@requires(Permission.MANAGE_PROGRAMS)
def remove_officer(program_id: int, user_id: int) -> Any:
    """Take a field officer off the program."""
    program = load_or_404(Program, program_id)
    if TemplateActionForm().validate_on_submit():
        services.unassign_officer(program, user_id)
        db.session.commit()
        flash(_("The field officer is no longer assigned."), "success")
    return redirect(url_for("programs.show", program_id=program.id))


@bp.route("/<int:program_id>/template")
def template(program_id: int) -> Any:
    """The program's milestone template, editable by managers."""
    program = load_or_404(Program, program_id)
    return render_template(
        "programs/template.html",
        program=program,
        steps=list(program.steps),
        new_step=StepForm(formdata=None),
        forms={s.id: StepForm(formdata=None, obj=s, prefix=f"s{s.id}") for s in program.steps},
        action_form=TemplateActionForm(),
    )


def _step_fields(form: StepForm) -> services.StepFields:
    return services.StepFields(
        form.name.data or "",
        form.offset_days.data or 0,
        form.weight.data or 1,
        bool(form.evidence_required.data),
    )


def _step_of(program: Program, step_id: int) -> TemplateStep:
    step = load_or_404(TemplateStep, step_id)
    if step.program_id != program.id:
        abort(404)
    return step


@bp.route("/<int:program_id>/template/steps", methods=["POST"])
@requires(Permission.MANAGE_PROGRAMS)
def add_step(program_id: int) -> Any:
    """Add a step at the end of the template."""
    program = load_or_404(Program, program_id)
    form = StepForm()
    if form.validate_on_submit():
        try:
            services.add_step(program, _step_fields(form), form.apply_to_existing.data)
        except services.ProgramError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(_("The step is added."), "success")
            return redirect(url_for("programs.template", program_id=program.id))
    return render_template(
        "programs/template.html",
        program=program,
        steps=list(program.steps),
        new_step=form,
        forms={s.id: StepForm(formdata=None, obj=s, prefix=f"s{s.id}") for s in program.steps},
        action_form=TemplateActionForm(),
    ), 400


@bp.route("/<int:program_id>/template/steps/<int:step_id>", methods=["POST"])
@requires(Permission.MANAGE_PROGRAMS)
def update_step(program_id: int, step_id: int) -> Any:
    """Rename or re-time a step."""
    program = load_or_404(Program, program_id)
    step = _step_of(program, step_id)
    form = StepForm(prefix=f"s{step.id}")
    if form.validate_on_submit():
        act(
            lambda: services.update_step(step, _step_fields(form), form.apply_to_existing.data),
            lambda: _("The step is saved."),
        )
    else:
        flash(_("Check the step: %(errors)s", errors=_form_errors(form)), "error")
    return redirect(url_for("programs.template", program_id=program.id))


def _form_errors(form: Any) -> str:
    return "; ".join(
        f"{form[name].label.text}: {' '.join(map(str, errs))}" for name, errs in form.errors.items()
    )


@bp.route("/<int:program_id>/template/steps/<int:step_id>/remove", methods=["POST"])
@requires(Permission.MANAGE_PROGRAMS)
def remove_step(program_id: int, step_id: int) -> Any:
    """Remove a step from the template."""
    program = load_or_404(Program, program_id)
    step = _step_of(program, step_id)
    form = TemplateActionForm()
    if form.validate_on_submit():
        act(
            lambda: services.remove_step(step, form.apply_to_existing.data),
            lambda: _("The step is removed."),
        )
    return redirect(url_for("programs.template", program_id=program.id))


@bp.route("/<int:program_id>/template/steps/<int:step_id>/move", methods=["POST"])
@requires(Permission.MANAGE_PROGRAMS)
def move_step(program_id: int, step_id: int) -> Any:
    """Move a step up or down."""
    program = load_or_404(Program, program_id)
    step = _step_of(program, step_id)
    form = TemplateActionForm()
    if form.validate_on_submit():
        direction = -1 if request.form.get("direction") == "up" else 1
        services.move_step(step, direction, form.apply_to_existing.data)
        db.session.commit()
    return redirect(url_for("programs.template", program_id=program.id))


@bp.route("/<int:program_id>/bulk-achieve", methods=["POST"])
def bulk_achieve(program_id: int) -> Any:
    """Mark one milestone achieved for many producers of the cohort."""
    program = load_or_404(Program, program_id)
    require_record_for_program(program.id)
    form = BulkAchieveForm()
    form.step_id.choices = [(s.id, s.name) for s in program.steps]
    ids = form_ids("enrollment_ids")
    if form.validate_on_submit() and ids:
        changed = plans.bulk_achieve(
            program, form.step_id.data, ids, form.note.data or "", current_user.id
        )
        db.session.commit()
        flash(
            ngettext(
                "%(num)d milestone marked achieved.", "%(num)d milestones marked achieved.", changed
            ),
            "success",
        )
    else:
        flash(_("Choose a milestone and at least one producer."), "error")
    return redirect(url_for("programs.show", program_id=program.id))
