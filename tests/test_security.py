"""Security headers, CSRF on every state-changing request, and production cookies."""

import re

import pytest
from werkzeug.routing import Rule

from inclusive import create_app
from tests.conftest import base_config


def test_security_headers_on_every_page(client):
    for path in ("/login", "/static/css/app.css", "/no-such-page"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "Strict-Transport-Security" not in headers  # not on local http


def test_no_inline_script_in_pages(client):
    page = client.get("/login").text
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert " on" + "click=" not in page


@pytest.fixture
def csrf_app(instance_dir):
    return create_app({**base_config(instance_dir), "WTF_CSRF_ENABLED": True})


def test_every_post_route_refuses_a_request_without_csrf_token(csrf_app):
    client = csrf_app.test_client()
    # The partner API authenticates by bearer token, never by cookie: it has no CSRF to
    # check (tests/api shows a session cookie never authenticates there).
    rules: list[Rule] = [
        r
        for r in csrf_app.url_map.iter_rules()
        if "POST" in r.methods and not r.rule.startswith("/api/")
    ]
    assert len(rules) >= 8
    for rule in rules:
        values = {arg: 1 if "id" in arg else "x" for arg in rule.arguments}
        url = rule.build(values)[1]
        response = client.post(url, data={"email": "a@b.org", "password": "x"})
        assert response.status_code == 400, rule.rule
        assert "expired or was sent from elsewhere" in response.text, rule.rule


def test_production_sets_secure_cookies_and_hsts(instance_dir, monkeypatch):
    monkeypatch.setenv("INCLUSIVE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "p" * 48)
    monkeypatch.setenv("MAIL_SERVER", "127.0.0.1")
    config = base_config(instance_dir)
    for key in ("ENV_NAME", "MAIL_SERVER", "SQLALCHEMY_DATABASE_URI"):
        config.pop(key)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/never-connected")
    app = create_app(config)
    assert (
        app.config["SESSION_COOKIE_SECURE"]
        and app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    )
    client = app.test_client()
    response = client.get("/login", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "dev" not in app.blueprints  # the development mailbox does not exist in production
