"""The partner's webhook through the API: set, read, rotate, delete; unsafe URLs refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from inclusive.extensions import db
from inclusive.referrals import endpoints
from inclusive.referrals.models import WebhookEndpoint
from inclusive.timeutil import utcnow
from tests.api.conftest import assert_problem

URL = "http://127.0.0.1:9/hook"  # loopback: allowed outside production (WEBHOOK_ALLOWED_HOSTS)


def _row(mfi) -> WebhookEndpoint:
    row = endpoints.endpoint_of(mfi)
    if row is not None:
        db.session.refresh(row)
    return row


def test_no_webhook_yet_is_404(api):
    assert_problem(api("get", "/webhook"), 404)
    assert_problem(api("delete", "/webhook"), 404)
    assert_problem(api("post", "/webhook/rotate"), 404)


def test_put_creates_it_and_shows_the_secret_once(api, mfi):
    created = api("put", "/webhook", json={"url": URL})
    assert created.status_code == 201
    body = created.get_json()
    assert body["url"] == URL and body["enabled"] is True
    assert body["secret"].startswith("whsec_")
    assert _row(mfi).secret == body["secret"]
    shown = api("get", "/webhook").get_json()
    assert "secret" not in shown and shown["url"] == URL
    again = api("put", "/webhook", json={"url": URL + "/v2"})
    assert again.status_code == 200
    assert "secret" not in again.get_json()
    assert _row(mfi).url == URL + "/v2" and _row(mfi).secret == body["secret"]


def test_setting_the_url_again_re_enables_an_endpoint_gone_with_410(api, mfi, endpoint):
    endpoint.enabled = False
    endpoint.disabled_reason = "The receiver answered 410 Gone."
    db.session.flush()
    assert api("get", "/webhook").get_json()["enabled"] is False
    response = api("put", "/webhook", json={"url": URL})
    assert response.status_code == 200
    assert response.get_json()["enabled"] is True
    assert _row(mfi).enabled and _row(mfi).disabled_reason == ""


def test_rotation_keeps_the_previous_secret_for_a_while(api, mfi, endpoint, app):
    old = endpoint.secret
    response = api("post", "/webhook/rotate")
    assert response.status_code == 200
    body = response.get_json()
    assert body["secret"].startswith("whsec_") and body["secret"] != old
    row = _row(mfi)
    assert row.secrets() == [body["secret"], old]
    hours = app.config["WEBHOOK_ROTATION_HOURS"]
    assert row.previous_secret_until - utcnow() > timedelta(hours=hours) - timedelta(minutes=1)
    assert body["previous_secret_valid_until"] is not None
    assert row.secrets(utcnow() + timedelta(hours=hours, minutes=1)) == [body["secret"]]
    assert "secret" not in api("get", "/webhook").get_json()


def test_delete_removes_it(api, mfi, endpoint):
    assert api("delete", "/webhook").status_code == 204
    assert endpoints.endpoint_of(mfi) is None
    assert_problem(api("get", "/webhook"), 404)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "http://10.0.0.1/hook",
        "http://localhost/hook",
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "https://user:secret@example.com/hook",
        "javascript:alert(1)",
        "not a url",
        "https://" + "a" * 2000 + ".example/",
    ],
)
def test_unsafe_urls_are_refused_when_not_allowed(api, mfi, app, monkeypatch, url):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ())
    assert_problem(api("put", "/webhook", json={"url": url}), 422, "url")
    assert endpoints.endpoint_of(mfi) is None


def test_a_bad_url_leaves_the_endpoint_as_it_was(api, mfi, endpoint, app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ())
    assert_problem(api("put", "/webhook", json={"url": "http://10.0.0.1/"}), 422, "url")
    assert _row(mfi).url == "http://127.0.0.1:9/hook"


def test_services_refuse_without_an_endpoint_and_an_empty_token_name(mfi):
    with pytest.raises(endpoints.EndpointError):
        endpoints.rotate_secret(mfi)
    assert endpoints.remove_endpoint(mfi) is False
    with pytest.raises(endpoints.EndpointError) as refused:
        endpoints.create_token(mfi, "   ", None)
    assert refused.value.field == "name"
    with pytest.raises(endpoints.EndpointError):
        endpoints.create_token(mfi, "x" * 81, None)
