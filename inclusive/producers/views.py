"""Producer pages: the registry (search, filters, export) and everything about one producer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import select

from inclusive.babelcache import lazy_gettext as _l
from inclusive.csvexport import csv_download
from inclusive.extensions import db
from inclusive.fieldcache import csrf_field, shown_form
from inclusive.impact import services as impact
from inclusive.impact.forms import AssessmentForm, OfftakeForm, SnapshotForm
from inclusive.milestones.models import EnrollmentState
from inclusive.milestones.services import STATE_LABELS, PlanError, today
from inclusive.milestones.services import enroll as enroll_producers
from inclusive.presentation import (
    datetime_formatter,
    describe_event,
    milestone_label,
    money,
    producer_kind_label,
    reproduction_label,
    sector_labels,
    translations,
)
from inclusive.producers import page, services
from inclusive.producers.forms import FilterForm, ProducerForm
from inclusive.producers.models import Producer, Sector
from inclusive.programs.access import can_record_for_producer, require_record_for_producer
from inclusive.programs.forms import EnrollForm
from inclusive.programs.models import Program, ProgramStatus
from inclusive.tenancy.roles import Permission
from inclusive.tenancy.scope import require_org_id, tenant_scope
from inclusive.tenancy.web import (
    can,
    form_ids,
    load_or_404,
    org_blueprint,
    page_number,
    requires,
)

bp = org_blueprint("producers", __name__, url_prefix="/producers")
PER_PAGE = 50
EXPORT_COLUMNS = (*services.FIELDS, "id", "created_at")


def _filters() -> tuple[FilterForm, services.ProducerFilters, list[page.ListedProgram]]:
    form = FilterForm(request.args)
    programs = page.programs()
    form.program.choices = [("", _("All programs"))] + [(str(p.id), p.name) for p in programs]
    form.state.choices = [("", _("Any"))] + [(s.value, STATE_LABELS[s]) for s in EnrollmentState]
    form.sector.choices = [("", _("All sectors"))] + [
        (s.value, services.SECTOR_LABELS[s]) for s in Sector
    ]
    form.validate()
    program_id = int(form.program.data) if (form.program.data or "").isdigit() else None
    filters = services.ProducerFilters(
        q=(form.q.data or "")[:100],
        program_id=program_id,
        region=(form.region.data or "").strip(),
        sector=form.sector.data if form.sector.data in set(Sector) else "",
        state=form.state.data if form.state.data in set(EnrollmentState) else "",
        at_risk=bool(form.at_risk.data),
    )
    return form, filters, programs


@bp.route("/")
def index() -> Any:
    """The registry: search by name, id or phone; filter; enroll many at once."""
    form, filters, programs = _filters()
    page = page_number()
    producers, has_next = services.producer_page(filters, page, PER_PAGE)
    # The rows' words are looked up here, once per row, rather than by template calls.
    # As Jinja's gettext does: the translation is trusted markup, the name is escaped by %.
    select_label = Markup(_("Select %(name)s"))  # noqa: S704
    for p in producers:
        p.kind_label = producer_kind_label(p.kind)
        p.sectors_label = sector_labels(p.sectors)
        p.select_label = select_label % {"name": p.name}
    enroll_form = shown_form(EnrollForm)
    enroll_form.program_id.choices = [
        (p.id, p.name) for p in programs if p.status != ProgramStatus.CLOSED
    ]
    enrolling = can(Permission.MANAGE_PROGRAMS) and bool(enroll_form.program_id.choices)
    # Each row links to its producer: the link is built once, not once per row.
    show_url = url_for("producers.show", producer_id=0).removesuffix("0")
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "producers/index.html",
        form=form,
        producers=producers,
        rows=_list_rows(producers, show_url, enrolling) if producers else "",
        enrolling=enrolling,
        page=page,
        has_next=has_next,
        args=args,
        enroll_form=enroll_form,
        filtered=not filters.is_empty(),
    )


#: The list's column labels, as the template's ``_()`` gives them (trusted markup).
_LIST_LABELS = ("Name", "Kind", "Region", "Phone", "Sectors")


def _list_rows(producers: list[services.ListedProducer], show_url: str, enrolling: bool) -> Markup:
    """The rows of the producer list, as the template's loop printed them, byte for byte.

    Fifty rows of a dozen escaped values each cost Jinja more than the rest of the page's
    markup; here every value is escaped once and each row is one string."""
    t_name, t_kind, t_region, t_phone, t_sectors = (
        str(Markup(translations().ugettext(label)) % {})  # noqa: S704 (as the template's _())
        for label in _LIST_LABELS
    )
    link = escape(show_url)
    parts = []
    for p in producers:
        select = (
            f'<td><input type="checkbox" name="producer_ids" value="{escape(p.id)}" '
            f'aria-label="{escape(p.select_label)}"></td>'
            if enrolling
            else ""
        )
        national = f"<br><small>{escape(p.national_id)}</small>" if p.national_id else ""
        place = (
            f"{escape(p.region)}, {escape(p.municipality)}" if p.municipality else escape(p.region)
        )
        parts.append(
            f"\n        <tr>\n          {select}"
            f'\n          <td data-label="{t_name}"><a href="{link}{escape(p.id)}">'
            f"{escape(p.name)}</a>{national}</td>"
            f'\n          <td data-label="{t_kind}">{escape(p.kind_label)}</td>'
            f'\n          <td data-label="{t_region}">{place}</td>'
            f'\n          <td data-label="{t_phone}">{escape(p.phone)}</td>'
            f'\n          <td data-label="{t_sectors}">{escape(p.sectors_label)}</td>'
            "\n        </tr>\n      "
        )
    return Markup("".join(parts))  # noqa: S704 (every value above is escaped)


@bp.route("/export.csv")
def export() -> Any:
    """The filtered producers as CSV (formulas escaped), streamed."""
    _form, filters, _programs = _filters()
    query = services.filtered_producers(filters).execution_options(yield_per=1000)
    org_id = require_org_id()

    def rows() -> Iterator[list[Any]]:
        with tenant_scope(org_id):  # the body is streamed after the view has returned
            for producer in db.session.scalars(query):
                values = {f: getattr(producer, f, "") for f in EXPORT_COLUMNS}
                values["sectors"] = ";".join(producer.sectors)
                values["formally_registered"] = "yes" if producer.formally_registered else "no"
                yield [values[c] for c in EXPORT_COLUMNS]

    return csv_download(f"producers-{date.today().isoformat()}.csv", EXPORT_COLUMNS, rows)


@bp.route("/new", methods=["GET", "POST"])
@requires(Permission.MANAGE_PRODUCERS)
def new() -> Any:
    """Register a producer."""
    form = ProducerForm()
    if form.validate_on_submit():
        try:
            producer = services.create_producer(form.raw())
        except services.ProducerError as exc:
            db.session.rollback()
            _show_errors(form, exc.errors)
        else:
            db.session.commit()
            flash(_("%(name)s is registered.", name=producer.name), "success")
            return redirect(url_for("producers.show", producer_id=producer.id))
    return render_template("producers/form.html", form=form, producer=None), (
        400 if form.errors else 200
    )


def _show_errors(form: ProducerForm, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        field = getattr(form, name, None) or form.name
        field.errors = [*list(field.errors), message]


@bp.route("/<int:producer_id>/edit", methods=["GET", "POST"])
@requires(Permission.MANAGE_PRODUCERS)
def edit(producer_id: int) -> Any:
    """Change a producer's details."""
    producer = load_or_404(Producer, producer_id)
    form = ProducerForm(obj=producer)
    if request.method == "GET":
        form.sectors.data = producer.sectors
    if form.validate_on_submit():
        try:
            services.update_producer(producer, form.raw())
        except services.ProducerError as exc:
            db.session.rollback()
            _show_errors(form, exc.errors)
        else:
            db.session.commit()
            flash(_("The producer is saved."), "success")
            return redirect(url_for("producers.show", producer_id=producer.id))
    return render_template("producers/form.html", form=form, producer=producer), (
        400 if form.errors else 200
    )


