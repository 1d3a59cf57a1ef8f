"""Capital partners, their users and partnerships: every change to them goes through here."""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from inclusive.auth.models import User
from inclusive.babelcache import lazy_gettext as _l
from inclusive.extensions import db
from inclusive.partners.models import (
    CapitalPartner,
    PartnerKind,
    PartnerMembership,
    PartnerRole,
    Partnership,
    PartnershipSide,
    PartnershipState,
    Product,
)
from inclusive.refusals import Refused
from inclusive.tenancy.models import Organization
from inclusive.tenancy.scope import ALL_TENANTS, require_org_id, tenant_scope
from inclusive.tenancy.services import RESERVED_SLUGS, SLUG_RE
from inclusive.timeutil import utcnow

KIND_LABELS = {
    PartnerKind.MFI: _l("Microfinance institution"),
    PartnerKind.ANGEL_NETWORK: _l("Angel-investor network"),
    PartnerKind.LOCAL_FUND: _l("Local investment fund"),
    PartnerKind.COOPERATIVE_BANK: _l("Cooperative bank"),
    PartnerKind.OTHER: _l("Other capital provider"),
}

PRODUCT_LABELS = {
    Product.WORKING_CAPITAL_LOAN: _l("Working-capital loan"),
    Product.ASSET_LOAN: _l("Asset loan"),
    Product.MICRO_INSURANCE: _l("Micro-insurance"),
    Product.SAVINGS: _l("Savings"),
    Product.PAYMENTS: _l("Payments"),
    Product.EQUITY: _l("Equity"),
    Product.GUARANTEE: _l("Guarantee"),
}

PARTNER_ROLE_LABELS = {
    PartnerRole.PARTNER_ADMIN: _l("Partner administrator"),
    PartnerRole.LOAN_OFFICER: _l("Loan officer"),
}

STATE_LABELS = {
    PartnershipState.PROPOSED: _l("Proposed"),
    PartnershipState.ACTIVE: _l("Active"),
    PartnershipState.ENDED: _l("Ended"),
}


