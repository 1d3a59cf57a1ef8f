"""The producer page's figures, diagnostic and ledger panels: Core reads of explicit columns,
the organization bound by the tenant scope, the same rows and page as the ORM's."""

from __future__ import annotations

import re
from datetime import date

import pytest

from inclusive.extensions import db
from inclusive.impact import services as impact
from inclusive.impact.models import VIABILITY_FACTORS
from inclusive.producers import page
from inclusive.programs.models import Program
from inclusive.tenancy.scope import TenantScopeError, tenant_scope
from tests import factories
from tests.programs.support import done, enroll, fresh, new_producer, new_program, today

MARKUP = '<b>"x" & y\'s</b>'
FIGURES = ("month", "sales", "costs", "household_withdrawals", "reinvestment", "assets", "debt")


def _months_back(n: int) -> date:
    index = today().year * 12 + today().month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


@pytest.fixture
def recorded(org, make_member):
    """A supplier program's producer with seven months of figures (one entered by nobody
    any more), two diagnostics and three purchases, markup in every free text."""
    officer = make_member("field_officer", name=f"Rosa {MARKUP}")
    program = new_program(org, "supplier_program")
    producer = new_producer(org.id)
    enroll(program, [producer])
    with tenant_scope(org.id):
        for n in range(7):
            figures = {"sales": 1000 + 37 * n, "costs": 800 - 11 * n, "employees": n}
            figures |= {"household_withdrawals": 150, "reinvestment": 60 * (n % 3)}
            figures |= {"assets": "12345.67", "debt": "0.5"}
            impact.save_snapshot(producer.id, _months_back(n), figures, officer.id)
        for n, notes in enumerate(["", f"Notes {MARKUP}"]):
            scores = {f: (i + n) % 5 for i, f in enumerate(VIABILITY_FACTORS)}
            impact.save_assessment(producer.id, date(2025, 1 + n, 2), scores, notes, officer.id)
        program_row = fresh(org.id, Program, program.id)
        for n in range(3):
            fields = {"purchased_on": date(2025, 3, 1 + n), "product": f"Quinoa {MARKUP}"}
            fields |= {"quantity": str(2.5 + n), "unit": "kg", "unit_price": "3.40"}
            fields |= {"on_time": n != 1, "quality_accepted": n != 2}
            impact.record_purchase(producer.id, program_row, fields, officer.id)
        snapshot = impact.snapshots(producer.id)[0]
        snapshot.entered_by_id = None
        done()
    return producer.id


def test_the_rows_are_the_orms(org, recorded):
    with tenant_scope(org.id):
        figures, snapshots = impact.month_figures(recorded), impact.snapshots(recorded)
        assert len(figures) == len(snapshots) == 7
        for row, snapshot in zip(figures, snapshots, strict=True):
            assert [getattr(row, f) for f in (*FIGURES, "employees")] == [
                getattr(snapshot, f) for f in (*FIGURES, "employees")
            ]
            assert (row.entered_by and row.entered_by.name) == (
                snapshot.entered_by and snapshot.entered_by.name
            )
        assert impact.reproduction_history(figures) == impact.reproduction_history(snapshots)
        diagnostics, assessments = impact.diagnostics(recorded), impact.assessments(recorded)
        assert [(d.assessed_on, d.scores, d.total, d.notes) for d in diagnostics] == [
            (a.assessed_on, a.scores, a.total, a.notes) for a in assessments
        ]
        (purchases, totals), (orm_purchases, orm_totals) = (
            impact.ledger(recorded, limit=2),
            impact.offtake(recorded, limit=2),
        )
        assert totals == orm_totals and totals.purchases == 3
        assert purchases == [
            tuple(getattr(p, f) for f in impact.Purchase._fields) for p in orm_purchases
        ]
        nobody = factories.ProducerFactory()
        db.session.flush()
        assert impact.ledger(nobody.id) == impact.offtake(nobody.id)
        assert impact.month_figures(nobody.id) == impact.diagnostics(nobody.id) == []


def _csrf_free(html: str) -> str:
    """The page without its CSRF tokens (signed with the time: they change each second)."""
    return re.sub(r'value="[\w-]+\.[\w-]+\.[\w-]+"', 'value="csrf"', html)


@pytest.mark.parametrize("locale", ["en", "es"])
def test_the_page_is_printed_as_with_the_orms_rows(
    client, login_as, monkeypatch, org, recorded, locale
):
    login_as("admin", locale=locale)
    url = f"/o/acme/producers/{recorded}"
    page = client.get(url).get_data(as_text=True)
    assert page.count("&lt;b&gt;&#34;x&#34; &amp; y&#39;s&lt;/b&gt;") >= 9 and MARKUP not in page
    monkeypatch.setattr(impact, "month_figures", impact.snapshots)
    monkeypatch.setattr(impact, "diagnostics", impact.assessments)
    monkeypatch.setattr(impact, "ledger", impact.offtake)
    assert _csrf_free(client.get(url).get_data(as_text=True)) == _csrf_free(page)


def test_another_organizations_rows_never_appear(org, other_org, recorded):
    with tenant_scope(other_org.id):
        factories.ProducerFactory()
        db.session.flush()
        assert impact.month_figures(recorded) == impact.diagnostics(recorded) == []
        assert impact.ledger(recorded) == ([], impact.OfftakeTotals(0, 0, 0.0, 0.0))
    for read in (impact.month_figures, impact.diagnostics, impact.ledger):
        with pytest.raises(TenantScopeError):
            read(recorded)


def test_amounts_and_labels_follow_the_locale_within_a_request(app):
    from flask_babel import force_locale

    from inclusive.presentation import money, reproduction_help, reproduction_label

    with app.test_request_context():
        seen = {}
        for language in ("en", "es", "en", "pt", "es"):
            with force_locale(language):
                now = (money(123456789), reproduction_label("deficit"), reproduction_help("x"))
                assert seen.setdefault(language, now) == now
                assert now[2] == "" and reproduction_label("odd") == "odd"
                assert now[1] == str(impact.REPRODUCTION_LABELS["deficit"])
        assert seen["en"][0] == "1,234,567.89" and seen["es"][0] == "1.234.567,89"
        assert seen["es"][1] != seen["en"][1]


def test_the_producer_pages_bundle_gives_each_reads_own(org, other_org, recorded):
    with tenant_scope(org.id):
        programs = page.programs()
        reads = page.page_reads(recorded)
        assert reads.programs == programs
        assert reads.figures == impact.month_figures(recorded)
        assert (reads.purchases, reads.totals) == impact.ledger(recorded)
        assert reads.diagnostics == impact.diagnostics(recorded)
        assert (len(reads.figures), len(reads.diagnostics), len(reads.purchases)) == (7, 2, 3)
    with tenant_scope(other_org.id):
        theirs = page.page_reads(recorded)
        assert theirs.plans == theirs.figures == theirs.diagnostics == theirs.purchases == []
        assert theirs.events == []
