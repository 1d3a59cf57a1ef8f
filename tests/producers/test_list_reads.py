"""The producer list's page of rows: a Core statement per shape of filters, built once, the
organization bound by the tenant scope; the same rows, in the same order, as the ORM query
of ``filtered_producers`` with the list's columns."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones.models import EnrollmentState
from inclusive.producers import services as registry
from inclusive.producers.models import Producer, ProducerSector
from inclusive.tenancy.scope import TenantScopeError, tenant_scope
from tests.programs.support import days_ago, done, enroll, new_producer, new_program

_SECTOR_LIST = (
    select(func.aggregate_strings(ProducerSector.sector, ","))
    .where(ProducerSector.producer_id == Producer.id, ProducerSector.org_id == Producer.org_id)
    .scalar_subquery()
)


def _orm_page(filters, page, per_page):
    """The list's former query: the ORM's column query of filtered_producers."""
    query = (
        registry.filtered_producers(filters, *registry.LIST_COLUMNS, _SECTOR_LIST.label("s"))
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    )
    rows = [
        registry.ListedProducer(*row[:-1], sectors=sorted(row[-1].split(",")) if row[-1] else [])
        for row in db.session.execute(query)
    ]
    return rows[:per_page], len(rows) > per_page


@pytest.fixture
def registry_rows(org, other_org):
    """Producers with wildcards, accents, phones and sectors; three programs' enrollments;
    another organization's twin, who must never show."""
    names = ["Rosa Huamán", "José Quispe", "Ana 100% _x_", "a/b Coop", "Álvaro Ruiz", "Zoe"]
    made = [
        new_producer(
            org.id,
            name=name,
            national_id=f"DNI-{n}",
            phone=f"+51 987 654 32{n}",
            region="Cusco" if n % 2 else "Puno",
            sectors=["crafts;agriculture", "agriculture", "", "livestock"][n % 4],
        )
        for n, name in enumerate(names)
    ]
    new_producer(other_org.id, name="Rosa Huamán", national_id="DNI-0", phone="+51 987 654 320")
    quinoa = new_program(org, name="Quinoa")
    cacao = new_program(org, "rural_network", name="Cacao")
    enroll(quinoa, made[:2], on=days_ago(60))
    enroll(cacao, made[1:4])
    with tenant_scope(org.id):
        plans.enroll(quinoa, [made[4].id], state=EnrollmentState.APPLIED)
        done()
    return quinoa.id, cacao.id


QUERIES = ["", "huaman", "HUAMÁN", "%", "_", "/", "100%", "a/b", "dni-3", "987654321", "654 323"]


@pytest.mark.parametrize("small_cohort", [5000, 0])
def test_the_rows_are_the_orms(org, registry_rows, monkeypatch, small_cohort):
    monkeypatch.setattr(registry, "SMALL_COHORT", small_cohort)
    quinoa, cacao = registry_rows
    shapes = itertools.product(
        QUERIES, ["", "Cusco"], ["", "agriculture"], [None, quinoa, cacao], ["", "active"]
    )
    with tenant_scope(org.id):
        seen = set()
        for q, region, sector, program_id, state in shapes:
            for at_risk in (False, True):
                filters = registry.ProducerFilters(q, program_id, region, sector, state, at_risk)
                for page, per_page in ((1, 50), (1, 2), (2, 2)):
                    found = registry.producer_page(filters, page, per_page)
                    assert found == _orm_page(filters, page, per_page), (filters, page)
                    seen.add(len(found[0]))
        assert seen >= {0, 1, 2}
        assert len(registry.producer_page(registry.ProducerFilters(), 1)[0]) == 6


def test_another_organizations_producers_never_appear(org, other_org, registry_rows):
    with tenant_scope(other_org.id):
        (only,), more = registry.producer_page(registry.ProducerFilters(q="huaman"), 1)
        assert not more
        assert [p.name for p in registry.producer_page(registry.ProducerFilters(), 1)[0]] == [
            only.name
        ]
        assert registry.producer_page(registry.ProducerFilters(region="Puno"), 1) == ([], False)
    with tenant_scope(org.id):
        ids = {p.id for p in registry.producer_page(registry.ProducerFilters(q="huaman"), 1)[0]}
        assert only.id not in ids and len(ids) == 1
    with pytest.raises(TenantScopeError):
        registry.producer_page(registry.ProducerFilters(), 1)
