"""The producer page's consents panel: a Core read of explicit columns (the partner's and
the witness's names joined in; read with the page's other panels,
``producers.page.page_reads``), the organization bound by the tenant scope, printed as the
ORM's consents were."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from inclusive.consents import services
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.producers import page as producer_page
from inclusive.tenancy.scope import TenantScopeError, tenant_scope
from tests import factories

MARKUP = '<b>"x" & y\'s</b>'


def _listed(producer_id: int) -> list[services.ListedConsent]:
    """The panel's consents, as the page reads them."""
    return producer_page.page_reads(producer_id).consents


def _csrf_free(html: str) -> str:
    """The page without its CSRF tokens (signed with the time: they change each second)."""
    return re.sub(r'value="[\w-]+\.[\w-]+\.[\w-]+"', 'value="csrf"', html)


def _consents(org, producer, mfi, staff) -> list:
    with tenant_scope(org.id):
        witnessed = services.record_consent(
            producer,
            partner_id=mfi.id,
            purpose=f"Loan {MARKUP}",
            scopes=["identity", "contact"],
            method="verbal",
            witness_id=staff["officer"].id,
            given_on=today() - timedelta(days=3),
            recorder=staff["manager"],
        )
        revoked = services.record_consent(
            producer,
            partner_id=mfi.id,
            purpose="Savings",
            scopes=["economic_figures"],
            method="verbal",
            witness_id=staff["officer"].id,
            given_on=today() - timedelta(days=400),
            valid_until=today() - timedelta(days=1),
            recorder=staff["manager"],
        )
        db.session.flush()
        services.revoke_consent(revoked, f"Asked {MARKUP}", staff["manager"])
        db.session.flush()
        return [witnessed, revoked]


@pytest.mark.parametrize("locale", ["en", "es"])
@pytest.mark.parametrize("role", ["manager", "officer"])
def test_the_panel_is_printed_as_with_orm_consents(
    client, login, monkeypatch, org, producer, mfi, staff, locale, role
):
    mfi.name = MARKUP
    staff["officer"].name = f"Oscar {MARKUP}"
    consent_id = _consents(org, producer, mfi, staff)[0].id
    url = f"/o/acme/producers/{producer.id}"
    staff[role].locale = locale
    db.session.flush()
    login(staff[role])
    page = client.get(url).get_data(as_text=True)
    assert page.count("&lt;b&gt;&#34;x&#34; &amp; y&#39;s&lt;/b&gt;") >= 5 and MARKUP not in page
    assert (f'id="revoke-{consent_id}"' in page) == (role == "manager")
    reads = producer_page.page_reads
    monkeypatch.setattr(
        producer_page,
        "page_reads",
        lambda producer_id: reads(producer_id)._replace(consents=services.consents_of(producer_id)),
    )
    assert _csrf_free(client.get(url).get_data(as_text=True)) == _csrf_free(page)


def test_the_listed_consents_are_the_consents(org, producer, mfi, staff):
    consents = _consents(org, producer, mfi, staff)
    with tenant_scope(org.id):
        listed = _listed(producer.id)
        assert [c.id for c in listed] == [c.id for c in services.consents_of(producer.id)]
        for row, consent in zip(listed, consents, strict=True):
            assert row.partner.name == consent.partner.name
            assert row.witness.name == consent.witness.name
            assert row.scopes == consent.scopes and row.revoked_at == consent.revoked_at
            assert row.state_on(today()) == consent.state_on(today())


def test_another_organizations_consents_never_appear(org, other_org, producer, mfi, staff):
    _consents(org, producer, mfi, staff)
    with tenant_scope(org.id):
        assert len(_listed(producer.id)) == 2
    with tenant_scope(other_org.id):
        factories.ProducerFactory()
        db.session.flush()
        assert _listed(producer.id) == []
    with pytest.raises(TenantScopeError):
        _listed(producer.id)