@bp.route("/<int:producer_id>")
def show(producer_id: int) -> Any:
    """Everything a producer went through: plans, figures, diagnostic, ledger, timeline."""
    # The producer with its sectors, programs, plans, figures, timeline, ledger,
    # diagnostics, consents and referrals: one round trip (org_bundle).
    return render_template("producers/show.html", **_producer_page(page.producer_page(producer_id)))


def _producer_page(reads: page.PageReads) -> dict[str, Any]:
    producer = reads.producer
    programs, enrollments, rows = reads.programs, reads.plans, reads.figures
    milestones = {e.id: e.milestones for e in enrollments}
    history = impact.reproduction_history(rows)
    events = reads.events
    offtake_programs = [e.program for e in enrollments if e.program.keeps_offtake_ledger]
    # The ledger is shown only for a program that keeps one.
    purchases, totals = (reads.purchases, reads.totals) if offtake_programs else ([], None)
    enroll_form = shown_form(EnrollForm)
    enrolled = {e.program_id for e in enrollments}
    enroll_form.program_id.choices = [
        (p.id, p.name)
        for p in programs
        if p.id not in enrolled and p.status != ProgramStatus.CLOSED
    ]
    day = today()
    return {
        "producer": producer,
        "enrollments": enrollments,
        "milestones": milestones,
        "snapshots": rows,
        "reproduction": impact.reproduction_status(rows, day),
        "history": history,
        "assessments": reads.diagnostics,
        "purchases": purchases,
        "totals": totals,
        "offtake_programs": offtake_programs,
        "events": events,
        "consents": [(c, c.state_on(day)) for c in reads.consents],
        "referrals": reads.referrals,
        "may_record": can_record_for_producer(producer.id),
        "enroll_form": enroll_form,
        # The same hidden field (the CSRF token) in each enrollment's form: rendered once.
        "transition_hidden": csrf_field(),
        # Links built once, not once per milestone.
        "milestone_items": _milestone_items(
            enrollments, day, url_for("plans.milestone", milestone_id=0).removesuffix("0")
        ),
        "timeline_items": _timeline_items(events),
        "figure_rows": _figure_rows(rows, history),
    }


