"""Property-based tests of the whole API against its own OpenAPI document (schemathesis).

Every operation is called with generated requests, valid ones (positive) and invalid ones
(negative), with a valid token and real referrals in every partner-visible stage, and each
answer is checked: no server error, a documented status, the documented content type and a
body that matches the documented schema. Runs in-process on the WSGI app.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
import schemathesis
from flask.globals import _cv_app
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inclusive.extensions import db
from inclusive.referrals import outbox, services, webhooks
from inclusive.referrals.models import Side
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.referrals.conftest import give_consent

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 15  # per operation and mode: the whole run stays well under 40 seconds


class Isolated:
    """The app as a WSGI callable whose requests get their own app context, as in production
    (pytest-flask keeps one pushed for the whole test; see tests/conftest.IsolatedClient)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        token = _cv_app.set(None)
        try:
            return self.app(environ, start_response)
        finally:
            _cv_app.reset(token)


@pytest.fixture
def referral_ids(sent, org, mfi, staff, draft, other_partner, endpoint) -> list[int]:
    """Referrals in several stages (ids resolve); a draft, another partner's, none (404).

    The MFI has a webhook endpoint too, so that its operations find one (until deleted).
    """
    ids = [sent.id]
    with tenant_scope(org.id):
        choices = services.partnership_choices()
        partnership = next(p for p in choices if p.partner_id == mfi.id)
        theirs = next(p for p in choices if p.partner_id == other_partner["partner"].id)
        stranger = factories.ProducerFactory(name="Someone else")
        give_consent(stranger, other_partner["partner"], staff["manager"], staff["officer"])
        other = services.create_referral(
            stranger, partnership_id=theirs.id, product="asset_loan", amount="500"
        )
        services.send(other, staff["manager"])
        other_referral = other.id
        for n, steps in enumerate(
            (
                ["acknowledge"],
                ["acknowledge", "start_review"],
                ["acknowledge", "start_review", "approve"],
            )
        ):
            producer = factories.ProducerFactory(name=f"Producer {n}")
            give_consent(producer, mfi, staff["manager"], staff["officer"])
            referral = services.create_referral(
                producer, partnership_id=partnership.id, product="asset_loan", amount="700"
            )
            services.send(referral, staff["manager"])
            for step in steps:
                services.apply(referral, step, Side.PARTNER, None)
            ids.append(referral.id)
        db.session.flush()
    return [*ids, draft.id, other_referral, 2**31 - 1]


def test_the_api_conforms_to_its_openapi_document(app, client, auth, referral_ids, monkeypatch):
    # Webhook addresses are judged without DNS: every name resolves to a public address.
    monkeypatch.setattr(
        webhooks, "_resolve", lambda host, port: [ipaddress.ip_address("93.184.216.34")]
    )
    # Deliveries (e-mail, webhook) are the outbox's business, tested there: none leave here.
    monkeypatch.setattr(outbox, "run_delivery", lambda job_id: None)
    document = client.get("/api/v1/openapi.json").get_json()
    for path in document["paths"].values():
        for parameter in path.get("parameters", []):
            if parameter["name"] == "referral_id":
                parameter["schema"] = {"type": "integer", "enum": referral_ids}
    schema = schemathesis.openapi.from_dict(document)
    schema.app = Isolated(app)
    schema.location = "/api/v1/openapi.json"

    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {
        (m.upper(), p)
        for p, item in document["paths"].items()
        for m in item
        if m in ("get", "put", "post", "delete", "patch")
    }
    assert {(op.method.upper(), op.path) for op in operations} == documented
    assert len(operations) == 11

    calls = {"examples": 0, "statuses": {}}
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call(headers=auth)
                case.validate_response(response, checks=CHECKS, headers=auth)
                calls["examples"] += 1
                key = f"{case.method} {case.path} {response.status_code}"
                calls["statuses"][key] = calls["statuses"].get(key, 0) + 1

            t0 = time.monotonic()
            check()
            print(
                f"  {operation.method} {operation.path} {mode.value}: {time.monotonic() - t0:.2f}s"
            )
    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {len(operations)} operations, {calls['examples']} examples, "
        f"0 failures, {elapsed:.1f} s"
    )
    for key in sorted(calls["statuses"]):
        print(f"  {key}: {calls['statuses'][key]}")
    assert calls["examples"] >= len(operations) * 2
    # The generated requests reached the referrals, not only 401/404/422.
    statuses = calls["statuses"]
    assert any(k.startswith("GET /api/v1/referrals/{referral_id} 200") for k in statuses)
    assert any(
        k.startswith("POST /api/v1/referrals/{referral_id}/transitions 200")
        or k.startswith("POST /api/v1/referrals/{referral_id}/transitions 409")
        for k in statuses
    )
