"""The OpenAPI document: valid OpenAPI 3, every API route in it, bearer auth, problem errors."""

from __future__ import annotations

import jsonschema_rs
from schemathesis.specs.openapi.definitions import OPENAPI_30

from inclusive.api.problems import API_PREFIX


def _document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_the_document_is_valid_openapi_3(client):
    document = _document(client)
    assert document["openapi"].startswith("3.0")
    errors = [str(e) for e in jsonschema_rs.validator_for(OPENAPI_30).iter_errors(document)]
    assert errors == []


def test_it_lists_every_route_of_the_api(app, client):
    document = _document(client)
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = rule.rule.replace("<int:", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routed.add((method, path))
    assert routed == documented
    assert all(path.startswith(API_PREFIX + "/") for _m, path in documented)
    assert len(documented) == 11


def test_bearer_auth_is_the_security_of_every_operation(client):
    document = _document(client)
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearerAuth": []}]


def test_every_operation_documents_its_errors_as_problems(client):
    document = _document(client)
    responses = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            codes = set(operation["responses"])
            assert {"401", "429"} <= codes, (method, path)
            if "{referral_id}" in path:
                assert "404" in codes, (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= codes, (method, path)
            for code in codes - {"200", "201", "204"}:
                ref = operation["responses"][code]["$ref"].rsplit("/", 1)[1]
                assert list(responses[ref]["content"]) == ["application/problem+json"]
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


def test_pagination_is_documented(client):
    document = _document(client)
    operation = document["paths"]["/api/v1/referrals"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"page", "per_page", "state", "organization", "product"} <= names
    per_page = next(p for p in operation["parameters"] if p["name"] == "per_page")
    assert per_page["schema"]["maximum"] == 100
    assert "Link" in operation["responses"]["200"]["headers"]
