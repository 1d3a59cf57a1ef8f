"""Fixtures of the partner tests: partners, their users, and logins on either side."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from inclusive.auth.models import User
from inclusive.partners.models import CapitalPartner, PartnerRole, Product
from inclusive.partners.services import add_partner_user, create_partner
from tests import factories


@pytest.fixture
def mfi() -> CapitalPartner:
    return create_partner(
        slug="andina",
        name="Microfinanciera Andina",
        kind="mfi",
        country="PE",
        regions=["Cusco", "Puno"],
        products=[Product.WORKING_CAPITAL_LOAN, Product.ASSET_LOAN],
        ticket_min=50_000,
        ticket_max=3_000_000,
        ticket_currency="PEN",
    )


@pytest.fixture
def fund() -> CapitalPartner:
    return create_partner(
        slug="fundo-sertao", name="Fundo do Sertão", kind="local_fund", country="BR"
    )


@pytest.fixture
def make_partner_user() -> Callable[..., User]:
    """Create a user with a role at a partner: ``make_partner_user(mfi, "loan_officer")``."""

    def make(partner: CapitalPartner, role: str = "partner_admin", **user: object) -> User:
        person = factories.UserFactory(**user)
        add_partner_user(partner, person, PartnerRole(role))
        return person

    return make
