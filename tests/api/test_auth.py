"""Bearer tokens: only the hash is kept; missing, malformed, unknown or revoked → 401."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from inclusive.extensions import db
from inclusive.referrals import endpoints
from inclusive.referrals.models import ApiToken
from inclusive.tenancy.scope import tenant_scope
from tests.api.conftest import assert_problem


def test_no_token_is_401_with_a_bearer_challenge(client, sent):
    response = client.get("/api/v1/referrals")
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Cache-Control"] == "no-store"


def test_malformed_and_unknown_tokens_are_401(client, token):
    unknown = "ivp_0123abcd_" + "x" * 43
    for header in (
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer    ",
        "Bearer not-a-token",
        f"Bearer {token}x\x01",
        f"Token {token}",
        f"Bearer {unknown}",
        "Bearer " + "ivp_" + "a" * 5000,
    ):
        response = client.get("/api/v1/me", headers={"Authorization": header})
        body = assert_problem(response, 401)
        if header.startswith("Bearer ") and header.strip() != "Bearer":
            assert body["type"] == "urn:inclusive:problem:invalid-token", header


def test_a_valid_token_names_its_partner(api, mfi):
    response = api("get", "/me")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers  # no session is started
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["slug"] == "andina"
    assert body["token"]["name"] == "Core banking"
    assert body["token"]["prefix"] and len(body["token"]["prefix"]) == 8


def test_the_scheme_is_case_insensitive(client, token):
    assert client.get("/api/v1/me", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_only_the_hash_of_a_token_is_kept(token, mfi):
    row = db.session.scalar(select(ApiToken).where(ApiToken.partner_id == mfi.id))
    assert token.startswith(f"ivp_{row.prefix}_")
    assert row.token_sha256 == endpoints.token_digest(token)
    assert token not in str([getattr(row, c.key) for c in ApiToken.__table__.columns])


def test_a_revoked_token_is_refused_at_once(client, token, auth, mfi):
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    row = endpoints.active_token(token)
    assert endpoints.revoke_token(row) is True
    assert endpoints.revoke_token(row) is False
    db.session.flush()
    assert_problem(client.get("/api/v1/me", headers=auth), 401)


def test_last_used_is_written_at_most_once_a_minute(api, token):
    row = endpoints.active_token(token)
    assert row.last_used_at is None
    api("get", "/me")
    db.session.refresh(row)
    first = row.last_used_at
    assert first is not None
    api("get", "/me")
    db.session.refresh(row)
    assert row.last_used_at == first  # within the minute: not written again
    row.last_used_at = first - timedelta(minutes=2)
    db.session.flush()
    api("get", "/me")
    db.session.refresh(row)
    assert row.last_used_at > first - timedelta(minutes=2)


def test_a_session_cookie_never_authenticates(client, login, partner_users, sent):
    referral_id = sent.id  # read now: logging in commits, and the row expires
    login(partner_users["admin"])  # a partner admin logged in on the web
    assert client.get("/p/andina/").status_code == 200
    assert_problem(client.get("/api/v1/referrals"), 401)
    assert_problem(client.get(f"/api/v1/referrals/{referral_id}"), 401)


def test_another_partners_token_sees_nothing_of_ours(client, sent, other_partner):
    headers = other_partner["auth"]
    assert_problem(client.get(f"/api/v1/referrals/{sent.id}", headers=headers), 404)
    assert_problem(client.get(f"/api/v1/referrals/{sent.id}/events", headers=headers), 404)
    assert_problem(client.get(f"/api/v1/referrals/{sent.id}/messages", headers=headers), 404)
    response = client.post(
        f"/api/v1/referrals/{sent.id}/transitions",
        json={"action": "acknowledge"},
        headers=headers,
    )
    assert_problem(response, 404)
    listing = client.get("/api/v1/referrals", headers=headers).get_json()
    assert listing["items"] == []
    with tenant_scope(sent.org_id):
        db.session.refresh(sent)
    assert sent.state == "sent"


def test_a_draft_and_odd_ids_are_404(api, draft):
    assert_problem(api("get", f"/referrals/{draft.id}"), 404)  # a draft is the organization's
    for path in ("abc", "-1", "0", "1.5", str(2**31), "9" * 40, "%00"):
        assert_problem(api("get", f"/referrals/{path}"), 404)
        assert_problem(
            api("post", f"/referrals/{path}/transitions", json={"action": "approve"}), 404
        )
