"""Webhook transport: Standard Webhooks signatures, retry timing, URL safety, one attempt.

Deliveries go to a real receiver on 127.0.0.1 that verifies them with the ``standardwebhooks``
library; nothing here touches the internet (public addresses are only checked, never posted to).
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from inclusive.referrals import webhooks
from inclusive.referrals.webhooks import (
    MAX_RETRY_AFTER,
    RETRY_SCHEDULE,
    Attempt,
    WebhookUrlError,
    check_url,
    new_secret,
    parse_retry_after,
    post,
    retry_delay,
    signature,
    signed_headers,
)
from inclusive.refusals import Refused
from tests.webhook_receiver import Reply, WebhookReceiver

LOCAL = ("127.0.0.1",)
BODY = json.dumps({"type": "referral.created", "data": {"id": "r_1"}}).encode()


def now() -> int:
    return int(time.time())


@pytest.fixture(autouse=True)
def _transaction() -> Iterator[None]:
    """No database here: replaces the per-test transaction of tests/conftest.py."""
    yield


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def receiver(secret: str) -> Iterator[WebhookReceiver]:
    with WebhookReceiver([secret]) as r:
        yield r


@pytest.fixture
def http() -> Iterator[httpx.HTTPTransport]:
    """A private connection pool, so the tests also close what they open."""
    with httpx.HTTPTransport() as transport:
        yield transport


# Secrets and signatures -----------------------------------------------------------------


def test_new_secret_is_prefixed_base64_of_32_bytes():
    s = new_secret()
    assert s.startswith("whsec_")
    assert len(base64.b64decode(s.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != s


def test_signature_matches_the_specification_example():
    # The example of the Standard Webhooks specification.
    sig = signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_headers_verify_with_standardwebhooks(secret):
    ts = now()
    headers = signed_headers("msg_1", ts, BODY, [secret])
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(ts)
    assert headers["webhook-timestamp"].isdigit()
    assert headers["content-type"] == "application/json"
    assert "inclusive" in headers["user-agent"].lower()
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_timestamp_header_is_an_integer_even_from_a_float(secret):
    headers = signed_headers("msg_1", time.time(), BODY, [secret])  # type: ignore[arg-type]
    assert headers["webhook-timestamp"].isdigit()
    Webhook(secret).verify(BODY, headers)


def test_two_secrets_during_a_rotation_each_verify():
    old, new = new_secret(), new_secret()
    headers = signed_headers("msg_2", now(), BODY, [old, new])
    parts = headers["webhook-signature"].split(" ")
    assert len(parts) == 2
    assert all(p.startswith("v1,") for p in parts)
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    # After the rotation, the new secret alone signs and still verifies.
    Webhook(new).verify(BODY, signed_headers("msg_3", now(), BODY, [new]))


def test_tampered_body_fails(secret):
    headers = signed_headers("msg_1", now(), BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"r_1", b"r_2"), headers)


def test_wrong_secret_fails(secret):
    headers = signed_headers("msg_1", now(), BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_changed_id_or_timestamp_fails(secret):
    ts = now()
    headers = signed_headers("msg_1", ts, BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-timestamp": str(ts - 1)})


def test_signing_needs_a_secret():
    with pytest.raises(ValueError):
        signed_headers("msg_1", now(), BODY, [])
    with pytest.raises(ValueError):
        signature("whsec_", "msg_1", now(), BODY)
    with pytest.raises(ValueError):
        signature("whsec_not*base64", "msg_1", now(), BODY)


# Retry timing ---------------------------------------------------------------------------


def test_retry_schedule_is_the_specifications():
    assert RETRY_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


@pytest.mark.parametrize("failed", range(1, len(RETRY_SCHEDULE)))
def test_retry_delay_is_the_schedule_within_ten_percent(failed):
    rng = random.Random(failed)
    base = RETRY_SCHEDULE[failed]
    delays = [retry_delay(failed, RETRY_SCHEDULE, rng=rng) for _ in range(200)]
    assert all(d is not None and base * 0.9 <= d <= base * 1.1 for d in delays)
    assert len(set(delays)) > 1  # jittered


def test_retry_delay_bounds_at_the_extremes_of_the_jitter():
    class Low(random.Random):
        def uniform(self, a, b):
            return a

    class High(random.Random):
        def uniform(self, a, b):
            return b

    assert retry_delay(2, RETRY_SCHEDULE, rng=Low()) == pytest.approx(270)
    assert retry_delay(2, RETRY_SCHEDULE, rng=High()) == pytest.approx(330)


def test_retry_delay_is_none_when_the_schedule_is_exhausted():
    assert retry_delay(len(RETRY_SCHEDULE), RETRY_SCHEDULE) is None
    assert retry_delay(len(RETRY_SCHEDULE), RETRY_SCHEDULE, retry_after=60) is None
    assert retry_delay(3, [0, 1, 2]) is None
    assert retry_delay(2, [0, 1, 2]) is not None


def test_retry_after_is_honoured_but_capped():
    rng = random.Random(0)
    assert retry_delay(1, RETRY_SCHEDULE, retry_after=120, rng=rng) == 120
    # A shorter Retry-After does not shorten the schedule.
    assert retry_delay(2, RETRY_SCHEDULE, retry_after=1, rng=rng) >= 270
    # Capped at 24 h.
    assert retry_delay(1, RETRY_SCHEDULE, retry_after=10**9, rng=rng) == MAX_RETRY_AFTER == 86400
    assert retry_delay(1, RETRY_SCHEDULE, retry_after=float("inf"), rng=rng) <= 5.5
    assert retry_delay(1, RETRY_SCHEDULE, retry_after=-5, rng=rng) <= 5.5


def test_retry_delay_refuses_a_negative_attempt_number():
    with pytest.raises(ValueError):
        retry_delay(-1, RETRY_SCHEDULE)


NOW = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Sat, 28 Nov 2026 10:02:00 GMT", 120.0),
        ("Sat, 28 Nov 2026 09:00:00 GMT", 0.0),  # in the past
        ("Sat, 28 Nov 2026 10:00:30 -0000", 30.0),
    ],
)
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1e3", "12 seconds", "Sat, 99 Foo"])
def test_parse_retry_after_junk_is_none(value):
    assert parse_retry_after(value, NOW) is None


def test_parse_retry_after_with_naive_now_means_utc():
    naive = NOW.replace(tzinfo=None)
    assert parse_retry_after("Sat, 28 Nov 2026 10:01:00 GMT", naive) == 60


# URL safety -----------------------------------------------------------------------------


@pytest.fixture
def no_dns(monkeypatch):
    """Fail the test if anything resolves a name."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected DNS lookup {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def fake_dns(monkeypatch, table: dict[str, list[str]]):
    def resolve(host, port, *args, **kwargs):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port or 0, 0, 0) if ":" in ip else (ip, port or 0),
            )
            for ip in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.216.34/hook",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http:///path-only",
        "https://",
        "hook.example.com/no-scheme",
        "https://user:pass@93.184.216.34/hook",
        "https://user@93.184.216.34/hook",
        "http://10.0.0.8/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://100.64.0.1/hook",
        "http://127.0.0.1/hook",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[2002:7f00:1::]/hook",  # 6to4 wrapping 127.0.0.1
        "http://[64:ff9b::a00:1]/hook",  # NAT64 wrapping 10.0.0.1
        "http://0.0.0.0/hook",
        "http://[::]/hook",
        "http://224.0.0.1/hook",
        "http://255.255.255.255/hook",
        "http://93.184.216.34:99999/hook",
        "https://93.184.216.34/a b",
        "https://93.184.216.34/" + "a" * 2000,
        "",
    ],
)
def test_check_url_refuses(url, no_dns):
    with pytest.raises(WebhookUrlError) as info:
        check_url(url, ())
    assert isinstance(info.value, Refused)
    assert str(info.value).endswith(".")  # a sentence for the person who typed the URL


