"""Fixtures for enrollments and milestone plans."""

from __future__ import annotations

import pytest

from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones.models import Enrollment, EnrollmentState
from inclusive.tenancy.scope import tenant_scope
from tests.programs.support import detach, done, new_producer, new_program

S = EnrollmentState


def put_in_state(org_id: int, program, state: EnrollmentState, name: str = "Rosa") -> int:
    """An enrollment brought to ``state`` by the real transitions; returns its id."""
    producer = new_producer(org_id, name=name)
    with tenant_scope(org_id):
        start = S.APPLIED if state in (S.APPLIED, S.WAITLISTED) else S.ENROLLED
        [enrollment], _ = plans.enroll(program, [producer.id], state=start)
        if state == S.WAITLISTED:
            plans.transition(enrollment, S.WAITLISTED)
        if state in (S.ACTIVE, S.PAUSED, S.GRADUATED):
            plans.transition(enrollment, S.ACTIVE)
        if state == S.PAUSED:
            plans.transition(enrollment, S.PAUSED, "Harvest season")
        if state == S.GRADUATED:
            for milestone in enrollment.milestones:
                plans.waive(milestone, "Done elsewhere")
            plans.transition(enrollment, S.GRADUATED)
        if state == S.WITHDRAWN:
            plans.transition(enrollment, S.WITHDRAWN, "Moved away")
        assert enrollment.state == state
        done()
        return enrollment.id


@pytest.fixture
def program(org):
    return new_program(org)


@pytest.fixture
def in_state(org, program):
    """Make an enrollment of ``program`` in a state: ``in_state(S.ACTIVE)`` -> id."""
    names = iter(range(1000))

    def make(state: EnrollmentState) -> int:
        return put_in_state(org.id, program, state, name=f"Producer {next(names)}")

    return make


def load(org_id: int, enrollment_id: int) -> Enrollment:
    detach()
    with tenant_scope(org_id):
        enrollment = db.session.get(Enrollment, enrollment_id)
        enrollment.milestones  # noqa: B018 - loaded while the scope is open
        return enrollment
