"""Demo consents: a few producers of each demo organization, with its partners (idempotent)."""

from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from inclusive.consents.models import Consent, ConsentMethod, ConsentScope
from inclusive.consents.services import partner_choices, record_consent, revoke_consent
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.producers.models import Producer
from inclusive.tenancy.demo import demo_staff
from inclusive.tenancy.scope import tenant_scope

S = ConsentScope
#: A one-page PDF, standing in for the scan of a signed paper.
SIGNED_PAPER = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
PURPOSES = {
    "es": ("Solicitud de crédito de capital de trabajo", "Evaluación para crédito de activo fijo"),
    "pt": ("Pedido de crédito de capital de giro", "Avaliação para crédito de investimento"),
}
REVOCATIONS = {
    "es": "El productor ya no desea compartir sus datos.",
    "pt": "O produtor não deseja mais compartilhar seus dados.",
}


def _paper(name: str) -> FileStorage:
    return FileStorage(stream=io.BytesIO(SIGNED_PAPER), filename=name)


def load_consents(slugs: tuple[str, ...] = ("andes", "sertao")) -> None:
    """Record consents for the first producers of each demo organization, once."""
    for slug in slugs:
        staff = demo_staff(slug)
        if staff is None:
            continue
        org, manager, officer = staff
        with tenant_scope(org.id):
            if db.session.scalar(select(func.count()).select_from(Consent)):
                continue
            partners = partner_choices()
            producers = list(db.session.scalars(select(Producer).order_by(Producer.id).limit(4)))
            if not partners or len(producers) < 4:
                continue
            purposes = PURPOSES.get(org.default_language, PURPOSES["es"])
            day = today()
            first, second = partners[0], partners[-1]
            # Valid, on signed paper, for everything a referral may carry.
            record_consent(
                producers[0],
                partner_id=first.id,
                purpose=purposes[0],
                scopes=list(S),
                method=ConsentMethod.SIGNED_PAPER,
                given_on=day - timedelta(days=30),
                recorder=manager,
                paper=_paper("consentimiento-firmado.pdf"),
            )
            # Valid, verbal with the field officer as witness, for part of the data.
            record_consent(
                producers[1],
                partner_id=second.id,
                purpose=purposes[1],
                scopes=[S.IDENTITY, S.CONTACT, S.PROGRAM_RECORD],
                method=ConsentMethod.VERBAL,
                witness_id=officer.id,
                given_on=day - timedelta(days=10),
                recorder=manager,
            )
            # Expired.
            given = day - timedelta(days=500)
            record_consent(
                producers[2],
                partner_id=first.id,
                purpose=purposes[0],
                scopes=[S.IDENTITY, S.ECONOMIC_FIGURES],
                method=ConsentMethod.VERBAL,
                witness_id=officer.id,
                given_on=given,
                valid_until=given + timedelta(days=365),
                recorder=manager,
            )
            # Revoked.
            revoked = record_consent(
                producers[3],
                partner_id=second.id,
                purpose=purposes[1],
                scopes=[S.IDENTITY, S.ECONOMIC_FIGURES, S.OFFTAKE_LEDGER],
                method=ConsentMethod.SIGNED_PAPER,
                given_on=day - timedelta(days=60),
                recorder=manager,
                paper=_paper("consentimiento.pdf"),
            )
            revoke_consent(
                revoked, REVOCATIONS.get(org.default_language, REVOCATIONS["es"]), manager
            )
            db.session.flush()  # the audit events too, while the organization is in scope
    db.session.flush()