def test_check_url_refuses_a_name_resolving_to_loopback():
    # "localhost" comes from /etc/hosts: no network needed.
    with pytest.raises(WebhookUrlError, match="private, local or reserved"):
        check_url("http://localhost:8000/hook", ())


@pytest.mark.parametrize(
    "url",
    ["http://2130706433/hook", "http://127.1/hook", "http://0x7f.1/hook", "http://localhost./"],
)
def test_check_url_refuses_other_spellings_of_loopback(url):
    # The resolver reads these numeric forms itself (inet_aton): no network needed.
    with pytest.raises(WebhookUrlError):
        check_url(url, ())


def test_check_url_judges_the_host_the_http_client_would_use(no_dns):
    # urlsplit and httpx read this one differently; both hosts are judged (and it has userinfo).
    with pytest.raises(WebhookUrlError):
        check_url("http://93.184.216.34\\@127.0.0.1/hook", ())


def test_check_url_refuses_when_any_resolved_address_is_private(monkeypatch):
    fake_dns(monkeypatch, {"hook.partner.example": ["93.184.216.34", "10.1.2.3"]})
    with pytest.raises(WebhookUrlError, match=r"10\.1\.2\.3"):
        check_url("https://hook.partner.example/in", ())


def test_check_url_refuses_an_unresolvable_host(monkeypatch):
    fake_dns(monkeypatch, {})
    with pytest.raises(WebhookUrlError, match="could not be found"):
        check_url("https://nowhere.partner.example/in", ())


