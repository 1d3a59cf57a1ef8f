"""Referral pages of a capital partner: the inbox, its CSV export, one referral, answering.

A partner spans organizations: every referral is found through the services that filter by
the partner's id (never a draft, never another partner's: 404). Both partner roles answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import (
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import func, select
from wtforms import SelectChoice

from inclusive.auth.sessions import acting_user
from inclusive.csvexport import csv_download
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.partners.models import Product
from inclusive.partners.services import PRODUCT_LABELS
from inclusive.partners.web import current_partner, partner_blueprint
from inclusive.referrals import services
from inclusive.referrals.forms import (
    MessageForm,
    PartnerActionForm,
    ReferralFilterForm,
    product_filter_choices,
)
from inclusive.referrals.models import DeclineReason, Referral, ReferralState, Side
from inclusive.referrals.profile import decimal_amount
from inclusive.referrals.services import Disbursement, ReferralFilters
from inclusive.referrals.views import attempt, form_refused
from inclusive.tenancy.scope import ALL_TENANTS
from inclusive.tenancy.web import page_number, to_id

bp = partner_blueprint("partner_referrals", __name__, url_prefix="/referrals")
PER_PAGE = 50
#: States in which the partner has yet to say it received the referral.
AWAITING = (ReferralState.SENT.value, ReferralState.DELIVERY_FAILED.value)
EXPORT_COLUMNS = (
    "id",
    "organization",
    "producer",
    "product",
    "amount_requested",
    "currency",
    "state",
    "sent_at",
    "acknowledged_at",
    "answered_at",
    "decline_reason",
    "disbursed_amount",
    "disbursed_currency",
    "disbursed_on",
    "profile_sha256",
)


def awaiting_acknowledgement() -> int:
    """How many of the current partner's referrals wait for it to acknowledge them."""
    query = (
        select(func.count())
        .select_from(Referral)
        .where(Referral.partner_id == current_partner().id, Referral.state.in_(AWAITING))
        .execution_options(**ALL_TENANTS)  # a partner spans organizations; filtered by partner
    )
    return db.session.scalar(query) or 0


@bp.app_context_processor
def _partner_referral_helpers() -> dict[str, Any]:
    return {"partner_awaiting_acknowledgement": awaiting_acknowledgement}


def _filters() -> tuple[ReferralFilterForm, ReferralFilters]:
    partner = current_partner()
    form = ReferralFilterForm(request.args)
    form.state.choices = [SelectChoice("", _("Any state"))] + [
        SelectChoice(s, services.state_label(s)) for s in services.PARTNER_VISIBLE
    ]
    form.organization.choices = [SelectChoice("", _("All organizations"))] + [
        SelectChoice(str(o.id), o.name) for o in services.partner_organizations(partner)
    ]
    form.product.choices = product_filter_choices()
    form.validate()
    filters = ReferralFilters(
        state=form.state.data if form.state.data in services.PARTNER_VISIBLE else "",
        org_id=to_id(form.organization.data),
        product=form.product.data if form.product.data in Product._value2member_map_ else "",
    )
    return form, filters


@bp.route("/")
def inbox() -> Any:
    """The referrals every partnered organization sent to this partner, newest first."""
    form, filters = _filters()
    page = page_number()
    query = services.partner_referrals(current_partner(), filters)
    rows = list(db.session.scalars(query.offset((page - 1) * PER_PAGE).limit(PER_PAGE + 1)))
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "referrals/partner/inbox.html",
        partner=current_partner(),
        form=form,
        referrals=rows[:PER_PAGE],
        has_next=len(rows) > PER_PAGE,
        page=page,
        args=args,
        filtered=bool(filters.state or filters.org_id or filters.product),
        awaiting=AWAITING,
    )


@bp.route("/export.csv")
def export() -> Any:
    """The filtered inbox as CSV (formulas escaped), streamed."""
    partner = current_partner()
    _form, filters = _filters()
    query = services.partner_referrals(partner, filters).execution_options(yield_per=500)

    def rows() -> Iterator[list[Any]]:
        return (_csv_values(referral) for referral in db.session.scalars(query))

    return csv_download(f"referrals-{partner.slug}-{today().isoformat()}.csv", EXPORT_COLUMNS, rows)


