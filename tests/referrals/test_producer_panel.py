"""The producer page's referrals section: a Core read of explicit columns (read with the
page's other panels, ``producers.page.page_reads``), the organization bound by the tenant
scope, printed as the ORM's referrals were."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from inclusive.extensions import db
from inclusive.producers import page as producer_page
from inclusive.referrals import services
from inclusive.referrals.models import Referral
from inclusive.tenancy.scope import TenantScopeError, tenant_scope
from tests import factories

MARKUP = '<b>"Andina" & Co\'s</b>'


def _orm_referrals(producer_id: int) -> list[Referral]:
    """The section's former query (ORM entities), to compare the page with."""
    query = (
        select(Referral)
        .where(Referral.producer_id == producer_id)
        .order_by(Referral.created_at.desc())
    )
    return list(db.session.scalars(query))


def _listed(producer_id: int) -> list[services.ListedReferral]:
    """The section's referrals, as the page reads them."""
    return producer_page.page_reads(producer_id).referrals


def _csrf_free(html: str) -> str:
    """The page without its CSRF tokens (signed with the time: they change each second)."""
    return re.sub(r'value="[\w-]+\.[\w-]+\.[\w-]+"', 'value="csrf"', html)


@pytest.mark.parametrize("locale", ["en", "es"])
def test_the_section_is_printed_as_with_orm_referrals(
    client, login, monkeypatch, org, mfi, draft, staff, locale
):
    mfi.name = MARKUP
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
        sent_id, producer_id = draft.id, draft.producer_id
    staff["manager"].locale = locale
    db.session.flush()
    login(staff["manager"])
    url = f"/o/acme/producers/{producer_id}"
    page = client.get(url).get_data(as_text=True)
    assert f"/referrals/{sent_id}" in page
    assert "&lt;b&gt;&#34;Andina&#34; &amp; Co&#39;s&lt;/b&gt;" in page and MARKUP not in page
    reads = producer_page.page_reads
    monkeypatch.setattr(
        producer_page,
        "page_reads",
        lambda producer_id: reads(producer_id)._replace(referrals=_orm_referrals(producer_id)),
    )
    assert _csrf_free(client.get(url).get_data(as_text=True)) == _csrf_free(page)


def test_another_organizations_referrals_never_appear(org, other_org, draft):
    producer_id = draft.producer_id
    with tenant_scope(org.id):
        assert [r.id for r in _listed(producer_id)] == [draft.id]
        (listed,) = _listed(producer_id)
        assert listed.partner.name == draft.partner.name and listed.state == draft.state
    with tenant_scope(other_org.id):
        factories.ProducerFactory()
        db.session.flush()
        assert _listed(producer_id) == []
    with pytest.raises(TenantScopeError):
        _listed(producer_id)
