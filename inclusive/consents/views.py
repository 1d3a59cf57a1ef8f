"""Consent pages under a producer: record one, revoke one, download its signed paper."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from inclusive.auth.sessions import acting_user
from inclusive.consents import services
from inclusive.consents.forms import ConsentForm, RevokeForm
from inclusive.consents.models import Consent, ConsentMethod, ConsentState
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.producers.models import Producer
from inclusive.programs.access import can_record_for_producer, require_record_for_producer
from inclusive.refusals import act
from inclusive.storage import storage
from inclusive.tenancy.roles import Permission
from inclusive.tenancy.web import load_or_404, org_blueprint, requires, to_id

bp = org_blueprint("consents", __name__, url_prefix="/producers/<int:producer_id>/consents")

#: Who may revoke a consent: program managers and administrators.
REVOKE = Permission.MANAGE_PROGRAMS
TEXT_LANGUAGES = ("en", "es", "pt")


@bp.app_context_processor
def _consent_helpers() -> dict[str, Any]:
    return {
        "may_record_consent": can_record_for_producer,
        "consent_scope_list": services.scope_list,
        "consent_method_label": lambda v: str(services.METHOD_LABELS.get(v, v)),
        "consent_state_label": lambda v: str(services.CONSENT_STATE_LABELS.get(v, v)),
        "REVOKE_CONSENT": REVOKE,
        "ConsentState": ConsentState,
    }


def _text_template(version: str) -> str:
    language = str(get_locale() or "en")[:2]
    if language not in TEXT_LANGUAGES:
        language = "en"
    return f"consents/text/{version}.{language}.html"


def _consent_or_404(producer_id: int, consent_id: int) -> Consent:
    consent = load_or_404(Consent, consent_id)
    if consent.producer_id != producer_id:
        abort(404)
    return consent


@bp.route("/new", methods=["GET", "POST"])
def new(producer_id: int) -> Any:
    """Record a producer's consent to share named data with a capital partner."""
    producer = load_or_404(Producer, producer_id)
    require_record_for_producer(producer.id)
    form = ConsentForm()
    partners = services.partner_choices()
    form.partner_id.choices = [SelectChoice("", _("Choose a partner"))] + [
        SelectChoice(str(p.id), p.name) for p in partners
    ]
    form.witness_id.choices = [SelectChoice("", _("Nobody (not a verbal consent)"))] + [
        SelectChoice(str(u.id), u.name) for u in services.witness_choices(current_user)
    ]
    if request.method == "GET":
        form.given_on.data = today()
    if form.validate_on_submit():
        try:
            consent = services.record_consent(
                producer,
                partner_id=to_id(form.partner_id.data),
                purpose=form.purpose.data or "",
                scopes=form.scopes.data or [],
                method=form.method.data or "",
                given_on=form.given_on.data,
                valid_until=form.valid_until.data,
                text_version=form.text_version.data or "",
                witness_id=to_id(form.witness_id.data),
                paper=form.paper.data or None,
                recorder=acting_user(),
            )
            db.session.commit()
        except services.ConsentError as exc:
            db.session.rollback()
            field = getattr(form, exc.field or "", None) or form.partner_id
            field.errors = [*list(field.errors), str(exc)]
            flash(str(exc), "error")
        else:
            flash(
                _("The consent for %(partner)s is recorded.", partner=consent.partner.name),
                "success",
            )
            return redirect(url_for("producers.show", producer_id=producer.id, _anchor="consents"))
    version = form.text_version.data or services.CURRENT_TEXT_VERSION
    if version not in services.TEXT_VERSIONS:
        version = services.CURRENT_TEXT_VERSION
    return render_template(
        "consents/new.html",
        producer=producer,
        form=form,
        has_partners=bool(partners),
        text_template=_text_template(version),
        text_version=version,
        ConsentMethod=ConsentMethod,
    ), (400 if form.errors else 200)


@bp.route("/<int:consent_id>/revoke", methods=["POST"])
@requires(REVOKE)
def revoke(producer_id: int, consent_id: int) -> Any:
    """Revoke a consent, with a reason; what it covered is withdrawn."""
    consent = _consent_or_404(producer_id, consent_id)
    form = RevokeForm()
    if form.validate_on_submit():
        act(
            lambda: services.revoke_consent(consent, form.reason.data or "", acting_user()),
            lambda: _("The consent for %(partner)s is revoked.", partner=consent.partner.name),
        )
    else:
        flash(_("Say why the consent is revoked, in at most 500 characters."), "error")
    return redirect(url_for("producers.show", producer_id=producer_id, _anchor="consents"))


@bp.route("/<int:consent_id>/paper")
def paper(producer_id: int, consent_id: int) -> Any:
    """Serve a consent's signed paper to members of the organization (never to anyone else)."""
    consent = _consent_or_404(producer_id, consent_id)
    if not consent.paper_storage_key:
        abort(404)
    try:
        handle = storage().open(consent.paper_storage_key)
    except (FileNotFoundError, ValueError):
        abort(404)
    response = send_file(
        handle,
        mimetype=consent.paper_content_type,
        download_name=consent.paper_filename,
        as_attachment=consent.paper_content_type == "application/pdf",
        max_age=0,
    )
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response
