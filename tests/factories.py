"""factory_boy factories; tenant rows take an organization sub-factory."""

from __future__ import annotations

import functools

import factory
from factory.alchemy import SQLAlchemyModelFactory

from inclusive.auth.models import User
from inclusive.auth.passwords import hash_password
from inclusive.extensions import db
from inclusive.milestones.models import Enrollment
from inclusive.producers.models import Producer
from inclusive.programs.models import Program, ProgramKind
from inclusive.tenancy.models import Invitation, Membership, Organization

#: The password every factory user has.
PASSWORD = "correct horse battery staple"


@functools.cache
def _password_hash() -> str:
    # Hash once per test run: argon2id is slow on purpose.
    return hash_password(PASSWORD)


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class OrganizationFactory(BaseFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.Sequence(lambda n: f"Organization {n}")
    country = "PE"
    default_language = "es"
    currency = "PEN"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    name = factory.Sequence(lambda n: f"User {n}")
    password_hash = factory.LazyFunction(_password_hash)
    locale = None


class MembershipFactory(BaseFactory):
    """Create inside ``tenant_scope(organization.id)``."""

    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    org_id = factory.SelfAttribute("organization.id")
    user = factory.SubFactory(UserFactory)
    role = "viewer"


class InvitationFactory(BaseFactory):
    """Create inside ``tenant_scope(organization.id)``."""

    class Meta:
        model = Invitation

    organization = factory.SubFactory(OrganizationFactory)
    org_id = factory.SelfAttribute("organization.id")
    email = factory.Sequence(lambda n: f"invitee{n}@example.org")
    role = "field_officer"
    language = "en"


class ProducerFactory(BaseFactory):
    """Create inside ``tenant_scope(organization.id)``."""

    class Meta:
        model = Producer

    kind = "individual"
    name = factory.Sequence(lambda n: f"Producer {n}")
    name_key = factory.LazyAttribute(lambda o: o.name.lower())
    national_id = factory.Sequence(lambda n: f"ID{n:08d}")
    phone = factory.Sequence(lambda n: f"+519{n:08d}")
    region = "Cusco"
    municipality = "Urubamba"


def make_program(org: Organization, kind: str = "supplier_program", **fields) -> Program:
    """A program with its default template (inside the organization's scope)."""
    from inclusive.programs.services import create_program

    fields.setdefault("name", "Quinoa suppliers")
    return create_program(org, ProgramKind(kind), **fields)


def make_enrollment(program: Program, producer: Producer, on=None) -> Enrollment:
    """An enrollment with its milestone plan (inside the organization's scope)."""
    from inclusive.milestones.services import enroll

    created, _skipped = enroll(program, [producer.id], on=on)
    return created[0]
