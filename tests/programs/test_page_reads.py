"""The program page's reads (cohort, at risk, officers, counts, officers to assign): Core
statements of explicit columns, the organization bound by the tenant scope, the same rows
and page as the ORM's."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import and_, event, select, update
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import NotFound

from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones.models import Enrollment, EnrollmentState
from inclusive.producers.models import Producer
from inclusive.programs import page as program_page
from inclusive.programs import views
from inclusive.programs.models import Program, ProgramOfficer
from inclusive.tenancy.models import Membership
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import TenantScopeError, tenant_scope
from inclusive.tenancy.web import load_or_404
from tests import factories
from tests.programs.support import assign, done, enroll, new_producer, new_program

MARKUP = '<b>"x" & y\'s</b>'


def _orm_base(program_id: int):
    return (
        select(
            Enrollment.id,
            Enrollment.producer_id,
            Enrollment.state,
            Enrollment.progress,
            Enrollment.at_risk,
            Producer.name,
        )
        .outerjoin(
            Producer,
            and_(Producer.id == Enrollment.producer_id, Producer.org_id == Enrollment.org_id),
        )
        .where(Enrollment.program_id == program_id)
        .order_by(Enrollment.id)
    )


def _orm_program(program_id):
    """The page's former load: the program and its steps, an ORM entity."""
    return load_or_404(Program, program_id, options=[joinedload(Program.steps)])


def _orm_cohort(program_id, offset, limit, state=None):
    query = _orm_base(program_id).offset(offset).limit(limit)
    if state is not None:
        query = query.where(Enrollment.state == state)
    return [program_page.CohortRow(*row) for row in db.session.execute(query)]


def _orm_at_risk(program_id):
    query = _orm_base(program_id).where(Enrollment.at_risk.is_(True)).limit(20)
    return [program_page.CohortRow(*row) for row in db.session.execute(query)]


def _orm_officers(program_id):
    query = select(ProgramOfficer).filter_by(program_id=program_id).order_by(ProgramOfficer.id)
    return list(db.session.scalars(query))


def _orm_field_officers():
    from inclusive.auth.models import User

    query = (
        select(Membership.user_id, User.name)
        .join(User, User.id == Membership.user_id)
        .where(Membership.role == Role.FIELD_OFFICER)
        .order_by(Membership.id)
    )
    return [tuple(row) for row in db.session.execute(query)]


@pytest.fixture
def cohort(org, make_member):
    """A program of seven producers (markup in their names; some at risk, one applied, one
    withdrawn), two officers assigned and a third who is not."""
    officers = [make_member("field_officer", name=f"Officer {n} {MARKUP}") for n in range(3)]
    program = new_program(
        org,
        name=f"Suppliers {MARKUP}",
        description=f"About {MARKUP}",
        counterpart_name=f"Buyer {MARKUP}",
        counterpart_contact=f"Ana {MARKUP}",
        counterpart_email="buyer@example.org",
        region=f"Puno {MARKUP}",
    )
    for officer in officers[:2]:
        assign(program, officer)
    producers = [new_producer(org.id, name=f"P{n} {MARKUP}") for n in range(7)]
    enroll(program, producers[:5])
    with tenant_scope(org.id):
        plans.enroll(program, [producers[5].id], state=EnrollmentState.APPLIED)
        [gone], _ = plans.enroll(program, [producers[6].id])
        plans.transition(gone, EnrollmentState.WITHDRAWN, "Moved")
        ids = [p.id for p in producers[1:4]]
        db.session.execute(
            update(Enrollment).where(Enrollment.producer_id.in_(ids)).values(at_risk=True)
        )
        done()
    return program.id


def test_the_rows_are_the_orms(org, cohort):
    with tenant_scope(org.id):
        shown, program = program_page.program_or_404(cohort), _orm_program(cohort)
        fields = program_page.ShownProgram._fields[:-1]
        assert shown[:-1] == tuple(getattr(program, f) for f in fields)
        assert len(shown.steps) == len(program.steps) > 3
        assert shown.steps == [
            tuple(getattr(s, f) for f in program_page.ShownStep._fields) for s in program.steps
        ]
        for offset, limit, state in [(0, 51, None), (2, 3, None), (0, 51, "enrolled")]:
            assert program_page.panels(cohort, offset, limit, state).cohort == _orm_cohort(
                cohort, offset, limit, state
            )
        # The state is written into the SQL: only a known one is taken (the view passes None
        # for any other).
        for unknown in ("x", "enrolled' OR '1'='1"):
            with pytest.raises(ValueError, match="Not an enrollment state"):
                program_page.panels(cohort, 0, 5, unknown)
        panels = program_page.panels(cohort, 0, 51)
        assert len(panels.cohort) == 7
        assert panels.at_risk == _orm_at_risk(cohort)
        assert len(panels.at_risk) == 3
        officers = program_page.officers(cohort)
        assert [(o.user_id, o.user.name) for o in officers] == [
            (o.user_id, o.user.name) for o in _orm_officers(cohort)
        ]
        assert len(officers) == 2
        assert panels.officers == officers and panels.field_officers == _orm_field_officers()
        assert panels.state_counts == plans.state_counts(cohort)
        assert program_page.field_officers() == _orm_field_officers()
        assert len(program_page.field_officers()) == 3


def _orm_panels(program_id, offset, limit, state=None) -> program_page.Panels:
    """The program page's panels from the ORM's rows, read one by one."""
    return program_page.Panels(
        _orm_cohort(program_id, offset, limit, state),
        _orm_at_risk(program_id),
        _orm_officers(program_id),
        plans.state_counts(program_id),
        _orm_field_officers(),
    )


