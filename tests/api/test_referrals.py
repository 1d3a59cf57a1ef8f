"""Reading and answering referrals through the API, and its errors, all as problem+json."""

from __future__ import annotations

from datetime import timedelta

import pytest

from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.referrals import services
from inclusive.referrals.models import ReferralState, Side
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.api.conftest import assert_problem
from tests.referrals.conftest import give_consent


def state_of(referral) -> str:
    """The referral's state as the database has it now (the API wrote it in its session)."""
    with tenant_scope(referral.org_id):
        db.session.refresh(referral)
    return referral.state


def _more_referrals(org, mfi, staff, count: int, product: str = "asset_loan") -> list[int]:
    ids = []
    with tenant_scope(org.id):
        partnership = services.partnership_choices()[0]
        for n in range(count):
            producer = factories.ProducerFactory(name=f"Producer {n}")
            give_consent(producer, mfi, staff["manager"], staff["officer"])
            referral = services.create_referral(
                producer, partnership_id=partnership.id, product=product, amount="900"
            )
            services.send(referral, staff["manager"])
            ids.append(referral.id)
        db.session.flush()
    return ids


def test_the_list_shows_sent_referrals_with_their_organization(api, sent, org):
    response = api("get", "/referrals")
    assert response.status_code == 200
    body = response.get_json()
    assert [r["id"] for r in body["items"]] == [sent.id]
    item = body["items"][0]
    assert item["organization"] == {"slug": "acme", "name": org.name}
    assert item["state"] == "sent"
    assert item["producer_name"] == "Ana Quispe"
    assert item["amount_requested"] == "1500.00"
    assert item["url"] == f"/api/v1/referrals/{sent.id}"
    assert item["sent_at"].endswith("+00:00")
    assert body["pagination"] == {
        "page": 1,
        "per_page": 20,
        "total": 1,
        "total_pages": 1,
        "previous_page": None,
        "next_page": None,
    }


def test_pages_with_a_link_header(api, sent, org, mfi, staff):
    _more_referrals(org, mfi, staff, 4)
    first = api("get", "/referrals?per_page=2")
    body = first.get_json()
    assert len(body["items"]) == 2
    assert body["pagination"]["total"] == 5
    assert body["pagination"]["total_pages"] == 3
    assert body["pagination"]["next_page"] == 2
    link = first.headers["Link"]
    assert '/api/v1/referrals?page=2&per_page=2>; rel="next"' in link
    assert 'rel="last"' in link and 'rel="prev"' not in link
    seen = [r["id"] for r in body["items"]]
    for page in (2, 3):
        more = api("get", f"/referrals?per_page=2&page={page}").get_json()
        seen += [r["id"] for r in more["items"]]
    assert len(set(seen)) == 5 and sent.id in seen
    last = api("get", "/referrals?per_page=2&page=3")
    assert 'rel="prev"' in last.headers["Link"] and 'rel="next"' not in last.headers["Link"]
    beyond = api("get", "/referrals?per_page=2&page=9").get_json()
    assert beyond["items"] == [] and beyond["pagination"]["next_page"] is None


def test_per_page_is_at_most_100_and_bad_filters_are_422(api, sent):
    assert_problem(api("get", "/referrals?per_page=101"), 422, "per_page")
    assert_problem(api("get", "/referrals?per_page=0"), 422, "per_page")
    assert_problem(api("get", "/referrals?page=abc"), 422, "page")
    assert_problem(api("get", "/referrals?state=draft"), 422, "state")
    assert_problem(api("get", "/referrals?product=yacht"), 422, "product")
    assert_problem(api("get", "/referrals?organization=%00"), 422, "organization")


def test_filters_by_state_organization_and_product(api, sent, org, mfi, staff, other_org):
    _more_referrals(org, mfi, staff, 2, product="asset_loan")
    services.apply(sent, "acknowledge", Side.PARTNER, None)
    db.session.flush()

    def ids(query: str) -> set[int]:
        return {r["id"] for r in api("get", "/referrals?" + query).get_json()["items"]}

    assert ids("state=received") == {sent.id}
    assert len(ids("state=sent")) == 2
    assert ids("product=working_capital_loan") == {sent.id}
    assert len(ids("product=asset_loan")) == 2
    assert len(ids("organization=acme")) == 3
    assert ids("organization=other-org") == set()
    assert ids("organization=nowhere") == set()
    assert ids("organization=acme&state=received&product=working_capital_loan") == {sent.id}