def _csv_values(r: Referral) -> list[Any]:
    def amount(hundredths: int | None) -> str:
        return decimal_amount(hundredths) or ""

    def moment(value: Any) -> str:
        return value.isoformat() if value else ""

    return [
        r.id,
        r.organization.name,
        services.producer_name(r),
        r.product,
        amount(r.amount_requested),
        r.currency,
        r.state,
        moment(r.sent_at),
        moment(r.acknowledged_at),
        moment(r.answered_at),
        r.decline_reason or "",
        amount(r.disbursed_amount),
        r.disbursed_currency or "",
        moment(r.disbursed_on),
        r.profile_sha256 or "",
    ]


def _referral_or_404(referral_id: int) -> Referral:
    referral = services.referral_for_partner(current_partner(), referral_id)
    if referral is None:
        abort(404)
    return referral


def _action_form(referral: Referral, name: str) -> PartnerActionForm:
    form = PartnerActionForm(
        formdata=None,
        prefix=name,
        currency=referral.currency,
        disbursed_product=referral.product,
        disbursed_on=today(),
    )
    _fill_choices(form)
    return form


def _fill_choices(form: PartnerActionForm) -> None:
    form.reason.choices = [SelectChoice("", _("Choose a reason"))] + [
        SelectChoice(r.value, str(services.DECLINE_REASON_LABELS[r])) for r in DeclineReason
    ]
    form.disbursed_product.choices = [
        SelectChoice(p.value, str(PRODUCT_LABELS[p])) for p in Product
    ]


def _page(
    referral: Referral,
    forms: dict[str, PartnerActionForm] | None = None,
    message_form: MessageForm | None = None,
) -> dict[str, Any]:
    actions = services.actions_for(referral, Side.PARTNER)
    action_forms = forms or {}
    for action in actions:
        if action.name not in action_forms:
            action_forms[action.name] = _action_form(referral, action.name)
    return {
        "partner": current_partner(),
        "referral": referral,
        "producer_name": services.producer_name(referral),
        "actions": actions,
        "action_forms": action_forms,
        "message_form": message_form or MessageForm(formdata=None),
        "timeline": services.timeline(referral),
        "messages": services.thread(referral),
        "answered_days": services.answered_days(referral),
    }


@bp.route("/<int:referral_id>")
def show(referral_id: int) -> Any:
    """A referral as the partner sees it: the frozen, consented profile and the loop so far."""
    referral = _referral_or_404(referral_id)
    return render_template("referrals/partner/show.html", **_page(referral))


@bp.route("/<int:referral_id>/act", methods=["POST"])
def act_on(referral_id: int) -> Any:
    """Take one of the partner's transitions: acknowledge, review, ask, answer, disburse."""
    referral = _referral_or_404(referral_id)
    name = request.form.get("action", "")
    action = services.ACTIONS.get(name)
    if action is None or action.side != Side.PARTNER:
        flash(_("This action is not available."), "error")
        return redirect(url_for("partner_referrals.show", referral_id=referral_id))
    label = str(action.label)
    form = PartnerActionForm(prefix=name)
    _fill_choices(form)
    disbursement = Disbursement(
        amount=form.amount.data,
        currency=form.currency.data or "",
        disbursed_on=form.disbursed_on.data,
        product=form.disbursed_product.data or "",
        term_months=form.term_months.data,
    )
    if form.validate_on_submit():
        if attempt(
            lambda: services.apply(
                referral,
                name,
                Side.PARTNER,
                acting_user(),
                note=form.note.data or "",
                reason=form.reason.data or None,
                disbursement=disbursement if name == "disburse" else None,
            ),
            lambda: _("Done: %(action)s.", action=label.lower()),
            form,
            "note",
            errors=lambda: disbursement.errors,
            rename={"product": "disbursed_product"},
        ):
            return redirect(url_for("partner_referrals.show", referral_id=referral_id))
        referral = _referral_or_404(referral_id)
    else:
        form_refused(form)
    page = _page(referral, forms={name: form})
    return render_template("referrals/partner/show.html", **page), 400


@bp.route("/<int:referral_id>/message", methods=["POST"])
def message(referral_id: int) -> Any:
    """Write to the referring organization in the referral's thread."""
    referral = _referral_or_404(referral_id)
    form = MessageForm()
    if form.validate_on_submit():
        if attempt(
            lambda: services.post_message(referral, Side.PARTNER, acting_user(), form.body.data),
            _("Message sent."),
            form,
            "body",
        ):
            return redirect(
                url_for("partner_referrals.show", referral_id=referral_id, _anchor="thread")
            )
        referral = _referral_or_404(referral_id)
    else:
        form_refused(form)
    page = _page(referral, message_form=form)
    return render_template("referrals/partner/show.html", **page), 400