class PartnerError(Refused):
    """A change to a partner or a partnership that is refused; the message says why."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# Capital partners ----------------------------------------------------------------------


def create_partner(
    *,
    slug: str,
    name: str,
    kind: PartnerKind | str,
    country: str = "",
    description: str = "",
    regions: Iterable[str] = (),
    products: Iterable[Product | str] = (),
    ticket_min: int | None = None,
    ticket_max: int | None = None,
    ticket_currency: str | None = None,
) -> CapitalPartner:
    """Register a capital partner on the platform (operators and demo data only)."""
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug) or slug in RESERVED_SLUGS:
        raise PartnerError(
            _("Use 1 to 40 lowercase letters, digits and hyphens (not at either end)."), "slug"
        )
    if db.session.scalar(select(func.count()).select_from(CapitalPartner).filter_by(slug=slug)):
        raise PartnerError(_("This address is already taken; choose another."), "slug")
    name = name.strip()
    if not name or len(name) > 160:
        raise PartnerError(_("Give the partner a name of at most 160 characters."), "name")
    if kind not in set(PartnerKind):
        raise PartnerError(_("Choose a kind of partner from the list."), "kind")
    country = (country or "").strip().upper()
    if country and (len(country) != 2 or not country.isalpha()):
        raise PartnerError(_("The country is a two-letter ISO code, such as PE."), "country")
    product_values = list(dict.fromkeys(str(p) for p in products))
    if any(p not in set(Product) for p in product_values):
        raise PartnerError(_("Choose the products from the list."), "products")
    currency = (ticket_currency or "").strip().upper() or None
    _check_ticket(ticket_min, ticket_max, currency)
    partner = CapitalPartner(
        slug=slug,
        name=name,
        kind=str(kind),
        country=country,
        description=description.strip(),
        regions=[r.strip() for r in regions if r.strip()],
        products=product_values,
        ticket_min=ticket_min,
        ticket_max=ticket_max,
        ticket_currency=currency,
    )
    db.session.add(partner)
    db.session.flush()
    return partner


def _check_ticket(low: int | None, high: int | None, currency: str | None) -> None:
    if (low is not None and low < 0) or (high is not None and high < 0):
        raise PartnerError(_("Ticket amounts cannot be negative."), "ticket_min")
    if low is not None and high is not None and high < low:
        raise PartnerError(_("The largest ticket cannot be below the smallest."), "ticket_max")
    if (low is not None or high is not None) and (
        currency is None or len(currency) != 3 or not currency.isalpha()
    ):
        raise PartnerError(
            _("A ticket range needs its currency, a three-letter ISO code."), "ticket_currency"
        )


def partner_by_slug(slug: str) -> CapitalPartner | None:
    """The capital partner with this slug, or None."""
    if len(slug) > 40:
        return None
    return db.session.scalar(select(CapitalPartner).filter_by(slug=slug))


def search_partners(q: str = "", kind: str = "", country: str = "") -> list[CapitalPartner]:
    """Capital partners on the platform by name, narrowed by name, kind or country."""
    query = select(CapitalPartner).order_by(CapitalPartner.name).limit(200)
    q = q.strip()[:100]
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                CapitalPartner.name.ilike(pattern, escape="\\"),
                CapitalPartner.slug.ilike(pattern, escape="\\"),
            )
        )
    if kind in set(PartnerKind):
        query = query.where(CapitalPartner.kind == kind)
    if country:
        query = query.where(CapitalPartner.country == country.upper()[:2])
    return list(db.session.scalars(query))


# Partner users -------------------------------------------------------------------------


def add_partner_user(
    partner: CapitalPartner, user: User, role: PartnerRole | str
) -> PartnerMembership:
    """Give a user a role at a capital partner (or change the role they have)."""
    if role not in set(PartnerRole):
        raise PartnerError(_("Choose a partner role from the list."), "role")
    membership = db.session.scalar(
        select(PartnerMembership).filter_by(partner_id=partner.id, user_id=user.id)
    )
    if membership is None:
        membership = PartnerMembership(partner_id=partner.id, user_id=user.id, role=str(role))
        db.session.add(membership)
    else:
        membership.role = str(role)
    db.session.flush()
    return membership


def partner_memberships_of(user: User) -> list[PartnerMembership]:
    """Every capital partner the user works for, by name."""
    query = (
        select(PartnerMembership)
        .join(PartnerMembership.partner)
        .where(PartnerMembership.user_id == user.id)
        .order_by(CapitalPartner.name)
    )
    return list(db.session.scalars(query))


def partner_users(partner: CapitalPartner) -> list[PartnerMembership]:
    """The users of a capital partner, by name."""
    query = (
        select(PartnerMembership)
        .join(PartnerMembership.user)
        .where(PartnerMembership.partner_id == partner.id)
        .order_by(User.name)
    )
    return list(db.session.scalars(query))


# Partnerships, seen from the organization in scope -------------------------------------


def partnerships() -> list[Partnership]:
    """The partnerships of the organization in scope: open ones first, then by partner."""
    query = (
        select(Partnership)
        .join(Partnership.partner)
        .order_by(Partnership.state == PartnershipState.ENDED, CapitalPartner.name)
    )
    return list(db.session.scalars(query))


def partnerships_with(partner: CapitalPartner) -> list[Partnership]:
    """The organization's partnerships with one partner, the newest first."""
    query = (
        select(Partnership)
        .where(Partnership.partner_id == partner.id)
        .order_by(Partnership.proposed_at.desc(), Partnership.id.desc())
    )
    return list(db.session.scalars(query))


def open_partnership(partner: CapitalPartner) -> Partnership | None:
    """The organization's proposed or active partnership with a partner, if any."""
    query = select(Partnership).where(
        Partnership.partner_id == partner.id, Partnership.state != PartnershipState.ENDED
    )
    return db.session.scalar(query)


