"""Demo data: two organizations with a user for every role (idempotent)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from inclusive.auth.models import User
from inclusive.auth.passwords import hash_password
from inclusive.consents.demo import load_consents
from inclusive.extensions import db
from inclusive.partners.demo import load_partners
from inclusive.referrals.demo import load_referrals
from inclusive.tenancy.demo import demo_staff
from inclusive.tenancy.models import Membership, Organization
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import tenant_scope

DEMO_PASSWORD = "andes-sertao-demo-2026"  # noqa: S105 - public demo logins, printed on purpose

ORGANIZATIONS = [
    {
        "slug": "andes",
        "name": "Andes Emprende: desarrolladora de emprendimientos inclusivos",
        "country": "PE",
        "default_language": "es",
        "currency": "PEN",
        "people": [
            ("admin", "Rosa Quispe Mamani", Role.ADMIN),
            ("manager", "Julián Condori", Role.PROGRAM_MANAGER),
            ("officer", "Lucía Huamán", Role.FIELD_OFFICER),
            ("viewer", "Martín Flores", Role.VIEWER),
        ],
    },
    {
        "slug": "sertao",
        "name": "Sertão Inclusivo: desenvolvimento de empreendimentos",
        "country": "BR",
        "default_language": "pt",
        "currency": "BRL",
        "people": [
            ("admin", "Maria das Dores Silva", Role.ADMIN),
            ("manager", "João Batista Nogueira", Role.PROGRAM_MANAGER),
            ("officer", "Francisca Alves", Role.FIELD_OFFICER),
            ("viewer", "Antônio Pereira", Role.VIEWER),
        ],
    },
]

# Belongs to both organizations, to show the organization switcher.
COORDINATOR = ("coordinator@demo.example", "Elena Ríos", Role.PROGRAM_MANAGER)


def _user(email: str, name: str, locale: str, password_hash: str) -> User:
    user = db.session.scalar(select(User).filter_by(email=email))
    if user is None:
        user = User(email=email, name=name, locale=locale, password_hash=password_hash)
        db.session.add(user)
        db.session.flush()
    return user


def _member(org: Organization, user: User, role: Role) -> None:
    with tenant_scope(org.id):
        if db.session.scalar(select(Membership).filter_by(user_id=user.id)) is None:
            db.session.add(Membership(user_id=user.id, role=role))
            db.session.flush()


def load_demo_data() -> Iterator[str]:
    """Create what is missing of the demo data and yield the logins to print."""
    password_hash = hash_password(DEMO_PASSWORD)
    logins: list[tuple[str, str, str]] = []
    for spec in ORGANIZATIONS:
        org = db.session.scalar(select(Organization).filter_by(slug=spec["slug"]))
        if org is None:
            fields = {k: v for k, v in spec.items() if k != "people"}
            org = Organization(**fields)
            db.session.add(org)
            db.session.flush()
        for local, name, role in spec["people"]:
            email = f"{local}@{spec['slug']}.example"
            _member(org, _user(email, name, spec["default_language"], password_hash), role)
            logins.append((email, spec["slug"], role.value))
        email, name, role = COORDINATOR
        _member(org, _user(email, name, "es", password_hash), role)
    logins.append((COORDINATOR[0], "andes + sertao", COORDINATOR[2].value))
    db.session.flush()
    from inclusive.demo_workspace import load_workspace

    for spec in ORGANIZATIONS:
        org, manager, officer = demo_staff(spec["slug"])
        with tenant_scope(org.id):
            load_workspace(org, officer, manager)
    logins.extend(load_partners(password_hash))
    load_consents()
    load_referrals()
    db.session.commit()
    yield f"Demo logins (password for all: {DEMO_PASSWORD}):"
    for email, org_slug, role in logins:
        yield f"  {email:<28} {org_slug:<16} {role}"