def _csrf_free(html: str) -> str:
    """The page without its CSRF tokens (signed with the time: they change each second)."""
    return re.sub(r'value="[\w-]+\.[\w-]+\.[\w-]+"', 'value="csrf"', html)


@pytest.mark.parametrize("locale", ["en", "es"])
@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_the_page_is_printed_as_with_the_orms_rows(
    client, login_as, monkeypatch, org, cohort, locale, role
):
    login_as(role, locale=locale)
    monkeypatch.setattr(views, "COHORT_PAGE", 3)
    urls = [f"/o/acme/programs/{cohort}{query}" for query in ("", "?page=2", "?state=enrolled")]
    pages = [client.get(url).get_data(as_text=True) for url in urls]
    assert pages[0].count("&lt;b&gt;&#34;x&#34; &amp; y&#39;s&lt;/b&gt;") >= 6
    assert all(MARKUP not in page for page in pages)
    monkeypatch.setattr(program_page, "program_or_404", _orm_program)
    monkeypatch.setattr(program_page, "panels", _orm_panels)
    for url, page in zip(urls, pages, strict=True):
        assert _csrf_free(client.get(url).get_data(as_text=True)) == _csrf_free(page), url


def test_another_organizations_rows_never_appear(org, other_org, cohort):
    with tenant_scope(other_org.id):
        for ident in (cohort, 0, 2**31):
            with pytest.raises(NotFound):
                program_page.program_or_404(ident)
        program = factories.make_program(other_org, name="Theirs")
        db.session.flush()
        factories.MembershipFactory(organization=other_org, role="field_officer")
        db.session.flush()
        theirs = program_page.panels(cohort, 0, 51)
        assert theirs.cohort == theirs.at_risk == []
        assert program_page.officers(cohort) == [] and theirs.state_counts == {}
        assert program_page.panels(program.id, 0, 51).cohort == []
        assert len(program_page.field_officers()) == 1
    with tenant_scope(org.id):
        assert len(program_page.field_officers()) == 3
    with pytest.raises(TenantScopeError):
        program_page.panels(cohort, 0, 51)
    with pytest.raises(TenantScopeError):
        program_page.field_officers()
    with pytest.raises(TenantScopeError):
        program_page.program_or_404(cohort)


#: The cohort's rows as the template's loop printed them before the view built them
#: (``_cohort_rows``), the row's words looked up by the view as it did then.
JINJA_ROWS = """\
{%- set t_producer, t_state, t_progress, t_risk = _('Producer'), _('State'), _('Progress'), _('at risk') %}
      {% for e in cohort %}
        <tr{% if e.at_risk %} class="risk"{% endif %}>
          {% if may_record %}<td><input type="checkbox" name="enrollment_ids" value="{{ e.id }}" id="e{{ e.id }}" aria-label="{{ e.select_label }}"></td>{% endif %}
          <td data-label="{{ t_producer }}"><a href="{{ show_url }}{{ e.producer_id }}">{{ e.producer_name }}</a>{% if e.at_risk %} <span class="badge risk">{{ t_risk }}</span>{% endif %}</td>
          <td data-label="{{ t_state }}">{{ e.state_label }}</td>
          <td data-label="{{ t_progress }}"><progress max="100" value="{{ e.progress }}" aria-label="{{ t_progress }}">{{ e.progress }}%</progress> {{ e.progress }}%</td>
        </tr>
      {% endfor %}"""  # noqa: E501


@pytest.mark.parametrize("may_record", [True, False])
@pytest.mark.parametrize("language", ["en", "es", "pt"])
def test_the_cohort_rows_are_what_the_template_printed(app, may_record, language):
    from types import SimpleNamespace

    from flask_babel import force_locale
    from flask_babel import gettext as _
    from markupsafe import Markup

    from inclusive.presentation import state_label

    rows = [
        program_page.CohortRow(n, 100 + n, state, 7 * n, n % 2 == 0, name)
        for n, (state, name) in enumerate(
            [(s.value, MARKUP) for s in EnrollmentState] + [("<odd&>", "Plain"), ("active", "")]
        )
    ]
    with app.test_request_context(), force_locale(language):
        select_label = Markup(_("Select %(name)s"))
        former = [
            SimpleNamespace(
                **{f: getattr(r, f) for f in ("id", "producer_id", "progress", "at_risk")},
                producer_name=r.producer_name,
                state_label=state_label(r.state),
                select_label=select_label % {"name": r.producer_name},
            )
            for r in rows
        ]
        template = app.jinja_env.from_string(JINJA_ROWS)
        context = {"cohort": former, "may_record": may_record, "show_url": "/o/a&b/p/"}
        printed = template.render(context)
        assert "\n      " + str(views._cohort_rows(rows, "/o/a&b/p/", may_record)) == printed
        assert "&lt;b&gt;&#34;x&#34; &amp; y&#39;s&lt;/b&gt;" in printed and MARKUP not in printed


@pytest.mark.parametrize("state", [None, "enrolled"])
def test_the_panels_keys_are_written_into_the_sql(org, cohort, state):
    # No parameter is left for PostgreSQL to plan again at each execution: the organization,
    # the program, the state and the bounds are in the statement's text.
    sent = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        with tenant_scope(org.id):
            panels = program_page.panels(cohort, 0, 51, state)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert panels.cohort and sent
    if engine.dialect.name == "postgresql":  # (SQLite's LIMIT comes with a bound OFFSET)
        for statement, parameters in sent:
            assert not parameters, statement
    text = " ".join(statement for statement, _ in sent)
    assert f"org_id = {org.id}" in text and f"program_id = {cohort}" in text
    assert state is None or f"state = '{state}'" in text
