"""The producer page's own reads (programs, plans, timeline): Core statements of explicit
columns, the organization bound by the tenant scope, the same page as the ORM's rows."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, joinedload, lazyload
from werkzeug.exceptions import NotFound

from inclusive.audit.models import AuditEvent
from inclusive.audit.services import record
from inclusive.consents import services as consent_services
from inclusive.extensions import db
from inclusive.impact import services as impact
from inclusive.milestones.models import Enrollment, Milestone
from inclusive.producers import page
from inclusive.producers.models import Producer
from inclusive.programs.models import Program
from inclusive.referrals.models import Referral
from inclusive.tenancy.scope import TenantScopeError, tenant_scope
from inclusive.tenancy.web import load_or_404
from tests import factories
from tests.programs.support import done, enroll, new_producer, new_program, today

MARKUP = '<b>"x" & y\'s</b>'


def _orm_producer(producer_id: int) -> Producer:
    """The page's former load: the producer and its sectors, an ORM entity."""
    return load_or_404(Producer, producer_id, options=[joinedload(Producer.sector_rows)])


def _orm_programs() -> list[Program]:
    return list(db.session.scalars(select(Program).order_by(Program.name)))


def _orm_plans(producer_id: int, programs: list) -> list[Enrollment]:
    """The page's former query: enrollments with their milestones, ORM entities."""
    query = (
        select(Enrollment)
        .outerjoin(Enrollment.milestones)
        .options(
            lazyload(Enrollment.producer),
            contains_eager(Enrollment.milestones),
        )
        .where(Enrollment.producer_id == producer_id)
        .order_by(Enrollment.id, Milestone.position)
    )
    return list(db.session.scalars(query).unique())


