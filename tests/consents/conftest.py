"""Fixtures of the consent tests: an organization partnered with an MFI, a producer, staff."""

from __future__ import annotations

from typing import Any

import pytest

from inclusive.partners.models import CapitalPartner
from inclusive.partners.services import create_partner, link_partner
from inclusive.producers.models import Producer
from inclusive.tenancy.scope import tenant_scope
from tests import factories

PDF = b"%PDF-1.4\n% a signed consent\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


@pytest.fixture
def mfi(org) -> CapitalPartner:
    partner = create_partner(slug="andina", name="Microfinanciera Andina", kind="mfi")
    link_partner(org, partner)
    return partner


@pytest.fixture
def stranger_partner() -> CapitalPartner:
    """A partner the organization has no partnership with."""
    return create_partner(slug="lejana", name="Financiera Lejana", kind="mfi")


@pytest.fixture
def producer(org) -> Producer:
    with tenant_scope(org.id):
        return factories.ProducerFactory(name="Ana Quispe")


@pytest.fixture
def scope(org):
    with tenant_scope(org.id):
        yield


@pytest.fixture
def staff(make_member) -> dict[str, Any]:
    return {
        "manager": make_member("program_manager", name="Julia Manager"),
        "officer": make_member("field_officer", name="Oscar Officer"),
    }
