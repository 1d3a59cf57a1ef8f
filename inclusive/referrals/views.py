"""Referral pages of the organization: the list and pipeline, preparing, sending, following.

Referring is a program manager's or an administrator's act (``Permission.MANAGE_PROGRAMS``);
every member reads. The template helpers defined here (labels, the profile's rendering, the
producer page's section) serve the partner's pages and the e-mails too.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import case, func, select
from wtforms import SelectChoice

from inclusive.auth.sessions import acting_user
from inclusive.babelcache import lazy_gettext as _l
from inclusive.consents.services import scope_list, valid_consent_for
from inclusive.extensions import db
from inclusive.impact import services as impact
from inclusive.milestones import services as plans
from inclusive.partners.models import CapitalPartner, Partnership, Product
from inclusive.partners.services import PRODUCT_LABELS
from inclusive.presentation import money
from inclusive.producers import services as producers
from inclusive.producers.models import Producer
from inclusive.programs.catalog import KIND_LABELS as PROGRAM_KIND_LABELS
from inclusive.referrals import profile, services
from inclusive.referrals.forms import (
    MessageForm,
    NoteActionForm,
    ReferralFilterForm,
    ReferralForm,
    product_filter_choices,
)
from inclusive.referrals.models import (
    Delivery,
    DeliveryStatus,
    Referral,
    ReferralState,
    Side,
)
from inclusive.referrals.outbox import delivery_summary
from inclusive.referrals.services import ReferralError, ReferralFilters
from inclusive.refusals import act
from inclusive.tenancy.forms import ActionForm
from inclusive.tenancy.roles import Permission
from inclusive.tenancy.web import (
    can,
    current_org,
    load_or_404,
    org_blueprint,
    page_number,
    requires,
    to_id,
)

bp = org_blueprint("referrals", __name__, url_prefix="/referrals")

#: Who refers, sends, answers and writes to partners: program managers and administrators.
REFER = Permission.MANAGE_PROGRAMS
PER_PAGE = 50
ORG_ACTIONS = ("provide_info", "withdraw")

# Helpers shared with the partner's pages and the e-mails ----------------------------------

PROFILE_LABELS = {
    "version": _l("Version"),
    "generated_at": _l("Generated at"),
    "organization": _l("Referring organization"),
    "name": _l("Name"),
    "country": _l("Country"),
    "currency": _l("Currency"),
    "consent": _l("Consent"),
    "id": _l("Number"),
    "text_version": _l("Consent text"),
    "purpose": _l("Purpose"),
    "scopes": _l("Data shared"),
    "given_on": _l("Given on"),
    "valid_until": _l("Valid until"),
    "identity": _l("Identity"),
    "kind": _l("Kind"),
    "national_id": _l("National or tax id"),
    "representative": _l("Representative"),
    "owner_gender": _l("Owner's gender"),
    "region": _l("Region"),
    "municipality": _l("Municipality"),
    "sectors": _l("Sectors"),
    "employees": _l("Employees"),
    "formally_registered": _l("Formally registered"),
    "contact": _l("Contact"),
    "phone": _l("Phone"),
    "email": _l("E-mail"),
    "program_record": _l("Program record"),
    "enrollments": _l("Programs"),
    "program": _l("Program"),
    "program_kind": _l("Kind of program"),
    "state": _l("State"),
    "enrolled_on": _l("Enrolled on"),
    "progress_percent": _l("Progress (%)"),
    "at_risk": _l("At risk"),
    "milestones": _l("Milestones"),
    "status": _l("Status"),
    "due_date": _l("Due"),
    "verified_on": _l("Verified on"),
    "milestones_verified": _l("Verified milestones"),
    "viability": _l("Viability diagnostic"),
    "assessed_on": _l("Assessed on"),
    "scores": _l("Scores"),
    "knowledge": _l("Access to knowledge"),
    "commercial_information": _l("Commercial information"),
    "contacts": _l("Contacts"),
    "business_engineering": _l("Business engineering"),
    "network_articulation": _l("Articulation with the network"),
    "sustainable_practices": _l("Sustainable practices"),
    "scale": _l("Scale"),
    "economic_figures": _l("Economic figures"),
    "months": _l("Months"),
    "month": _l("Month"),
    "sales": _l("Sales"),
    "costs": _l("Costs"),
    "household_withdrawals": _l("Household"),
    "reinvestment": _l("Reinvested"),
    "assets": _l("Assets"),
    "debt": _l("Debt"),
    "reproduction": _l("Reproduction status"),
    "rule": _l("Rule"),
    "months_read": _l("Months read"),
    "surplus": _l("Surplus"),
    "offtake_ledger": _l("Offtake ledger"),
    "purchases": _l("Purchases"),
    "amount": _l("Amount"),
    "on_time_share": _l("On time"),
    "quality_accepted_share": _l("Quality accepted"),
    "latest": _l("Latest purchases"),
    "date": _l("Date"),
    "product": _l("Product"),
    "quantity": _l("Quantity"),
    "unit": _l("Unit"),
    "on_time": _l("On time"),
    "quality_accepted": _l("Quality accepted"),
}
#: What came of one delivery attempt (``DeliveryAttempt.outcome``).
OUTCOME_LABELS = {
    "delivered": _l("delivered"),
    "retry": _l("failed, to be tried again"),
    "gone": _l("gone: the receiver asked not to be called again"),
    "refused": _l("refused"),
}
#: The profile's sections, in the order a lender reads them (the rest are shown apart).
PROFILE_SECTIONS = ("identity", "contact", "program_record", "economic_figures", "offtake_ledger")
MONEY_KEYS = frozenset(
    {"sales", "costs", "household_withdrawals", "reinvestment", "assets", "debt", "surplus"}
)
SHARE_KEYS = frozenset({"on_time_share", "quality_accepted_share"})
VALUE_LABELS: dict[str, dict] = {
    "kind": producers.KIND_LABELS,
    "owner_gender": producers.GENDER_LABELS,
    "program_kind": PROGRAM_KIND_LABELS,
    "state": plans.STATE_LABELS,
}


def profile_label(key: str) -> str:
    """A profile field's name, in the reader's language."""
    label = PROFILE_LABELS.get(key)
    return str(label) if label is not None else key.replace("_", " ").capitalize()


def profile_value(key: str, value: Any) -> str:
    """A profile's scalar (or list of scalars), written for a person."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if key == "scopes":
        return scope_list(value)
    if key == "sectors":
        return ", ".join(str(producers.SECTOR_LABELS.get(v, v)) for v in value)
    if key == "status":
        label = plans.MILESTONE_LABELS.get(value) or impact.REPRODUCTION_LABELS.get(value)
        return str(label or value)
    if key in VALUE_LABELS:
        return str(VALUE_LABELS[key].get(value, value))
    if key in SHARE_KEYS and isinstance(value, int | float):
        return f"{round(value * 100)}%"
    if key in MONEY_KEYS or key == "amount":
        try:
            return money(int(Decimal(str(value)) * 100))
        except (InvalidOperation, ValueError):
            return str(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _label(labels: dict, value: Any) -> str:
    return str(labels.get(value, value)) if value is not None else ""


def referral_state_label(state: str) -> str:
    """A referral's state in the reader's language."""
    return services.state_label(state)


@bp.app_context_processor
def _referral_helpers() -> dict[str, Any]:
    return {
        "may_refer": lambda: can(REFER),
        "referral_state_label": referral_state_label,
        "referral_event_label": lambda kind: _label(services.EVENT_LABELS, kind),
        "referral_side_label": lambda side: _label(services.SIDE_LABELS, side),
        "decline_reason_label": lambda r: _label(services.DECLINE_REASON_LABELS, r),
        "referral_product_label": lambda p: _label(PRODUCT_LABELS, p),
        "delivery_outcome_label": lambda o: _label(OUTCOME_LABELS, o),
        "referral_producer_name": services.producer_name,
        "thread_open": lambda referral: referral.state not in services.CLOSED_THREAD_STATES,
        "profile_label": profile_label,
        "profile_value": profile_value,
        "PROFILE_SECTIONS": PROFILE_SECTIONS,
    }


# Refusals next to their field ------------------------------------------------------------


def attempt(
    change: Callable[[], object],
    success: str | Callable[[], str],
    form: Any,
    default: str,
    errors: Callable[[], dict[str, str]] | None = None,
    rename: dict[str, str] | None = None,
) -> bool:
    """Run a change through :func:`act`; on a refusal, put its message next to its field
    (every field's, when ``errors`` tells them all), ``rename`` mapping the service's names
    to the form's."""
    refusal: dict[str, Any] = {}

    def run() -> object:
        try:
            return change()
        except ReferralError as exc:
            refusal["exc"] = exc
            raise

    if act(run, success):
        return True
    exc = refusal.get("exc")
    if exc is not None:
        found = (errors() if errors else None) or {exc.field or default: str(exc)}
        for name, message in found.items():
            field = getattr(form, (rename or {}).get(name, name), None) or getattr(form, default)
            field.errors = [*list(field.errors), message]
    return False


def form_refused(form: Any) -> None:
    """Say why a posted form was not even looked at (an expired token, or a field's limit)."""
    if "csrf_token" in form.errors:
        flash(_("The form had expired. Try again."), "error")
    else:
        flash(_("Please correct the fields marked below."), "error")


# The list and the pipeline ---------------------------------------------------------------


def _partner_options() -> list[tuple[int, str]]:
    """Partners the organization has a partnership with, or a referral to (ended ones too)."""
    rows = db.session.execute(
        select(CapitalPartner.id, CapitalPartner.name)
        .join(Partnership, Partnership.partner_id == CapitalPartner.id)
        .distinct()
        .order_by(CapitalPartner.name)
    ).all()
    return [(r.id, r.name) for r in rows]


def _filters() -> tuple[ReferralFilterForm, ReferralFilters]:
    form = ReferralFilterForm(request.args)
    form.state.choices = [SelectChoice("", _("Any state"))] + [
        SelectChoice(s.value, str(services.STATE_LABELS[s])) for s in ReferralState
    ]
    form.partner.choices = [SelectChoice("", _("All partners"))] + [
        SelectChoice(str(pid), name) for pid, name in _partner_options()
    ]
    form.product.choices = product_filter_choices()
    form.validate()
    filters = ReferralFilters(
        state=form.state.data if form.state.data in ReferralState._value2member_map_ else "",
        partner_id=to_id(form.partner.data),
        product=form.product.data if form.product.data in Product._value2member_map_ else "",
    )
    return form, filters


def delivery_states(referral_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per referral: deliveries delivered, pending, failing (pending after an attempt) and
    dead, and the most attempts any took; one query for a page of referrals."""
    states: dict[int, dict[str, int]] = {
        i: {"delivered": 0, "pending": 0, "failing": 0, "dead": 0, "attempts": 0}
        for i in referral_ids
    }
    if not referral_ids:
        return states
    rows = db.session.execute(
        select(
            Delivery.referral_id,
            Delivery.status,
            func.count(),
            func.sum(case((Delivery.attempts > 0, 1), else_=0)),
            func.max(Delivery.attempts),
        )
        .where(Delivery.referral_id.in_(referral_ids))
        .group_by(Delivery.referral_id, Delivery.status)
    ).all()
    for referral_id, status, count, tried, most in rows:
        state = states[referral_id]
        if status == DeliveryStatus.DELIVERED:
            state["delivered"] += count
        elif status == DeliveryStatus.DEAD:
            state["dead"] += count
        elif status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING):
            state["failing"] += int(tried or 0)
            state["pending"] += count - int(tried or 0)
        else:
            continue
        state["attempts"] = max(state["attempts"], int(most or 0))
    return states


@bp.route("/")
def index() -> Any:
    """The organization's referrals, their delivery, the pipeline and the partners' answers."""
    form, filters = _filters()
    page = page_number()
    query = services.org_referrals(filters).offset((page - 1) * PER_PAGE).limit(PER_PAGE + 1)
    rows = list(db.session.scalars(query))
    referrals, has_next = rows[:PER_PAGE], len(rows) > PER_PAGE
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "referrals/index.html",
        form=form,
        referrals=referrals,
        deliveries=delivery_states([r.id for r in referrals]),
        page=page,
        has_next=has_next,
        args=args,
        filtered=bool(filters.state or filters.partner_id or filters.product),
        pipeline=services.pipeline(),
        answers=services.recent_partner_answers(),
        states=list(ReferralState),
    )


# Preparing -------------------------------------------------------------------------------


def _producer_from_query() -> Producer:
    producer_id = request.args.get("producer_id", type=int)
    return load_or_404(Producer, producer_id)


def _consent_problems(producer_id: int, partnerships: list[Partnership]) -> dict[int, list[str]]:
    return {p.id: services.consent_problems(producer_id, p.partner_id) for p in partnerships}


@bp.route("/new", methods=["GET", "POST"])
@requires(REFER)
def new() -> Any:
    """Prepare a draft referral of a producer to a capital partner."""
    producer = _producer_from_query()
    partnerships = services.partnership_choices()
    form = ReferralForm()
    form.partnership_id.choices = [SelectChoice("", _("Choose a capital partner"))] + [
        SelectChoice(str(p.id), p.partner.name) for p in partnerships
    ]
    chosen_id = (form.partnership_id.data or request.args.get("partnership_id") or "").strip()
    if request.method == "GET" and not chosen_id and len(partnerships) == 1:
        chosen_id = str(partnerships[0].id)
    chosen = next((p for p in partnerships if str(p.id) == chosen_id), None)
    if chosen is not None:
        form.partnership_id.data = str(chosen.id)
    offered = [
        p
        for p in Product
        if any(not s.partner.products or p in s.partner.products for s in partnerships)
        and (chosen is None or not chosen.partner.products or p in chosen.partner.products)
    ]
    form.product.choices = [SelectChoice("", _("Choose a product"))] + [
        SelectChoice(p.value, str(PRODUCT_LABELS[p])) for p in offered
    ]
    form.amount.label.text = _("Amount requested (%(currency)s)", currency=current_org().currency)
    if form.validate_on_submit():
        partnership_id = (form.partnership_id.data or "").strip()
        created: dict[str, Referral] = {}

        def create() -> None:
            created["referral"] = services.create_referral(
                producer,
                partnership_id=to_id(partnership_id),
                product=form.product.data or "",
                amount=form.amount.data,
                purpose=form.purpose.data or "",
                actor=acting_user(),
            )

        if attempt(
            create,
            lambda: _("The draft referral is ready: check it, then send it."),
            form,
            "partnership_id",
        ):
            return redirect(url_for("referrals.show", referral_id=created["referral"].id))
    elif form.errors:
        form_refused(form)
    return render_template(
        "referrals/new.html",
        producer=producer,
        form=form,
        partnerships=partnerships,
        chosen=chosen,
        problems=_consent_problems(producer.id, partnerships),
        readiness=profile.readiness(producer.id),
    ), (400 if form.errors else 200)


# One referral ----------------------------------------------------------------------------


def _referral_or_404(referral_id: int) -> Referral:
    return load_or_404(Referral, referral_id)


def _page(
    referral: Referral,
    note_forms: dict[str, NoteActionForm] | None = None,
    message_form: MessageForm | None = None,
) -> dict[str, Any]:
    """What the referral's page shows; a refused form comes back with what was typed."""
    actions = (
        services.actions_for(referral, Side.ORGANIZATION)
        if referral.state != ReferralState.DRAFT
        else [services.ACTIONS["withdraw"]]
    )
    forms = note_forms or {}
    for action in actions:
        forms.setdefault(action.name, NoteActionForm(formdata=None, prefix=action.name))
    context: dict[str, Any] = {
        "referral": referral,
        "actions": actions,
        "note_forms": forms,
        "message_form": message_form or MessageForm(formdata=None),
        "action_form": ActionForm(),
        "timeline": services.timeline(referral),
        "messages": services.thread(referral),
        "deliveries": delivery_summary(referral),
        "answered_days": services.answered_days(referral),
        "preview": None,
        "problems": [],
        "readiness": None,
    }
    context["dead"] = any(d.status == DeliveryStatus.DEAD for d in context["deliveries"])
    if referral.state == ReferralState.DRAFT:
        context["readiness"] = profile.readiness(referral.producer_id)
        consent = valid_consent_for(
            referral.producer_id, referral.partner_id, profile.REQUIRED_SCOPES
        )
        if consent is None:
            context["problems"] = services.consent_problems(
                referral.producer_id, referral.partner_id
            )
        else:
            context["preview"] = profile.build_profile(
                referral.producer, consent, referral.organization
            )
    return context


@bp.route("/<int:referral_id>")
def show(referral_id: int) -> Any:
    """A referral: what was asked, the profile, the timeline, the thread, the deliveries."""
    referral = _referral_or_404(referral_id)
    return render_template("referrals/show.html", **_page(referral))


@bp.route("/<int:referral_id>/send", methods=["POST"])
@requires(REFER)
def send(referral_id: int) -> Any:
    """Send a draft: consent checked again, the profile frozen, the partner told."""
    referral = _referral_or_404(referral_id)
    partner = referral.partner.name
    if ActionForm().validate_on_submit():
        act(
            lambda: services.send(referral, acting_user()),
            lambda: _("The referral is sent to %(partner)s.", partner=partner),
        )
    else:
        flash(_("The form had expired. Try again."), "error")
    return redirect(url_for("referrals.show", referral_id=referral_id))


@bp.route("/<int:referral_id>/act", methods=["POST"])
@requires(REFER)
def act_on(referral_id: int) -> Any:
    """Take one of the organization's transitions (provide the information, withdraw)."""
    referral = _referral_or_404(referral_id)
    name = request.form.get("action", "")
    if name not in ORG_ACTIONS:
        flash(_("This action is not available."), "error")
        return redirect(url_for("referrals.show", referral_id=referral_id))
    label = str(services.ACTIONS[name].label)
    form = NoteActionForm(prefix=name)
    if form.validate_on_submit():
        if attempt(
            lambda: services.apply(
                referral, name, Side.ORGANIZATION, acting_user(), note=form.note.data or ""
            ),
            lambda: _("Done: %(action)s.", action=label.lower()),
            form,
            "note",
        ):
            return redirect(url_for("referrals.show", referral_id=referral_id))
        referral = _referral_or_404(referral_id)
    else:
        form_refused(form)
    page = _page(referral, note_forms={name: form})
    return render_template("referrals/show.html", **page), 400


@bp.route("/<int:referral_id>/message", methods=["POST"])
@requires(REFER)
def message(referral_id: int) -> Any:
    """Write to the partner in the referral's thread."""
    referral = _referral_or_404(referral_id)
    form = MessageForm()
    if form.validate_on_submit():
        if attempt(
            lambda: services.post_message(
                referral, Side.ORGANIZATION, acting_user(), form.body.data or ""
            ),
            _("Message sent."),
            form,
            "body",
        ):
            return redirect(url_for("referrals.show", referral_id=referral_id, _anchor="thread"))
        referral = _referral_or_404(referral_id)
    else:
        form_refused(form)
    return render_template("referrals/show.html", **_page(referral, message_form=form)), 400


@bp.route("/<int:referral_id>/resend", methods=["POST"])
@requires(REFER)
def resend(referral_id: int) -> Any:
    """Send the referral's failed deliveries again."""
    referral = _referral_or_404(referral_id)
    if ActionForm().validate_on_submit():
        act(
            lambda: services.resend_deliveries(referral, acting_user()),
            lambda: _("The failed deliveries are sent again."),
        )
    else:
        flash(_("The form had expired. Try again."), "error")
    return redirect(url_for("referrals.show", referral_id=referral_id, _anchor="deliveries"))
