"""Fixtures of the API tests: the referral world of tests/referrals, sent, and API tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from inclusive.extensions import db
from inclusive.partners.services import create_partner, link_partner
from inclusive.referrals import endpoints, services
from inclusive.referrals.models import Referral
from inclusive.tenancy.scope import tenant_scope
from tests.referrals import conftest as referral_fixtures

# The referral tests' fixtures, shared: an MFI partnered with ``org``, its users, a
# consenting producer, a draft referral and a webhook endpoint.
consent = referral_fixtures.consent
draft = referral_fixtures.draft
endpoint = referral_fixtures.endpoint
mfi = referral_fixtures.mfi
partner_users = referral_fixtures.partner_users
producer = referral_fixtures.producer
staff = referral_fixtures.staff


@pytest.fixture
def token(mfi, partner_users) -> str:
    """An API token of the MFI (the plain token, as a client holds it)."""
    _row, plain = endpoints.create_token(mfi, "Core banking", partner_users["admin"])
    db.session.flush()
    return plain


@pytest.fixture
def auth(token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def sent(draft, org, staff) -> Referral:
    """The draft referral, sent to the MFI."""
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
        db.session.flush()
    return draft


@pytest.fixture
def other_partner(org):
    """Another partner, partnered with the same organization, with its own token."""
    partner = create_partner(slug="fondo", name="Fondo Local", kind="local_fund")
    link_partner(org, partner)
    _row, plain = endpoints.create_token(partner, "Fund system", None)
    db.session.flush()
    return {"partner": partner, "auth": {"Authorization": f"Bearer {plain}"}}


@pytest.fixture
def api(client, auth) -> Callable[..., Any]:
    """Call the API as the MFI: ``api("get", "/referrals")``; JSON bodies with ``json=``."""

    def call(method: str, path: str, **kwargs: Any) -> Any:
        headers = {**auth, **kwargs.pop("headers", {})}
        return client.open("/api/v1" + path, method=method.upper(), headers=headers, **kwargs)

    return call


def assert_problem(response, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is a problem+json of the API's one shape, with this status."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json", response.mimetype
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert set(body) <= {"type", "title", "status", "detail", "errors"}, body
    assert body["status"] == status
    assert body["type"].startswith("urn:inclusive:problem:")
    assert body["title"] and body["detail"]
    if field is not None:
        assert field in body.get("errors", {}), body
        assert all(isinstance(m, str) for m in body["errors"][field])
    return body
