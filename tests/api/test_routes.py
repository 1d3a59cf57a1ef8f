"""Every API route of the route matrix: 401 without a token, through with the partner's."""

from __future__ import annotations

import pytest
from flask import url_for

from tests.api.conftest import assert_problem
from tests.api.routes import API_ROUTES

API_ENDPOINTS = sorted(name for name, rule in API_ROUTES.items() if rule.audience == "api")


def _call(client, endpoint: str, referral_id: int, headers: dict[str, str]):
    rule = API_ROUTES[endpoint]
    url = url_for(endpoint, **rule.args({"referral_id": referral_id}))
    body = {"json": {}} if rule.method in ("POST", "PUT") else {}
    return client.open(url, method=rule.method, headers=headers, **body)


@pytest.mark.parametrize("endpoint", API_ENDPOINTS)
def test_api_route_guards(endpoint, client, sent, auth, other_partner, login, partner_users):
    assert_problem(_call(client, endpoint, sent.id, {}), 401)
    assert_problem(_call(client, endpoint, sent.id, {"Authorization": "Bearer nope"}), 401)
    status = _call(client, endpoint, sent.id, auth).status_code
    assert status not in (401, 403) and status < 500, f"{endpoint}: {status}"
    if "referral_id" in str(API_ROUTES[endpoint].args({"referral_id": 1})):
        other = _call(client, endpoint, sent.id, other_partner["auth"])
        assert_problem(other, 404)


def test_the_openapi_document_is_public(client):
    assert client.get("/api/v1/openapi.json").status_code == 200