def _milestone_items(
    enrollments: list[page.Plan], day: date, milestone_url: str
) -> dict[int, Markup]:
    """Each plan's milestones as the template's loop printed them, byte for byte.

    Two dozen milestones of half a dozen values and words each cost Jinja more than the
    rest of the plan's markup; here each value is escaped once and each item is one string."""
    gettext = translations().ugettext
    # As the template's _(): the translation is trusted markup, the date escaped by %.
    due = Markup(gettext("due %(date)s"))  # noqa: S704
    overdue_note = f" · <strong>{Markup(gettext('overdue')) % {}}</strong>"  # noqa: S704
    evidence_note = f" · {Markup(gettext('evidence required')) % {}}"  # noqa: S704
    link = escape(milestone_url)
    items = {}
    for plan in enrollments:
        parts = []
        for m in plan.milestones:
            overdue = m.is_overdue(day)
            status = escape(m.status)
            parts.append(
                f'\n          <li class="ms ms-{status}{" overdue" if overdue else ""}">'
                f'\n            <a href="{link}{escape(m.id)}">{escape(m.name)}</a>'
                f'\n            <span class="badge ms-badge-{status}">'
                f"{escape(milestone_label(m.status))}</span>"
                f"\n            <small>{due % {'date': m.due_date}}"
                f"{overdue_note if overdue else ''}"
                f"{evidence_note if m.evidence_required else ''}</small>"
                "\n          </li>\n        "
            )
        items[plan.id] = Markup("".join(parts))  # noqa: S704 (every value above is escaped)
    return items


def _figure_rows(snapshots: list[Any], history: list[Any]) -> Markup:
    """The figures table's rows, newest month first, as the template's loop printed them,
    byte for byte: each value escaped once (seven amounts a month)."""
    parts = []
    for s, h in zip(reversed(snapshots), reversed(history), strict=True):
        amounts = "".join(
            f'<td class="num">{escape(money(value))}</td>'
            for value in (
                s.sales,
                s.costs,
                s.household_withdrawals,
                s.reinvestment,
                s.assets,
                s.debt,
            )
        )
        status = escape(h.status)
        parts.append(
            f"\n        \n        <tr><td>{escape(s.month.strftime('%Y-%m'))}</td>{amounts}"
            f'<td class="num">{escape(s.employees)}</td>'
            f'<td><span class="badge repro-{status}">{escape(reproduction_label(h.status))}'
            f"</span></td><td><small>{escape(s.entered_by.name) if s.entered_by else ''}"
            "</small></td></tr>\n      "
        )
    return Markup("".join(parts))  # noqa: S704 (every value above is escaped)


def _timeline_items(events: list[page.TimelineEvent]) -> Markup:
    """The timeline's items as the template's loop printed them, byte for byte: each value
    escaped once, the dates formatted with the locale and timezone looked up once."""
    when = datetime_formatter("short")
    # As the template's _(): the translation is trusted markup, formatted with nothing.
    platform = str(Markup(translations().ugettext("the platform")) % {})  # noqa: S704
    return Markup(  # noqa: S704 (every value below is escaped)
        "".join(
            f'\n      <li><time datetime="{escape(ev.at.isoformat())}">{escape(when(ev.at))}</time>'
            f"\n        <span>{escape(describe_event(ev))}</span>"
            f"\n        <small>{escape(ev.actor.name) if ev.actor else platform}</small></li>\n    "
            for ev in events
        )
    )


RECORD_TITLES = {
    "snapshot": _l("Record a month"),
    "assessment": _l("Record a diagnostic"),
    "offtake": _l("Record a purchase"),
}


def _record_page(producer: Producer, kind: str, form: Any, status: int = 200) -> Any:
    """A focused page with one recording form (phones first)."""
    if status != 200:
        db.session.rollback()
    return render_template(
        "producers/record.html",
        producer=producer,
        kind=kind,
        form=form,
        title=RECORD_TITLES[kind],
    ), status