def test_check_url_accepts_a_public_name(monkeypatch):
    fake_dns(monkeypatch, {"hook.partner.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    check_url("https://hook.partner.example/in?x=1", ())


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/hook",
        "http://93.184.216.34:8443/hook?q=1",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
        "https://[::ffff:93.184.216.34]/hook",
        "HTTPS://93.184.216.34/hook",
    ],
)
def test_check_url_accepts_public_ip_literals_without_dns(url, no_dns):
    check_url(url, ())


def test_check_url_accepts_allowed_hosts(no_dns):
    check_url("http://127.0.0.1:5000/hook", LOCAL)
    check_url("http://[::1]:5000/hook", ["::1"])
    check_url("http://[::1]:5000/hook", ["[0:0::1]"])
    check_url("http://internal.test/hook", ["INTERNAL.test"])  # no DNS for an allowed name
    with pytest.raises(WebhookUrlError):
        check_url("http://10.0.0.1/hook", LOCAL)


def test_check_url_allows_a_name_by_its_resolved_ip(monkeypatch):
    fake_dns(monkeypatch, {"hooks.internal": ["127.0.0.1"]})
    check_url("http://hooks.internal/in", LOCAL)


def test_refusal_is_translated_in_the_app(app):
    with app.test_request_context(), pytest.raises(WebhookUrlError) as info:
        check_url("ftp://example.com/", ())
    assert "http" in str(info.value)


# One attempt against a real receiver ----------------------------------------------------


def deliver(receiver, secrets, **kwargs) -> Attempt:
    kwargs.setdefault("allowed_hosts", LOCAL)
    return post(receiver.url, kwargs.pop("msg_id", "msg_1"), now(), BODY, secrets, **kwargs)


def test_delivered_and_verified(receiver, secret, http):
    attempt = deliver(receiver, [secret], transport=http)
    assert attempt.outcome == "delivered"
    assert attempt.status_code == 200
    assert attempt.error == ""
    assert attempt.duration_ms >= 0
    [delivery] = receiver.deliveries
    assert delivery.verified
    assert delivery.webhook_id == "msg_1"
    assert delivery.body == json.loads(BODY)
    assert abs(delivery.timestamp - now()) <= 5
    assert delivery.headers["user-agent"] == webhooks.USER_AGENT


def test_delivered_with_the_shared_transport(receiver, secret):
    assert deliver(receiver, [secret]).outcome == "delivered"
    assert deliver(receiver, [secret]).outcome == "delivered"  # the kept-alive connection
    assert receiver.duplicates == 1
    assert webhooks._shared_transport() is webhooks._shared_transport()


def test_shared_transport_is_replaced_after_a_fork(monkeypatch):
    first = webhooks._shared_transport()
    monkeypatch.setattr(webhooks, "_transport_pid", -1)  # as if made in another process
    second = webhooks._shared_transport()
    assert second is not first
    assert webhooks._shared_transport() is second
    first.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_shared_transport_is_replaced_in_a_real_forked_child():
    parent = webhooks._shared_transport()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, then leave without pytest's cleanup
        try:
            fresh = webhooks._transport is None and webhooks._shared_transport() is not parent
            os.write(write, b"1" if fresh else b"0")
        finally:
            os._exit(0)
    os.close(write)
    try:
        answer = os.read(read, 1)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert answer == b"1"
    assert webhooks._shared_transport() is parent


def test_rotation_receiver_accepts_either_secret(receiver, secret, http):
    new = new_secret()
    receiver.secrets = [secret, new]
    assert deliver(receiver, [secret, new], transport=http).outcome == "delivered"
    receiver.secrets = [new]
    assert deliver(receiver, [new], msg_id="msg_2", transport=http).outcome == "delivered"
    assert all(d.verified for d in receiver.deliveries)


def test_wrong_secret_is_refused_by_the_receiver(receiver, http):
    attempt = deliver(receiver, [new_secret()], transport=http)
    assert attempt.outcome == "retry"
    assert attempt.status_code == 400
    [delivery] = receiver.deliveries
    assert not delivery.verified


def test_server_error_is_retried(receiver, secret, http):
    receiver.script(Reply(500, body="boom"))
    attempt = deliver(receiver, [secret], transport=http)
    assert attempt.outcome == "retry"
    assert attempt.status_code == 500
    assert attempt.response_excerpt == "boom"


def test_too_many_requests_carries_retry_after(receiver, secret, http):
    receiver.script(Reply(429, retry_after="42"))
    attempt = deliver(receiver, [secret], transport=http)
    assert attempt.outcome == "retry"
    assert attempt.status_code == 429
    assert attempt.retry_after == 42
    assert retry_delay(1, RETRY_SCHEDULE, attempt.retry_after) == 42


def test_retry_after_as_http_date(receiver, secret, http):
    when = datetime.now(UTC) + timedelta(seconds=90)
    receiver.script(Reply(503, retry_after=when.strftime("%a, %d %b %Y %H:%M:%S GMT")))
    attempt = deliver(receiver, [secret], transport=http)
    assert attempt.outcome == "retry"
    assert 80 <= attempt.retry_after <= 91


