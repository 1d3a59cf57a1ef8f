"""The API access page: a partner administrator's tokens and webhook, secrets shown once."""

from __future__ import annotations

import re

import pytest

from inclusive.extensions import db
from inclusive.referrals import endpoints

PAGE = "/p/andina/api-access/"


@pytest.fixture
def admin(login, partner_users):
    return login(partner_users["admin"])


def _tokens(mfi):
    return endpoints.tokens_of(mfi)


def test_only_a_partner_admin_sees_the_page(client, login, partner_users, staff):
    assert client.get(PAGE).status_code == 302  # log in first
    login(partner_users["officer"])
    assert client.get(PAGE).status_code == 403
    login(staff["admin"])
    assert client.get(PAGE).status_code == 404
    login(partner_users["admin"])
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "API access" in page.get_data(as_text=True)


def test_create_a_token_shown_once_then_revoke_it(client, admin, mfi):
    response = client.post(PAGE + "tokens", data={"name": "Core banking"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    plain = re.search(r'id="new-token">(ivp_[0-9a-f]{8}_[A-Za-z0-9_-]+)<', html).group(1)
    assert endpoints.active_token(plain) is not None
    assert response.headers["Cache-Control"] == "no-store"
    again = client.get(PAGE).get_data(as_text=True)
    assert plain not in again and plain[:12] in again  # the prefix tells it apart
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"}).status_code == 200

    (token,) = _tokens(mfi)
    revoked = client.post(PAGE + f"tokens/{token.id}/revoke")
    assert revoked.status_code == 302
    db.session.refresh(token)
    assert token.revoked_at is not None and endpoints.active_token(plain) is None
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"}).status_code == 401


def test_a_token_needs_a_name_and_another_partners_token_is_404(client, admin, mfi, other_partner):
    assert client.post(PAGE + "tokens", data={"name": "  "}).status_code == 400
    assert _tokens(mfi) == []
    (theirs,) = endpoints.tokens_of(other_partner["partner"])
    assert client.post(PAGE + f"tokens/{theirs.id}/revoke").status_code == 404
    db.session.refresh(theirs)
    assert theirs.revoked_at is None


def test_set_rotate_and_remove_the_webhook(client, admin, mfi, app, monkeypatch):
    created = client.post(PAGE + "webhook", data={"url": "http://127.0.0.1:9/hook"})
    assert created.status_code == 200
    secret = re.search(r'id="new-secret">(whsec_[^<]+)<', created.get_data(as_text=True)).group(1)
    assert endpoints.endpoint_of(mfi).secret == secret
    changed = client.post(PAGE + "webhook", data={"url": "http://127.0.0.1:9/other"})
    assert changed.status_code == 302
    assert secret not in client.get(PAGE).get_data(as_text=True)

    rotated = client.post(PAGE + "webhook/rotate")
    new = re.search(r'id="new-secret">(whsec_[^<]+)<', rotated.get_data(as_text=True)).group(1)
    row = endpoints.endpoint_of(mfi)
    db.session.refresh(row)
    assert row.secrets() == [new, secret]
    assert "Rotation under way" in client.get(PAGE).get_data(as_text=True)

    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ())
    refused = client.post(PAGE + "webhook", data={"url": "http://10.0.0.1/hook"})
    assert refused.status_code == 400
    assert "private, local or reserved" in refused.get_data(as_text=True)

    assert client.post(PAGE + "webhook/delete").status_code == 302
    assert endpoints.endpoint_of(mfi) is None


def test_the_forms_need_their_csrf_token(client, admin, mfi, app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    assert client.post(PAGE + "tokens", data={"name": "No token"}).status_code == 400
    assert _tokens(mfi) == []