def _invalid(producer: Producer, kind: str, form: Any) -> Any:
    return _record_page(producer, kind, form, 400)


def _apply_errors(form: Any, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*list(field.errors), message]


@bp.route("/<int:producer_id>/snapshots", methods=["GET", "POST"])
def add_snapshot(producer_id: int) -> Any:
    """Record the producer's figures for a month."""
    producer = load_or_404(Producer, producer_id)
    require_record_for_producer(producer.id)
    form = SnapshotForm()
    if request.method == "GET":
        return _record_page(producer, "snapshot", form)
    if not form.validate_on_submit():
        return _invalid(producer, "snapshot", form)
    figures = {name: getattr(form, name).data for name in (*impact.MONEY_FIELDS, "employees")}
    try:
        impact.save_snapshot(producer.id, form.month.data, figures, current_user.id)
    except impact.FiguresError as exc:
        _apply_errors(form, exc.errors)
        return _invalid(producer, "snapshot", form)
    db.session.commit()
    flash(
        _("The figures for %(month)s are saved.", month=form.month.data.strftime("%Y-%m")),
        "success",
    )
    return redirect(url_for("producers.show", producer_id=producer.id, _anchor="figures"))


@bp.route("/<int:producer_id>/assessments", methods=["GET", "POST"])
def add_assessment(producer_id: int) -> Any:
    """Record a viability diagnostic."""
    producer = load_or_404(Producer, producer_id)
    require_record_for_producer(producer.id)
    form = AssessmentForm()
    if request.method == "GET":
        form.assessed_on.data = today()
        return _record_page(producer, "assessment", form)
    if not form.validate_on_submit():
        return _invalid(producer, "assessment", form)
    scores = {f: getattr(form, f).data for f in impact.VIABILITY_FACTORS}
    try:
        impact.save_assessment(
            producer.id, form.assessed_on.data, scores, form.notes.data or "", current_user.id
        )
    except impact.FiguresError as exc:
        _apply_errors(form, exc.errors)
        return _invalid(producer, "assessment", form)
    db.session.commit()
    flash(_("The diagnostic is saved."), "success")
    return redirect(url_for("producers.show", producer_id=producer.id, _anchor="diagnostic"))


@bp.route("/<int:producer_id>/offtake", methods=["GET", "POST"])
def add_purchase(producer_id: int) -> Any:
    """Record a purchase by a program's counterpart from the producer."""
    producer = load_or_404(Producer, producer_id)
    require_record_for_producer(producer.id)
    form = OfftakeForm()
    form.program_id.choices = [(p.id, p.name) for p in impact.offtake_programs_of(producer.id)]
    if request.method == "GET":
        return _record_page(producer, "offtake", form)
    if not form.validate_on_submit():
        return _invalid(producer, "offtake", form)
    program = load_or_404(Program, form.program_id.data)
    fields = {
        name: getattr(form, name).data
        for name in (
            "purchased_on",
            "product",
            "quantity",
            "unit",
            "unit_price",
            "on_time",
            "quality_accepted",
        )
    }
    try:
        impact.record_purchase(producer.id, program, fields, current_user.id)
    except impact.FiguresError as exc:
        _apply_errors(form, exc.errors)
        return _invalid(producer, "offtake", form)
    db.session.commit()
    flash(_("The purchase is recorded."), "success")
    return redirect(url_for("producers.show", producer_id=producer.id, _anchor="offtake"))


@bp.route("/enroll", methods=["POST"])
@requires(Permission.MANAGE_PROGRAMS)
def enroll() -> Any:
    """Enroll one producer or many (checked in the list, or from a producer's page)."""
    form = EnrollForm()
    programs = list(db.session.scalars(select(Program).order_by(Program.name)))
    form.program_id.choices = [(p.id, p.name) for p in programs]
    ids = form_ids("producer_ids")
    back = request.form.get("back") or ""
    target = (
        url_for("producers.show", producer_id=next(iter(ids)))
        if len(ids) == 1 and (back == "producer")
        else url_for("producers.index")
    )
    if not form.validate_on_submit() or not ids:
        flash(_("Choose a program and at least one producer."), "error")
        return redirect(target)
    program = load_or_404(Program, form.program_id.data)
    state = EnrollmentState(form.state.data)
    try:
        created, skipped = enroll_producers(program, ids, state)
    except PlanError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(target)
    db.session.commit()
    flash(
        ngettext(
            "%(num)d producer joined %(program)s.",
            "%(num)d producers joined %(program)s.",
            len(created),
            program=program.name,
        ),
        "success",
    )
    if skipped:
        flash(
            ngettext("%(num)d was already in it.", "%(num)d were already in it.", skipped), "info"
        )
    return redirect(
        target if back == "producer" else url_for("programs.show", program_id=program.id)
    )
