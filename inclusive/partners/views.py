"""Partner pages: capital partners seen by an organization, and a partner's own pages."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from inclusive.auth.sessions import acting_user
from inclusive.partners import services
from inclusive.partners.forms import EndPartnershipForm, PartnerSearchForm
from inclusive.partners.models import (
    CapitalPartner,
    PartnerKind,
    PartnerRole,
    Partnership,
    PartnershipSide,
    PartnershipState,
    Product,
)
from inclusive.partners.web import (
    current_partner,
    has_partner_role,
    partner_blueprint,
    requires_partner_role,
)
from inclusive.refusals import act
from inclusive.tenancy.forms import ActionForm
from inclusive.tenancy.roles import Permission
from inclusive.tenancy.web import MAX_ID, current_org_entity, load_or_404, org_blueprint, requires

bp = org_blueprint("partners", __name__, url_prefix="/partners")
partner_bp = partner_blueprint("partner", __name__)

# Proposing and ending partnerships is the organization's decision: administrators only.
MANAGE_PARTNERSHIPS = Permission.MANAGE_ORGANIZATION


def _label(labels: dict, value: Any) -> str:
    return str(labels.get(value, value))


@partner_bp.app_context_processor
def _partner_helpers() -> dict[str, Any]:
    def my_partner_memberships() -> list[Any]:
        if "my_partner_memberships" not in g:
            g.my_partner_memberships = (
                services.partner_memberships_of(current_user)
                if current_user.is_authenticated
                else []
            )
        return g.my_partner_memberships

    return {
        "my_partner_memberships": my_partner_memberships,
        "partner_kind_label": lambda v: _label(services.KIND_LABELS, v),
        "product_label": lambda v: _label(services.PRODUCT_LABELS, v),
        "partner_role_label": lambda v: _label(services.PARTNER_ROLE_LABELS, v),
        "partnership_state_label": lambda v: _label(services.STATE_LABELS, v),
        "has_partner_role": has_partner_role,
        "PartnerRole": PartnerRole,
    }


def _partner_or_404(slug: str) -> CapitalPartner:
    partner = services.partner_by_slug(slug)
    if partner is None:
        abort(404)
    return partner


# The organization's side ---------------------------------------------------------------


@bp.route("/")
def index() -> Any:
    """The organization's partnerships, and the capital partners on the platform."""
    form = PartnerSearchForm(request.args)
    form.fill_choices()
    form.validate()
    found = services.search_partners(
        q=form.q.data or "",
        kind=form.kind.data if form.kind.data in set(PartnerKind) else "",
        country=(form.country.data or "")[:2],
    )
    return render_template(
        "partners/index.html",
        form=form,
        partners=found,
        partnerships=services.partnerships(),
        filtered=any(request.args.get(k) for k in ("q", "kind", "country")),
    )


@bp.route("/<slug>")
def show(slug: str) -> Any:
    """A capital partner: its products and ticket range, and our partnership with it."""
    partner = _partner_or_404(slug)
    history = services.partnerships_with(partner)
    return render_template(
        "partners/show.html",
        partner=partner,
        current=next((p for p in history if p.is_open), None),
        history=history,
        products=[p for p in Product if p in partner.products],
        action_form=ActionForm(),
        end_form=EndPartnershipForm(),
    )


@bp.route("/<slug>/propose", methods=["POST"])
@requires(MANAGE_PARTNERSHIPS)
def propose(slug: str) -> Any:
    """Propose a partnership to a capital partner; its administrator accepts it."""
    partner = _partner_or_404(slug)
    if ActionForm().validate_on_submit():
        act(
            lambda: services.propose_partnership(current_org_entity(), acting_user(), partner),
            lambda: _(
                "Partnership proposed to %(partner)s; it starts when they accept it.",
                partner=partner.name,
            ),
        )
    return redirect(url_for("partners.show", slug=slug))


@bp.route("/partnerships/<int:partnership_id>/end", methods=["POST"])
@requires(MANAGE_PARTNERSHIPS)
def end(partnership_id: int) -> Any:
    """End (or withdraw) this organization's partnership with a capital partner."""
    partnership = load_or_404(Partnership, partnership_id)
    slug, name = partnership.partner.slug, partnership.partner.name
    form = EndPartnershipForm()
    if form.validate_on_submit():
        act(
            lambda: services.end_partnership(
                partnership, acting_user(), PartnershipSide.ORGANIZATION, form.reason.data or ""
            ),
            lambda: _("The partnership with %(partner)s has ended.", partner=name),
        )
    else:
        flash(" ".join(form.reason.errors) or _("The form had expired. Try again."), "error")
    return redirect(url_for("partners.show", slug=slug))


# The partner's side --------------------------------------------------------------------


@partner_bp.route("/")
def home() -> Any:
    """The partner's home: its partnerships with organizations, and their state."""
    partner = current_partner()
    return render_template(
        "partners/partner_home.html",
        partner=partner,
        partnerships=services.partnerships_of_partner(partner),
        action_form=ActionForm(),
        end_form=EndPartnershipForm(),
        PartnershipState=PartnershipState,
    )


@partner_bp.route("/members")
def members() -> Any:
    """The partner's users and their roles (read-only)."""
    return render_template(
        "partners/partner_members.html",
        partner=current_partner(),
        members=services.partner_users(current_partner()),
    )


def _own_partnership_or_404(partnership_id: int) -> Partnership:
    if not 0 < partnership_id <= MAX_ID:
        abort(404)
    partnership = services.partnership_of_partner(current_partner(), partnership_id)
    if partnership is None:
        abort(404)
    return partnership


@partner_bp.route("/partnerships/<int:partnership_id>/accept", methods=["POST"])
@requires_partner_role(PartnerRole.PARTNER_ADMIN)
def accept(partnership_id: int) -> Any:
    """Accept an organization's proposal of partnership."""
    partnership = _own_partnership_or_404(partnership_id)
    name = partnership.organization.name  # read now: the row expires at commit
    if ActionForm().validate_on_submit():
        act(
            lambda: services.accept_partnership(partnership, acting_user()),
            lambda: _("You are now partners with %(org)s.", org=name),
        )
    return redirect(url_for("partner.home"))


@partner_bp.route("/partnerships/<int:partnership_id>/end", methods=["POST"])
@requires_partner_role(PartnerRole.PARTNER_ADMIN)
def end_partnership(partnership_id: int) -> Any:
    """Decline a proposal, or end an active partnership, on the partner's behalf."""
    partnership = _own_partnership_or_404(partnership_id)
    name = partnership.organization.name  # read now: the row expires at commit
    form = EndPartnershipForm()
    if form.validate_on_submit():
        act(
            lambda: services.end_partnership(
                partnership, acting_user(), PartnershipSide.PARTNER, form.reason.data or ""
            ),
            lambda: _("The partnership with %(org)s has ended.", org=name),
        )
    else:
        flash(" ".join(form.reason.errors) or _("The form had expired. Try again."), "error")
    return redirect(url_for("partner.home"))