def _refuse_if_open(partner: CapitalPartner) -> None:
    current = open_partnership(partner)
    if current is None:
        return
    if current.state == PartnershipState.ACTIVE:
        raise PartnerError(_("%(partner)s is already a partner.", partner=partner.name))
    raise PartnerError(
        _(
            "A partnership with %(partner)s is already proposed and waits for its answer.",
            partner=partner.name,
        )
    )


def propose_partnership(
    org: Organization, actor: User, partner: CapitalPartner, acknowledgement_days: int = 2
) -> Partnership:
    """Propose a partnership to a capital partner; its administrator accepts it."""
    if org.id != require_org_id():
        raise PartnerError(_("This organization is not the one in scope."))
    _refuse_if_open(partner)
    partnership = Partnership(
        partner_id=partner.id,
        state=PartnershipState.PROPOSED,
        proposed_by_id=actor.id,
        proposed_at=utcnow(),
        acknowledgement_days=acknowledgement_days,
    )
    db.session.add(partnership)
    db.session.flush()
    return partnership


def link_partner(org: Organization, partner: CapitalPartner) -> tuple[Partnership, bool]:
    """Make a partnership active at once (operators): accept a proposed one, or create it.

    Return the partnership and whether anything changed.
    """
    with tenant_scope(org.id):
        current = open_partnership(partner)
        if current is not None and current.state == PartnershipState.ACTIVE:
            return current, False
        now = utcnow()
        if current is None:
            current = Partnership(
                partner_id=partner.id, state=PartnershipState.PROPOSED, proposed_at=now
            )
            db.session.add(current)
        current.state = PartnershipState.ACTIVE
        current.accepted_at = now
        db.session.flush()
        return current, True


# Partnerships, seen from a capital partner ---------------------------------------------


def partnerships_of_partner(partner: CapitalPartner) -> list[Partnership]:
    """Every partnership of a capital partner, across the organizations it works with.

    ALL_TENANTS on purpose: a partner spans organizations by design. This reads the
    partnerships table only, filtered by the partner; no other tenant table is read.
    """
    query = (
        select(Partnership)
        .join(Partnership.organization)
        .where(Partnership.partner_id == partner.id)
        .order_by(Partnership.state == PartnershipState.ENDED, Organization.name)
        .execution_options(**ALL_TENANTS)
    )
    return list(db.session.scalars(query))


def partnership_of_partner(partner: CapitalPartner, partnership_id: int) -> Partnership | None:
    """One partnership of a capital partner by id, or None when it is not its own."""
    query = (
        select(Partnership)
        .where(Partnership.id == partnership_id, Partnership.partner_id == partner.id)
        .execution_options(**ALL_TENANTS)  # a partner spans organizations; see above
    )
    return db.session.scalar(query)


def accept_partnership(partnership: Partnership, actor: User) -> None:
    """Accept a proposed partnership on the partner's behalf."""
    if partnership.state != PartnershipState.PROPOSED:
        raise PartnerError(
            _(
                "Only a proposed partnership can be accepted; this one is %(state)s.",
                state=str(STATE_LABELS[PartnershipState(partnership.state)]).lower(),
            )
        )
    # The row's own organization is the scope of this change: the partner acts on it.
    with tenant_scope(partnership.org_id):
        partnership.state = PartnershipState.ACTIVE
        partnership.accepted_by_id = actor.id
        partnership.accepted_at = utcnow()
        db.session.flush()


def end_partnership(
    partnership: Partnership, actor: User, side: PartnershipSide, reason: str = ""
) -> None:
    """End a proposed or active partnership, from either side; no new referrals after."""
    if partnership.state == PartnershipState.ENDED:
        raise PartnerError(_("This partnership has already ended."))
    with tenant_scope(partnership.org_id):
        partnership.state = PartnershipState.ENDED
        partnership.ended_by_id = actor.id
        partnership.ended_at = utcnow()
        partnership.ended_side = side
        partnership.end_reason = reason.strip()[:500]
        db.session.flush()
