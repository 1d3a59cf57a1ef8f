"""The demo data: realistic, idempotent, and its counters agree with the rows."""

from __future__ import annotations

from sqlalchemy import select

from inclusive.demo import load_demo_data
from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones.models import Enrollment, EnrollmentState
from inclusive.milestones.stats import recount
from inclusive.producers.models import Producer
from inclusive.programs.models import Program
from inclusive.tenancy.models import Organization
from inclusive.tenancy.scope import tenant_scope


def test_demo_data(client, login):
    """One load (it takes seconds), then every check of it."""
    list(load_demo_data())
    demo = {o.slug: o for o in db.session.scalars(select(Organization))}
    _every_demo_organization_has_a_real_workspace(demo)
    _counters_agree_with_the_rows(demo)
    _demo_pages_render_for_the_demo_manager(client, login, demo)


def _every_demo_organization_has_a_real_workspace(demo):
    for slug in ("andes", "sertao"):
        with tenant_scope(demo[slug].id):
            programs = list(db.session.scalars(select(Program)))
            assert len({p.kind for p in programs}) >= 4
            assert len(db.session.scalars(select(Producer)).all()) >= 150
            states = set(db.session.scalars(select(Enrollment.state)))
            assert {EnrollmentState.ACTIVE, EnrollmentState.WITHDRAWN} <= states
            assert db.session.scalars(select(Enrollment).filter_by(at_risk=True)).first()


def _counters_agree_with_the_rows(demo):
    for org in demo.values():
        with tenant_scope(org.id):
            for program in db.session.scalars(select(Program)):
                kept = (plans.state_counts(program.id), plans.completion_by_step(program.id))
                recount(program.id)
                assert (
                    plans.state_counts(program.id),
                    plans.completion_by_step(program.id),
                ) == kept, program.name


def _demo_pages_render_for_the_demo_manager(client, login, demo):
    from inclusive.auth.models import User

    manager = db.session.scalar(select(User).filter_by(email="manager@andes.example"))
    login(manager)
    with tenant_scope(demo["andes"].id):
        program = db.session.scalars(select(Program)).first()
        producer = db.session.scalars(select(Enrollment)).first().producer_id
    for path in (
        "/o/andes/",
        "/o/andes/programs/",
        f"/o/andes/programs/{program.id}",
        "/o/andes/producers/",
        f"/o/andes/producers/{producer}",
        "/o/andes/producers/?at_risk=y",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
