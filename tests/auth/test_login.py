"""Logging in and out: sessions, their renewal and end, throttling, one generic error."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from unittest import mock

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, select

from inclusive.auth.models import AuthSession
from inclusive.extensions import db
from tests import factories
from tests.factories import PASSWORD


def _session_cookie(response) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie(header)
        if "session" in cookie:
            return cookie["session"].value
    return None


def _log_in(client, email: str, password: str = PASSWORD, **kw):
    return client.post("/login", data={"email": email, "password": password}, **kw)


def _sessions_of(user) -> int:
    return db.session.scalar(
        select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user.id)
    )


def test_login_with_the_right_password(client, admin):
    response = _log_in(client, "ADA@acme.example ")  # case and spaces do not matter
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert _sessions_of(admin) == 1
    assert client.get("/account").status_code == 200


def test_login_goes_to_a_safe_next_page_only(client, admin):
    assert _log_in(client, admin.email, query_string={"next": "/orgs"}).headers["Location"] == (
        "/orgs"
    )
    client.post("/logout")
    for evil in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = _log_in(client, admin.email, query_string={"next": evil})
        assert response.headers["Location"] == "/", evil
        client.post("/logout")


def test_failed_logins_all_get_the_same_generic_message(client, admin):
    wrong_password = _log_in(client, admin.email, "not the password at all")
    unknown_user = _log_in(client, "nobody@acme.example", "not the password at all")
    for response in (wrong_password, unknown_user):
        assert response.status_code == 200
        assert "The e-mail or password is not correct." in response.text
    # What was typed is kept (but never the password).
    assert 'value="nobody@acme.example"' in unknown_user.text
    assert "not the password at all" not in unknown_user.text
    assert _sessions_of(admin) == 0


def test_inactive_user_cannot_log_in(client, admin):
    admin.active = False
    db.session.commit()
    assert _log_in(client, admin.email).status_code == 200


def test_login_renews_the_session(client, admin):
    client.post("/language", data={"language": "es"})
    before = client.get_cookie("session").value
    response = _log_in(client, admin.email)
    after = _session_cookie(response)
    assert after and after != before
    # The language chosen before logging in survives the renewal.
    assert '<html lang="es">' in client.get("/account").text


def test_a_replayed_session_cookie_stops_working_after_logout(client, admin):
    _log_in(client, admin.email)
    stolen = client.get_cookie("session").value
    assert client.get("/account").status_code == 200
    client.post("/logout")
    assert _sessions_of(admin) == 0
    client.set_cookie("session", stolen)
    response = client.get("/account")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_password_change_ends_the_other_sessions_only(app, admin):
    laptop, phone = app.test_client(), app.test_client()
    _log_in(laptop, admin.email)
    _log_in(phone, admin.email)
    assert _sessions_of(admin) == 2
    new_password = "quiet-harbor-lighthouse-91"
    response = laptop.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": new_password, "confirm": new_password},
    )
    assert response.status_code == 302
    assert laptop.get("/account").status_code == 200
    assert phone.get("/account").status_code == 302
    assert _sessions_of(admin) == 1
    laptop.post("/logout")
    assert _log_in(laptop, admin.email, new_password).status_code == 302


def test_password_change_checks_the_current_password(client, login, admin):
    login(admin)
    response = client.post(
        "/account/password",
        data={
            "current_password": "wrong",
            "password": "quiet-harbor-lighthouse-91",
            "confirm": "quiet-harbor-lighthouse-91",
        },
    )
    assert response.status_code == 400
    assert "The current password is not correct." in response.text


class TestIdleRefresh:
    """A permanent session's cookie is signed anew at most once a minute, not per request;
    an idle one still expires after PERMANENT_SESSION_LIFETIME."""

    def _signed(self, app, data, seconds_ago: int) -> str:
        serializer = app.session_interface.get_signing_serializer(app)
        signed = time.time() - seconds_ago
        with mock.patch.object(TimestampSigner, "get_timestamp", lambda self: int(signed)):
            return serializer.dumps(data)

    def test_a_fresh_cookie_is_not_sent_again(self, client, admin):
        _log_in(client, admin.email)
        client.get("/account")  # the first page puts the CSRF token in the session
        response = client.get("/account")
        assert response.status_code == 200
        assert _session_cookie(response) is None

    def test_a_cookie_older_than_the_interval_is_signed_anew(self, app, client, admin):
        _log_in(client, admin.email)
        data = app.session_interface.get_signing_serializer(app).loads(
            client.get_cookie("session").value
        )
        client.set_cookie("session", self._signed(app, data, seconds_ago=61))
        response = client.get("/account")
        assert response.status_code == 200
        renewed = _session_cookie(response)
        assert renewed
        _data, signed_at = app.session_interface.get_signing_serializer(app).loads(
            renewed, return_timestamp=True
        )
        assert time.time() - signed_at.timestamp() < 5

    def test_a_changed_session_is_sent_at_once(self, client, admin):
        _log_in(client, admin.email)
        response = client.post("/language", data={"language": "es"})
        assert _session_cookie(response)

    def test_an_idle_cookie_still_expires(self, app, client, admin):
        _log_in(client, admin.email)
        data = app.session_interface.get_signing_serializer(app).loads(
            client.get_cookie("session").value
        )
        idle = int(app.permanent_session_lifetime.total_seconds()) + 5
        client.set_cookie("session", self._signed(app, data, seconds_ago=idle))
        response = client.get("/account")
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_session_cookie_flags_for_local_http(client, admin):
    response = _log_in(client, admin.email)
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header  # plain http on 127.0.0.1 must keep working


class TestThrottling:
    """Per-IP and per-account limits; a known device is not locked out by strangers."""

    def test_the_account_is_limited_after_repeated_failures(self, client, admin):
        for _ in range(5):
            assert _log_in(client, admin.email, "wrong password!").status_code == 200
        response = _log_in(client, admin.email)
        assert response.status_code == 429
        assert "Too many attempts" in response.text

    def test_successful_logins_do_not_count_against_the_account(self, client, admin):
        for _ in range(7):
            assert _log_in(client, admin.email).status_code == 302
            client.post("/logout")

    def test_a_known_device_still_gets_in_while_strangers_are_locked_out(self, app, admin):
        own_browser = app.test_client()
        assert _log_in(own_browser, admin.email).status_code == 302  # gets the device cookie
        own_browser.post("/logout")
        attacker = app.test_client()
        attacker.environ_base["REMOTE_ADDR"] = "203.0.113.9"
        for _ in range(6):
            _log_in(attacker, admin.email, "guess guess guess")
        assert _log_in(attacker, admin.email).status_code == 429
        assert _log_in(own_browser, admin.email).status_code == 302

    def test_one_ip_is_limited_across_accounts(self, app):
        attacker = app.test_client()
        attacker.environ_base["REMOTE_ADDR"] = "198.51.100.7"
        codes = [
            _log_in(attacker, f"victim{i}@example.org", "guess guess guess").status_code
            for i in range(21)
        ]
        assert codes[:20] == [200] * 20
        assert codes[20] == 429


@pytest.mark.parametrize("path", ["/login", "/signup", "/password/forgot"])
def test_public_forms_render(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert '<form method="post"' in response.text


def test_factories_make_usable_users(client):
    user = factories.UserFactory(email="zed@example.org")
    assert _log_in(client, user.email).status_code == 302