def test_one_referral_with_its_frozen_profile_and_actions(api, sent):
    response = api("get", f"/referrals/{sent.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["profile"] == sent.profile
    assert body["profile_sha256"] == sent.profile_sha256
    assert body["profile_version"] == sent.profile_version
    assert body["purpose"] == "Buy a second oven"
    assert body["currency"] == sent.currency
    assert body["disbursement"] is None
    assert [a["name"] for a in body["actions"]] == ["acknowledge"]


def test_the_whole_journey_through_the_api(api, sent, org, staff, partner_users):
    def move(action: str, **fields) -> dict:
        response = api(
            "post", f"/referrals/{sent.id}/transitions", json={"action": action, **fields}
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    assert move("acknowledge")["state"] == "received"
    body = move("start_review")
    assert body["state"] == "under_review"
    assert {a["name"] for a in body["actions"]} == {"request_info", "approve", "decline"}
    assert move("request_info", note="Which oven?")["state"] == "info_requested"
    assert state_of(sent) == "info_requested"
    with tenant_scope(org.id):
        services.apply(
            sent, "provide_info", Side.ORGANIZATION, staff["manager"], note="A 60-litre gas oven."
        )
        db.session.flush()
    assert move("approve")["state"] == "approved"
    body = move(
        "disburse",
        amount="1400.50",
        currency="pen",
        date=today().isoformat(),
        term_months=12,
    )
    assert body["state"] == "disbursed"
    assert body["disbursement"] == {
        "amount": "1400.50",
        "currency": "PEN",
        "date": today().isoformat(),
        "product": "working_capital_loan",
        "term_months": 12,
    }
    body = move("close")
    assert body["state"] == "closed" and body["actions"] == []

    events = api("get", f"/referrals/{sent.id}/events").get_json()["items"]
    assert [e["kind"] for e in events] == [
        "created",
        "sent",
        "acknowledge",
        "start_review",
        "request_info",
        "provide_info",
        "approve",
        "disburse",
        "close",
    ]
    assert events[4]["side"] == "partner" and events[4]["note"] == "Which oven?"
    assert events[7]["data"]["amount"] == "1400.50"


def test_decline_needs_a_reason(api, sent):
    api("post", f"/referrals/{sent.id}/transitions", json={"action": "acknowledge"})
    url = f"/referrals/{sent.id}/transitions"
    assert_problem(api("post", url, json={"action": "decline"}), 422, "reason")
    assert_problem(api("post", url, json={"action": "decline", "reason": "bogus"}), 422, "reason")
    response = api(
        "post",
        url,
        json={"action": "decline", "reason": "outside_region", "note": "We do not lend in Puno."},
    )
    assert response.status_code == 200
    assert response.get_json()["decline_reason"] == "outside_region"


def test_a_transition_out_of_order_is_409_with_the_reason(api, sent):
    body = assert_problem(
        api("post", f"/referrals/{sent.id}/transitions", json={"action": "approve"}), 409
    )
    assert "cannot be moved on" in body["detail"]
    assert body["type"] == "urn:inclusive:problem:transition-refused"
    assert state_of(sent) == ReferralState.SENT


def test_bad_fields_are_422_naming_the_field(api, sent):
    url = f"/referrals/{sent.id}/transitions"
    for name in ("acknowledge", "start_review"):
        api("post", url, json={"action": name})
    assert_problem(api("post", url, json={"action": "request_info"}), 422, "note")
    assert_problem(api("post", url, json={"action": "request_info", "note": " "}), 422, "note")
    assert_problem(api("post", url, json={"action": "fly"}), 422, "action")
    assert_problem(api("post", url, json={}), 422, "action")
    assert_problem(api("post", url, json={"action": "approve", "colour": "red"}), 422, "colour")
    assert_problem(api("post", url, json={"action": "approve", "note": "x" * 4001}), 422, "note")
    assert_problem(api("post", url, json=["approve"]), 422)
    assert api("post", url, json={"action": "approve"}).status_code == 200
    tomorrow = (today() + timedelta(days=1)).isoformat()
    cases = [
        ({}, "amount"),
        ({"amount": "-5", "date": today().isoformat(), "term_months": 6}, "amount"),
        ({"amount": "12.345", "date": today().isoformat(), "term_months": 6}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": 100, "date": tomorrow, "term_months": 6}, "date"),
        ({"amount": 100, "date": "yesterday", "term_months": 6}, "date"),
        ({"amount": 100, "date": today().isoformat()}, "term_months"),
        ({"amount": 100, "date": today().isoformat(), "term_months": 999}, "term_months"),
        (
            {"amount": 100, "date": today().isoformat(), "term_months": 6, "currency": "P1N"},
            "currency",
        ),
        ({"amount": 1e15, "date": today().isoformat(), "term_months": 6}, "amount"),
    ]
    for fields, field in cases:
        response = api("post", url, json={"action": "disburse", **fields})
        assert_problem(response, 422, field)
    assert state_of(sent) == ReferralState.APPROVED


def test_the_thread(api, sent, org, staff):
    url = f"/referrals/{sent.id}/messages"
    assert api("get", url).get_json() == {"items": []}
    response = api("post", url, json={"body": "  Can she visit our branch?  "})
    assert response.status_code == 201
    assert response.get_json()["body"] == "Can she visit our branch?"
    assert response.get_json()["side"] == "partner"
    with tenant_scope(org.id):
        services.post_message(sent, Side.ORGANIZATION, staff["manager"], "Yes, on Monday.")
        db.session.flush()
    items = api("get", url).get_json()["items"]
    assert [(m["side"], m["body"]) for m in items] == [
        ("partner", "Can she visit our branch?"),
        ("organization", "Yes, on Monday."),
    ]
    assert_problem(api("post", url, json={"body": ""}), 422, "body")
    assert_problem(api("post", url, json={"body": "   "}), 422, "body")
    assert_problem(api("post", url, json={"body": "x" * 4001}), 422, "body")
    assert_problem(api("post", url, json={"body": "a\x00b"}), 422, "body")


@pytest.mark.parametrize(
    ("content_type", "data", "status"),
    [
        ("text/plain", '{"action": "acknowledge"}', 415),
        ("application/x-www-form-urlencoded", "action=acknowledge", 415),
        ("application/json", '{"action": ', 400),
        ("application/json", b'{"action": "\xff"}', 400),
        ("application/json", "NaNa", 400),
    ],
)
def test_a_body_that_is_not_json_is_refused(api, sent, content_type, data, status):
    response = api(
        "post",
        f"/referrals/{sent.id}/transitions",
        data=data,
        headers={"Content-Type": content_type},
    )
    assert_problem(response, status)
    assert state_of(sent) == ReferralState.SENT


def test_an_oversized_body_is_413(api, sent):
    big = '{"action": "acknowledge", "note": "' + "x" * (70 * 1024) + '"}'
    response = api(
        "post",
        f"/referrals/{sent.id}/transitions",
        data=big,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413)
    assert state_of(sent) == ReferralState.SENT


def test_werkzeug_errors_are_problems_too(api, client, sent):
    assert_problem(api("get", "/nowhere"), 404)
    assert_problem(client.get("/api/v1"), 404)
    response = api("delete", f"/referrals/{sent.id}")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]
    page = client.get("/no-such-page")  # outside the API: the site's own page
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_an_unexpected_failure_is_a_500_problem(api, sent, app, monkeypatch):
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)

    def broken(referral):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "timeline", broken)
    body = assert_problem(api("get", f"/referrals/{sent.id}/events"), 500)
    assert "boom" not in body["detail"]


def test_too_many_requests_is_a_429_problem(api, app, monkeypatch, token):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT", "3 per minute")
    for _ in range(3):
        assert api("get", "/me").status_code == 200
    response = api("get", "/me")
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_the_api_needs_no_csrf_token(api, sent, app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    url = f"/referrals/{sent.id}/transitions"
    assert api("post", url, json={"action": "acknowledge"}).status_code == 200


def test_the_problem_type_is_stable_whatever_the_language(api, sent):
    response = api("get", "/referrals/999999", headers={"Accept-Language": "es"})
    body = assert_problem(response, 404)
    assert body["type"] == "urn:inclusive:problem:not-found"
