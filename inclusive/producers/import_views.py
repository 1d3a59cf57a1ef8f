"""CSV imports of producers and offtake purchases (upload, preview, import, progress)."""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    abort,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField, SelectField
from wtforms.validators import InputRequired

from inclusive.babelcache import lazy_gettext as _l
from inclusive.errors import render_error
from inclusive.extensions import db
from inclusive.producers import imports
from inclusive.producers.models import ImportBatch, ImportStatus
from inclusive.producers.services import GENDER_LABELS, KIND_LABELS, SECTOR_LABELS
from inclusive.programs.access import can_record_for_program
from inclusive.programs.models import Program
from inclusive.tenancy.roles import Permission
from inclusive.tenancy.web import can, load_or_404, org_blueprint, requires

bp = org_blueprint("imports", __name__, url_prefix="/imports")

UPLOAD_ENDPOINTS = frozenset({"imports.upload_producers", "imports.upload_offtake"})
#: Room for the multipart envelope and the other fields around the file.
FORM_OVERHEAD = 64 * 1024

STATUS_LABELS = {
    ImportStatus.PREVIEWED: _l("Checked, not imported yet"),
    ImportStatus.QUEUED: _l("Waiting to start"),
    ImportStatus.IMPORTING: _l("Importing"),
    ImportStatus.DONE: _l("Imported"),
    ImportStatus.FAILED: _l("Failed: nothing was imported"),
}


class ProducerUploadForm(FlaskForm):
    file = FileField(
        _l("CSV file"),
        validators=[
            FileRequired(_l("Choose a file.")),
            FileAllowed(["csv"], _l("Choose a .csv file.")),
        ],
        description=_l("Saved from a spreadsheet as CSV: UTF-8 or Latin-1, commas or semicolons."),
    )


class OfftakeUploadForm(ProducerUploadForm):
    program = SelectField(_l("Program"), coerce=int, validators=[InputRequired()])


class ConfirmForm(FlaskForm):
    include_likely = BooleanField(
        _l("Also import the rows that look like duplicates (same name and phone, or same purchase)")
    )


