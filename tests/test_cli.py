"""Operator commands: clear messages, non-zero exits on bad input, nothing half-written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.tenancy.models import Membership, Organization
from inclusive.tenancy.scope import ALL_TENANTS
from tests import factories


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def _count(model) -> int:
    return db.session.scalar(
        select(func.count()).select_from(model).execution_options(**ALL_TENANTS)
    )


@pytest.mark.parametrize(
    "command",
    [
        "create-org",
        "create-user",
        "create-partner",
        "link-partner",
        "demo-data",
        "worker",
        "cron",
        "jobs-sweep",
        "sweep-risk",
        "db upgrade",
    ],
)
def test_every_command_has_help(cli, command):
    result = cli.invoke(args=[*command.split(), "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_create_org(cli):
    result = cli.invoke(args=["create-org", "cusco", "--name", "Cusco Emprende"])
    assert result.exit_code == 0, result.output
    org = db.session.scalar(select(Organization).filter_by(slug="cusco"))
    assert org.name == "Cusco Emprende" and org.default_language == "es"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-org", "Bad Slug", "--name", "X"], "lowercase"),
        (["create-org", "ok-slug", "--name", "X", "--country", "PERU"], "two-letter"),
        (["create-org", "ok-slug", "--name", "X", "--currency", "S/"], "three-letter"),
        (["create-org", "ok-slug", "--name", "X", "--language", "fr"], "Invalid value"),
    ],
)
def test_create_org_refuses_bad_input(cli, args, message):
    before = _count(Organization)
    result = cli.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert _count(Organization) == before


def test_create_org_refuses_a_taken_slug(cli, org):
    result = cli.invoke(args=["create-org", org.slug, "--name", "Again"])
    assert result.exit_code != 0 and "already taken" in result.output


def test_create_user_then_add_them_to_another_org(cli, org, other_org):
    args = ["create-user", "ana@example.org", "--password", "mountain-river-song-77"]
    result = cli.invoke(args=[*args, "--org", org.slug, "--role", "admin"])
    assert result.exit_code == 0, result.output
    result = cli.invoke(
        args=["create-user", "ana@example.org", "--org", other_org.slug, "--role", "viewer"]
    )
    assert result.exit_code == 0, result.output
    assert "Updated ana@example.org" in result.output
    user = db.session.scalar(select(User).filter_by(email="ana@example.org"))
    roles = db.session.execute(
        select(Membership.org_id, Membership.role)
        .filter_by(user_id=user.id)
        .execution_options(**ALL_TENANTS)
    ).all()
    assert sorted(roles) == sorted([(org.id, "admin"), (other_org.id, "viewer")])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--org", "nowhere", "--role", "admin", "--password", "mountain-river-song-77"],
            "No organization",
        ),
        (
            ["--org", "acme", "--role", "boss", "--password", "mountain-river-song-77"],
            "Invalid value",
        ),
        (["--org", "acme", "--role", "admin"], "--password is required"),
        (["--org", "acme", "--role", "admin", "--password", "short"], "at least 10"),
        (["--org", "acme", "--role", "admin", "--password", "password1234"], "too common"),
    ],
)
def test_create_user_refuses_bad_input(cli, org, args, message):
    users, members = _count(User), _count(Membership)
    result = cli.invoke(args=["create-user", "new@example.org", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert (_count(User), _count(Membership)) == (users, members)


def test_demo_data_is_idempotent(cli):
    first = cli.invoke(args=["demo-data"])
    assert first.exit_code == 0, first.output
    assert "admin@andes.example" in first.output and "admin@sertao.example" in first.output
    counts = (_count(Organization), _count(User), _count(Membership))
    hashes = dict(db.session.execute(select(User.email, User.password_hash)).all())
    second = cli.invoke(args=["demo-data"])
    assert second.exit_code == 0
    assert (_count(Organization), _count(User), _count(Membership)) == counts
    assert dict(db.session.execute(select(User.email, User.password_hash)).all()) == hashes
    andes = db.session.scalar(select(Organization).filter_by(slug="andes"))
    sertao = db.session.scalar(select(Organization).filter_by(slug="sertao"))
    assert (andes.default_language, sertao.default_language) == ("es", "pt")
    roles = set(
        db.session.scalars(
            select(Membership.role).filter_by(org_id=andes.id).execution_options(**ALL_TENANTS)
        )
    )
    assert roles == {"admin", "program_manager", "field_officer", "viewer"}


def test_worker_needs_redis(cli):
    result = cli.invoke(args=["worker", "--burst"])
    assert result.exit_code != 0 and "REDIS_URL" in result.output


def test_factories_are_tenant_safe(org):
    assert factories.OrganizationFactory().id != org.id
