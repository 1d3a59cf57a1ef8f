"""create-partner, link-partner and create-user --partner: bad input writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.partners.models import CapitalPartner, PartnerMembership, Partnership
from inclusive.tenancy.models import Membership
from inclusive.tenancy.scope import ALL_TENANTS

PASSWORD = "mountain-river-song-77"


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def _count(model) -> int:
    return db.session.scalar(
        select(func.count()).select_from(model).execution_options(**ALL_TENANTS)
    )


def _counts() -> tuple[int, ...]:
    return tuple(_count(m) for m in (CapitalPartner, PartnerMembership, Partnership, User))


def test_create_partner_link_it_and_add_its_users(cli, org):
    result = cli.invoke(
        args=[
            *("create-partner", "andina", "--name", "Microfinanciera Andina"),
            *("--kind", "mfi", "--country", "pe"),
        ]
    )
    assert result.exit_code == 0, result.output
    partner = db.session.scalar(select(CapitalPartner).filter_by(slug="andina"))
    assert (partner.name, partner.kind, partner.country) == ("Microfinanciera Andina", "mfi", "PE")

    result = cli.invoke(args=["link-partner", "--org", org.slug, "--partner", "andina"])
    assert result.exit_code == 0 and "now partners" in result.output
    result = cli.invoke(args=["link-partner", "--org", org.slug, "--partner", "andina"])
    assert result.exit_code == 0 and "nothing changed" in result.output
    states = db.session.scalars(
        select(Partnership.state).filter_by(partner_id=partner.id).execution_options(**ALL_TENANTS)
    ).all()
    assert states == ["active"]

    args = ["create-user", "rosa@andina.example", "--password", PASSWORD, "--partner", "andina"]
    result = cli.invoke(args=[*args, "--role", "partner_admin"])
    assert result.exit_code == 0, result.output
    assert "Created rosa@andina.example: partner_admin of andina" in result.output
    result = cli.invoke(
        args=["create-user", "rosa@andina.example", "--partner", "andina", "--role", "loan_officer"]
    )
    assert result.exit_code == 0 and "Updated" in result.output
    membership = db.session.scalars(select(PartnerMembership)).one()
    assert (membership.user.email, membership.role) == ("rosa@andina.example", "loan_officer")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-partner", "Bad Slug", "--name", "X", "--kind", "mfi"], "lowercase"),
        (["create-partner", "ok", "--name", "X", "--kind", "bank"], "Invalid value"),
        (
            ["create-partner", "ok", "--name", "X", "--kind", "mfi", "--country", "PER"],
            "two-letter",
        ),
        (["create-partner", "ok", "--name", " ", "--kind", "mfi"], "name"),
        (["create-partner", "andina", "--name", "Again", "--kind", "mfi"], "already taken"),
        (["link-partner", "--org", "nowhere", "--partner", "andina"], "No organization"),
        (["link-partner", "--org", "acme", "--partner", "nowhere"], "No capital partner"),
        (["link-partner", "--org", "acme"], "Missing option"),
    ],
)
def test_partner_commands_refuse_bad_input(cli, org, mfi, args, message):
    db.session.commit()  # the fixtures stay when the command rolls back
    before = _counts()
    result = cli.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert _counts() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partner", "andina", "--org", "acme", "--role", "loan_officer"], "exactly one"),
        (["--role", "loan_officer"], "exactly one"),
        (["--partner", "nowhere", "--role", "loan_officer"], "No capital partner"),
        (["--partner", "andina", "--role", "admin"], "staff role"),
        (["--org", "acme", "--role", "loan_officer"], "partner role"),
        (["--partner", "andina", "--role", "boss"], "Invalid value"),
        (["--partner", "andina", "--role", "loan_officer", "--password", ""], "--password"),
        (["--partner", "andina", "--role", "loan_officer", "--password", "short"], "at least 10"),
    ],
)
def test_create_user_refuses_bad_partner_input(cli, org, mfi, args, message):
    db.session.commit()  # the fixtures stay when the command rolls back
    before = (*_counts(), _count(Membership))
    result = cli.invoke(args=["create-user", "new@example.org", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert (*_counts(), _count(Membership)) == before