@bp.url_value_preprocessor
def _limit_upload_size(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # URL value preprocessors run before every before_request function, CSRFProtect's
    # included: an oversized upload is refused with a 413 before anything parses its body.
    if endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = imports.max_upload_bytes() + FORM_OVERHEAD


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> Any:
    """Say how large a file may be, rather than a bare 413."""
    return render_error(413, imports.too_large_message())


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {
        "status_label": lambda status: STATUS_LABELS[ImportStatus(status)],
        "duplicate_label": duplicate_label,
    }


def duplicate_label(duplicate: dict[str, Any]) -> str:
    """Say in words why a row looks like a duplicate."""
    reason, line = duplicate["reason"], duplicate.get("first_line")
    producer = duplicate.get("producer_id")
    if reason == imports.SAME_ID:
        if line:
            return _("Same national id as line %(line)d: not imported.", line=line)
        return _("Same national id as producer #%(id)d: not imported.", id=producer)
    if reason == imports.NAME_PHONE:
        if line:
            return _("Same name and phone as line %(line)d.", line=line)
        return _("Same name and phone as producer #%(id)d.", id=producer)
    if line:
        return _("Same purchase as line %(line)d.", line=line)
    return _("This purchase is already recorded.")


# Helpers -------------------------------------------------------------------------------


def _offtake_programs() -> list[Program]:
    if not can(Permission.RECORD):
        return []
    return imports.offtake_programs(current_user.id, all_programs=can(Permission.MANAGE_PROGRAMS))


def _may_use(batch: ImportBatch) -> bool:
    if batch.kind == imports.PRODUCERS:
        return can(Permission.MANAGE_PRODUCERS)
    return batch.program_id is not None and can_record_for_program(batch.program_id)


def _load_batch(batch_id: int) -> ImportBatch:
    batch = load_or_404(ImportBatch, batch_id)
    if not _may_use(batch):
        abort(403)
    return batch


def _program_of(batch: ImportBatch) -> Program | None:
    return load_or_404(Program, batch.program_id) if batch.program_id else None


def _read(upload: FileStorage) -> bytes:
    # One byte more than allowed is enough to tell the file is too large.
    return upload.stream.read(imports.max_upload_bytes() + 1)


def _csv_download(data: bytes, filename: str) -> Response:
    response = make_response(data)
    response.mimetype = "text/csv"
    response.charset = "utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _upload(form: ProducerUploadForm, kind: str) -> Any:
    if form.validate_on_submit():
        program_id = form.program.data if isinstance(form, OfftakeUploadForm) else None
        try:
            batch = imports.preview_upload(
                kind,
                _read(form.file.data),
                form.file.data.filename or "",
                program_id=program_id,
                actor_id=current_user.id,
            )
        except imports.ImportRefused as exc:
            db.session.rollback()
            form.file.errors = list(exc.messages)
        else:
            db.session.commit()
            return redirect(url_for(".preview", batch_id=batch.id))
    page = render_template(
        "imports/upload.html",
        form=form,
        kind=kind,
        layout=imports.OFFTAKE_LAYOUT if kind == imports.OFFTAKE else imports.PRODUCER_LAYOUT,
        kinds=KIND_LABELS,
        genders=GENDER_LABELS,
        sectors=SECTOR_LABELS,
        max_mb=imports.max_upload_bytes() // (1024 * 1024),
    )
    return page, 400 if form.is_submitted() else 200


# Views ---------------------------------------------------------------------------------


@bp.route("/")
def index() -> Any:
    """The imports this member may run, and the latest batches."""
    producers, programs = can(Permission.MANAGE_PRODUCERS), _offtake_programs()
    if not producers and not can(Permission.RECORD):
        abort(403)
    batches = imports.recent_batches(producers=producers, program_ids=[p.id for p in programs])
    return render_template(
        "imports/index.html",
        batches=batches,
        producers=producers,
        programs=programs,
        offtake=can(Permission.RECORD),
    )


@bp.route("/producers/template.csv")
@requires(Permission.MANAGE_PRODUCERS)
def producers_template() -> Response:
    """An empty producers file with the header filled in."""
    return _csv_download(imports.template_csv(imports.PRODUCERS), "producers-template.csv")


@bp.route("/offtake/template.csv")
@requires(Permission.RECORD)
def offtake_template() -> Response:
    """An empty offtake purchases file with the header filled in."""
    return _csv_download(imports.template_csv(imports.OFFTAKE), "offtake-template.csv")


@bp.route("/producers/new", methods=["GET", "POST"])
@requires(Permission.MANAGE_PRODUCERS)
def upload_producers() -> Any:
    """Upload a producers file; it is checked and shown before anything is imported."""
    return _upload(ProducerUploadForm(), imports.PRODUCERS)


@bp.route("/offtake/new", methods=["GET", "POST"])
@requires(Permission.RECORD)
def upload_offtake() -> Any:
    """Upload the purchases of a program's counterpart; checked and shown first."""
    form = OfftakeUploadForm(program=request.args.get("program", type=int))
    form.program.choices = [(program.id, program.name) for program in _offtake_programs()]
    return _upload(form, imports.OFFTAKE)


@bp.route("/<int:batch_id>")
def preview(batch_id: int) -> Any:
    """What the check of an uploaded file found, and what an import would write."""
    batch = _load_batch(batch_id)
    return render_template(
        "imports/preview.html",
        batch=batch,
        facts=imports.facts(batch),
        program=_program_of(batch),
        form=ConfirmForm(),
    )


@bp.route("/<int:batch_id>/confirm", methods=["POST"])
def confirm(batch_id: int) -> Any:
    """Import the checked rows of a batch: now, or in the background when it is large."""
    batch = _load_batch(batch_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(_("The form had expired. Try again."), "error")
        return redirect(url_for(".preview", batch_id=batch.id))
    try:
        status = imports.confirm_import(
            batch, include_likely=form.include_likely.data, actor_id=current_user.id
        )
    except imports.ImportRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".progress", batch_id=batch_id))
    imported, error = batch.imported_rows, batch.error
    db.session.commit()
    if status == ImportStatus.DONE:
        flash(ngettext("%(num)d row imported.", "%(num)d rows imported.", imported), "success")
    elif status == ImportStatus.FAILED:
        flash(error, "error")
    else:
        flash(_("The import has started. This page shows how far it got."), "info")
    return redirect(url_for(".progress", batch_id=batch_id))


@bp.route("/<int:batch_id>/progress")
def progress(batch_id: int) -> Any:
    """How far the import of a batch got; the page reloads itself until it ends."""
    batch = _load_batch(batch_id)
    response = make_response(
        render_template("imports/progress.html", batch=batch, program=_program_of(batch))
    )
    if batch.status in imports.RUNNING:
        response.headers["Refresh"] = "2"  # no script needed (the CSP allows none inline)
    return response


@bp.route("/<int:batch_id>/progress.json")
def progress_json(batch_id: int) -> Any:
    """The progress of a batch, for scripts."""
    batch = _load_batch(batch_id)
    return jsonify(
        status=batch.status,
        total_rows=batch.total_rows,
        processed_rows=batch.processed_rows,
        imported_rows=batch.imported_rows,
        error=batch.error or None,
    )