def _orm_timeline(producer_id: int) -> list[AuditEvent]:
    query = (
        select(AuditEvent)
        .options(joinedload(AuditEvent.actor))
        .where(AuditEvent.producer_id == producer_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(100)
    )
    return list(db.session.scalars(query))


@pytest.fixture
def planned(org, make_member):
    """A producer in three programs (one without milestones, one keeping a ledger), with
    markup in the programs', milestones' and actors' names and in the events' details."""
    actor = make_member("program_manager", name=f"Julia {MARKUP}")
    supplier = new_program(org, "supplier_program", name=f"Suppliers {MARKUP}")
    services = new_program(org, "service_center", name="Advice")
    empty = new_program(org, "service_center", name="Zero steps")
    producer = new_producer(
        org.id,
        name=f"Rosa {MARKUP}",
        representative=f"Rep {MARKUP}",
        notes=f"Notes {MARKUP}",
        sectors=["livestock", "agriculture", "crafts"],
        municipality=f"Calca {MARKUP}",
        region="Cusco",
    )
    enroll(supplier, [producer], on=today() - timedelta(days=200))
    enroll(services, [producer])
    with tenant_scope(org.id):
        for step in db.session.scalars(select(Program).filter_by(id=empty.id)).one().steps:
            db.session.delete(step)
        db.session.flush()
        enroll(empty, [producer])
        milestone = db.session.scalars(select(Milestone).order_by(Milestone.id)).first()
        milestone.name = f"First {MARKUP}"
        milestone.status = "achieved"
        record("producer.updated", producer_id=producer.id, actor_id=actor.id, note=MARKUP)
        record("no.such.action", producer_id=producer.id, actor_id=None)
        done()
    return producer.id


def test_the_rows_are_the_orms(org, planned):
    with tenant_scope(org.id):
        shown, producer = page.producer_page(planned).producer, _orm_producer(planned)
        assert shown == tuple(getattr(producer, f) for f in page.ShownProducer._fields)
        assert shown.sectors == ["agriculture", "crafts", "livestock"]
        programs = page.programs()
        assert [tuple(p) for p in programs] == [
            (p.id, p.name, p.status, p.kind) for p in _orm_programs()
        ]
        reads = page.page_reads(planned)
        assert reads.programs == programs
        plans, orm = reads.plans, _orm_plans(planned, programs)
        assert [len(p.milestones) for p in plans] == [len(e.milestones) for e in orm]
        assert 0 in [len(p.milestones) for p in plans]
        for plan, enrollment in zip(plans, orm, strict=True):
            assert (plan.id, plan.program.name, plan.state, plan.progress, plan.at_risk) == (
                enrollment.id,
                enrollment.program.name,
                enrollment.state,
                enrollment.progress,
                enrollment.at_risk,
            )
            assert plan.program.keeps_offtake_ledger == enrollment.program.keeps_offtake_ledger
            for m, orm_m in zip(plan.milestones, enrollment.milestones, strict=True):
                assert (m.id, m.name, m.status, m.due_date, m.evidence_required) == (
                    orm_m.id,
                    orm_m.name,
                    orm_m.status,
                    orm_m.due_date,
                    orm_m.evidence_required,
                )
                assert m.is_overdue(today() + timedelta(days=400)) == orm_m.is_overdue(
                    today() + timedelta(days=400)
                )
        events, orm_events = reads.events, _orm_timeline(planned)
        assert len(events) == len(orm_events) >= 5
        assert [(e.at, e.action, e.details, e.actor and e.actor.name) for e in events] == [
            (e.at, e.action, e.details, e.actor and e.actor.name) for e in orm_events
        ]
        assert None in [e.actor for e in events]


def _csrf_free(html: str) -> str:
    """The page without its CSRF tokens (signed with the time: they change each second)."""
    return re.sub(r'value="[\w-]+\.[\w-]+\.[\w-]+"', 'value="csrf"', html)


@pytest.mark.parametrize("locale", ["en", "es"])
@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_the_page_is_printed_as_with_the_orms_rows(
    client, login_as, monkeypatch, org, planned, locale, role
):
    login_as(role, locale=locale)
    url = f"/o/acme/producers/{planned}"
    html = client.get(url).get_data(as_text=True)
    assert html.count("&lt;b&gt;&#34;x&#34; &amp; y&#39;s&lt;/b&gt;") >= 5 and MARKUP not in html
    monkeypatch.setattr(page, "page_reads", _orm_page_reads)
    assert _csrf_free(client.get(url).get_data(as_text=True)) == _csrf_free(html)


def _orm_page_reads(producer_id: int) -> page.PageReads:
    """The page's reads one by one, its programs, plans and timeline as ORM entities."""
    programs = _orm_programs()
    purchases, totals = impact.ledger(producer_id)
    return page.PageReads(
        _orm_producer(producer_id),
        programs,
        _orm_plans(producer_id, programs),
        impact.month_figures(producer_id),
        _orm_timeline(producer_id),
        purchases,
        totals,
        impact.diagnostics(producer_id),
        consent_services.consents_of(producer_id),
        _orm_referrals(producer_id),
    )


def _orm_referrals(producer_id):
    query = select(Referral).where(Referral.producer_id == producer_id)
    return list(db.session.scalars(query.order_by(Referral.created_at.desc())))


def test_another_organizations_rows_never_appear(org, other_org, planned):
    with tenant_scope(org.id):
        ours = {p.id for p in page.programs()}
    with tenant_scope(other_org.id):
        for ident in (planned, 0, 2**31):
            with pytest.raises(NotFound):
                page.producer_page(ident)
        theirs = factories.make_program(other_org, name="Theirs")
        db.session.flush()
        assert [p.id for p in page.programs()] == [theirs.id]
        assert not ours & {p.id for p in page.programs()}
        assert page.page_reads(planned).plans == []
        assert page.page_reads(planned).events == []
        assert page.page_reads(planned).producer is None
    for read in (
        page.programs,
        lambda: page.page_reads(planned),
        lambda: page.producer_page(planned),
    ):
        with pytest.raises(TenantScopeError):
            read()


#: The plan's milestones as the template's loop printed them before the view built them
#: (``_milestone_items``): the page must stay byte for byte what it was.
JINJA_ITEMS = """\
{% for m in milestones %}{% set overdue = m.is_overdue(today) %}
          <li class="ms ms-{{ m.status }}{% if overdue %} overdue{% endif %}">
            <a href="{{ milestone_url }}{{ m.id }}">{{ m.name }}</a>
            <span class="badge ms-badge-{{ m.status }}">{{ milestone_label(m.status) }}</span>
            <small>{{ _('due %(date)s', date=m.due_date) }}{% if overdue %} · <strong>{{ _('overdue') }}</strong>{% endif %}{% if m.evidence_required %} · {{ _('evidence required') }}{% endif %}</small>
          </li>
        {% endfor %}"""  # noqa: E501


@pytest.mark.parametrize("language", ["en", "es", "pt"])
def test_the_milestone_items_are_what_the_template_printed(app, language):
    from flask_babel import force_locale

    from inclusive.producers.views import _milestone_items

    day = today()
    milestones = [
        page.PlanMilestone(7, MARKUP, status, day + timedelta(days=shift), evidence)
        for status in ("planned", "in_progress", "achieved", "verified", "missed", "<x&y>")
        for shift in (-3, 0, 5)
        for evidence in (True, False)
    ]
    plans = [page.Plan(1, 2, "active", "", None, False, 10, None, milestones)]
    plans.append(page.Plan(3, 2, "applied", "", None, False, 0, None, []))
    with app.test_request_context(), force_locale(language):
        template = app.jinja_env.from_string(JINJA_ITEMS)
        url = "/o/a&b/milestones/"
        items = _milestone_items(plans, day, url)
        printed = template.render(milestones=milestones, today=day, milestone_url=url)
        assert str(items[1]) == printed and items[3] == ""
        assert "overdue" in printed or language != "en"
        assert "&lt;b&gt;&#34;x&#34; &amp; y&#39;s&lt;/b&gt;" in printed and MARKUP not in printed