def test_gone_disables(receiver, secret, http):
    receiver.script(410)
    assert deliver(receiver, [secret], transport=http).outcome == "gone"


def test_slow_receiver_times_out(receiver, secret, http):
    receiver.script(Reply(200, delay=3))
    started = time.monotonic()
    attempt = deliver(receiver, [secret], transport=http, timeout=0.3)
    assert time.monotonic() - started < 2
    assert attempt.outcome == "retry"
    assert attempt.status_code is None
    assert "Timeout" in attempt.error


def test_closed_port_is_retried(secret, http):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    attempt = post(
        url, "msg_1", now(), BODY, [secret], allowed_hosts=LOCAL, transport=http, timeout=2
    )
    assert attempt.outcome == "retry"
    assert attempt.status_code is None
    assert "ConnectError" in attempt.error


def test_redirect_is_not_followed(receiver, secret):
    receiver.script(Reply(302, headers={"Location": receiver.url}))
    attempt = deliver(receiver, [secret])  # the shared transport
    assert attempt.outcome == "retry"
    assert attempt.status_code == 302
    time.sleep(0.1)
    assert len(receiver.deliveries) == 1


def test_only_two_kilobytes_of_the_response_are_kept(receiver, secret, http):
    receiver.script(Reply(500, body="é" * 100_000))
    attempt = deliver(receiver, [secret], transport=http)
    assert len(attempt.response_excerpt.encode()) <= 2048
    assert attempt.response_excerpt.startswith("éé")


def test_refused_url_is_not_posted(receiver, secret, http):
    attempt = deliver(receiver, [secret], transport=http, allowed_hosts=())
    assert attempt.outcome == "retry"
    assert attempt.status_code is None
    assert "private, local or reserved" in attempt.error
    assert receiver.deliveries == []


def test_url_is_checked_again_before_posting(receiver, secret, http, monkeypatch):
    # The name resolved to a public address when it was saved; now it points at loopback.
    fake_dns(monkeypatch, {"hook.partner.example": ["127.0.0.1"]})
    url = receiver.url.replace("127.0.0.1", "hook.partner.example")
    attempt = post(url, "msg_1", now(), BODY, [secret], transport=http)
    assert attempt.outcome == "retry"
    assert "127.0.0.1" in attempt.error
    assert receiver.deliveries == []


def test_connection_to_a_private_address_is_refused_after_all(receiver, secret, http, monkeypatch):
    # DNS answered a public address to the check, then loopback to the connection.
    monkeypatch.setattr(webhooks, "check_url", lambda url, allowed_hosts: None)
    receiver.script(Reply(200, body="internal secrets"))
    attempt = post(receiver.url, "msg_1", now(), BODY, [secret], transport=http)
    assert attempt.outcome == "retry"
    assert attempt.status_code is None
    assert "127.0.0.1" in attempt.error
    assert attempt.response_excerpt == ""


def test_attempt_outcomes():
    def outcome(status):
        return Attempt(status, None, "", 1, "").outcome

    assert [outcome(s) for s in (200, 201, 204, 299)] == ["delivered"] * 4
    assert outcome(410) == "gone"
    assert [outcome(s) for s in (None, 301, 400, 404, 429, 500, 503)] == ["retry"] * 7
    with pytest.raises(AttributeError):
        Attempt(200, None, "", 1, "").status_code = 500  # type: ignore[misc]


# The receiver itself --------------------------------------------------------------------


def test_receiver_counts_duplicates_and_follows_a_script(secret, http):
    with WebhookReceiver(secret, replies=[500, Reply(429, retry_after="1")]) as r:
        statuses = [deliver(r, [secret], transport=http).status_code for _ in range(3)]
        assert statuses == [500, 429, 200]
        assert r.duplicates == 2
        assert r.ids == {"msg_1": 3}
        assert r.wait_for(3, timeout=1)
        r.responder = lambda delivery: 202
        assert deliver(r, [secret], msg_id="msg_9", transport=http).status_code == 202
        assert [d.status for d in r.deliveries] == [500, 429, 200, 202]
    # Stopped: the port no longer answers.
    assert deliver(r, [secret], transport=http, timeout=1).outcome == "retry"


def test_receiver_refuses_unsigned_requests(receiver):
    with httpx.Client() as http:
        unsigned = http.post(receiver.url, content=BODY)
        forged = http.post(
            receiver.url,
            content=BODY,
            headers={
                "webhook-id": "x",
                "webhook-timestamp": str(now()),
                "webhook-signature": "junk",
            },
        )
    assert (unsigned.status_code, forged.status_code) == (400, 400)
    assert [d.verified for d in receiver.deliveries] == [False, False]
