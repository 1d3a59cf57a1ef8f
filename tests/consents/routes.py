"""Route-matrix entries of the consent pages (merged into tests/test_route_matrix.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from inclusive.consents.models import Consent
from inclusive.extensions import db
from inclusive.partners.models import CapitalPartner
from inclusive.storage import storage
from inclusive.tenancy.roles import Role
from tests.routes import ALL_ROLES, Rule, org

MANAGERS = frozenset({Role.ADMIN, Role.PROGRAM_MANAGER})


def _consent(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"producer_id": ctx["producer"], "consent_id": ctx["consent"]}


CONSENT_ROUTES: dict[str, Rule] = {
    # Field officers record too, for producers of their programs (none in the matrix's world).
    "consents.new": org(MANAGERS, args=lambda ctx: {"producer_id": ctx["producer"]}),
    "consents.revoke": org(MANAGERS, "POST", args=_consent, data={"reason": "Asked by phone"}),
    "consents.paper": org(ALL_ROLES, args=_consent),
}


def consent_for(producer_id: int) -> int:
    """A signed-paper consent of a producer for the matrix's partner (inside the org's scope)."""
    partner = db.session.scalar(select(CapitalPartner).filter_by(slug="matrix-mfi"))
    consent = Consent(
        producer_id=producer_id,
        partner_id=partner.id,
        purpose="Working-capital loan",
        scopes=["identity"],
        text_version="consent-v1",
        method="signed_paper",
        given_on=date(2026, 1, 5),
        valid_until=date(2027, 1, 5),
        paper_filename="signed.pdf",
        paper_content_type="application/pdf",
        paper_size=8,
        paper_storage_key=storage().save(b"%PDF-1.4", ".pdf"),
        paper_sha256="0" * 64,
    )
    db.session.add(consent)
    db.session.flush()
    return consent.id
