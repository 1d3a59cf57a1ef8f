"""Route-matrix entries of the partner pages (merged into tests/test_route_matrix.py).

Organization-side pages are ``org`` routes. Partner-side pages (``/p/<slug>/...``) have
their own audience, ``partner``, whose roles are partner roles.
"""

from __future__ import annotations

from typing import Any

from inclusive.extensions import db
from inclusive.partners.models import PartnerRole, Partnership, PartnershipState
from inclusive.partners.services import create_partner
from inclusive.tenancy.models import Organization
from inclusive.tenancy.scope import tenant_scope
from tests.routes import ADMIN, ALL_ROLES, Rule, org

PARTNER_ROLES = frozenset(PartnerRole)
PARTNER_ADMIN = frozenset({PartnerRole.PARTNER_ADMIN})


def partner(roles: frozenset[PartnerRole], method: str = "GET", **kw: Any) -> Rule:
    return Rule("partner", roles, method, **kw)  # type: ignore[arg-type]


def _own_partnership(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"partnership_id": ctx["partnership"]}


PARTNER_ROUTES: dict[str, Rule] = {
    "partners.index": org(ALL_ROLES),
    "partners.show": org(ALL_ROLES, args=lambda ctx: {"slug": ctx["partner_slug"]}),
    "partners.propose": org(ADMIN, "POST", args=lambda ctx: {"slug": ctx["free_partner_slug"]}),
    "partners.end": org(ADMIN, "POST", args=_own_partnership),
    "partner.home": partner(PARTNER_ROLES),
    "partner.members": partner(PARTNER_ROLES),
    "partner.accept": partner(PARTNER_ADMIN, "POST", args=_own_partnership),
    "partner.end_partnership": partner(PARTNER_ADMIN, "POST", args=_own_partnership),
}


def partner_rows(home: Organization) -> dict[str, Any]:
    """A partner with a proposed partnership with ``home``, and a partner with none."""
    linked = create_partner(slug="matrix-mfi", name="Matrix MFI", kind="mfi", country="PE")
    free = create_partner(slug="matrix-fund", name="Matrix Fund", kind="local_fund")
    with tenant_scope(home.id):
        partnership = Partnership(partner_id=linked.id, state=PartnershipState.PROPOSED)
        db.session.add(partnership)
        db.session.flush()
    return {
        "partner": linked,
        "partner_slug": linked.slug,
        "free_partner_slug": free.slug,
        "partnership": partnership.id,
    }
