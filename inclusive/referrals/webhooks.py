"""Signed webhook transport: signing, retry timing, URL safety and one HTTP attempt.

Deliveries follow the Standard Webhooks specification (https://www.standardwebhooks.com):
every request carries ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``; the
signature is ``v1,`` + base64 of HMAC-SHA256 over ``"{id}.{timestamp}.{body}"`` keyed by the
base64-decoded secret after ``whsec_``. During a secret rotation both secrets sign, and the
receiver accepts a delivery when any signature matches.

This module is pure transport: it knows no database and no Flask app; settings (allowed
hosts, timeouts, retry schedule) come in as arguments. Sign every attempt afresh with the
current time: receivers reject a ``webhook-timestamp`` more than five minutes away from theirs.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import functools
import hashlib
import hmac
import ipaddress
import math
import os
import random
import re
import secrets as _secrets
import socket
import ssl
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import SplitResult, urlsplit

import httpx
from flask_babel import gettext as _

from inclusive.refusals import Refused

__all__ = [
    "MAX_RETRY_AFTER",
    "MAX_URL_LENGTH",
    "RESPONSE_EXCERPT_BYTES",
    "RETRY_SCHEDULE",
    "SECRET_PREFIX",
    "USER_AGENT",
    "Attempt",
    "Outcome",
    "WebhookUrlError",
    "check_url",
    "new_secret",
    "parse_retry_after",
    "post",
    "retry_delay",
    "signature",
    "signed_headers",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the prefix of every secret, not a secret
USER_AGENT = "Inclusive-Webhooks/1.0"
#: Seconds to wait before each attempt, counted from the failure of the previous one
#: (Standard Webhooks: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h): 8 attempts.
RETRY_SCHEDULE: tuple[float, ...] = (
    0,
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    10 * 3600,
)
#: A receiver's Retry-After is honoured up to this many seconds (24 h).
MAX_RETRY_AFTER = 24 * 3600.0
JITTER = 0.10
MAX_URL_LENGTH = 2000
RESPONSE_EXCERPT_BYTES = 2048
MAX_ERROR_LENGTH = 500

Outcome = Literal["delivered", "gone", "retry"]

_DELTA_SECONDS = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# Secrets and signatures -----------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode("ascii")


def _secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: the base64-decoded part after ``whsec_``."""
    raw = secret.removeprefix(SECRET_PREFIX).strip()
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not valid base64") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64 HMAC-SHA256>`` signature of one message under one secret."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(
    msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """The request headers of a delivery, signed with every secret given (two in a rotation)."""
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of secrets, not one string")
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign a delivery")
    ts = int(timestamp)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(signature(s, msg_id, ts, body) for s in secrets),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


# Retry timing ---------------------------------------------------------------------------

_default_rng = random.Random()  # noqa: S311 -- jitter, not cryptography


def retry_delay(
    attempt_number: int,
    schedule: Sequence[float],
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait after ``attempt_number`` attempts have failed; None when none are left.

    ``schedule[n]`` is the base delay before attempt ``n + 1`` (``schedule[0]`` is the first
    attempt, normally immediate). The delay gets ±10 % jitter and is never shorter than the
    receiver's ``Retry-After`` (itself capped at 24 hours).
    """
    if attempt_number < 0:
        raise ValueError("attempt_number cannot be negative")
    if attempt_number >= len(schedule):
        return None
    base = float(schedule[attempt_number])
    delay = base * (rng or _default_rng).uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return max(delay, 0.0)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP-date); None if junk.

    An HTTP-date in the past gives 0. ``now`` should be timezone-aware (naive means UTC).
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _DELTA_SECONDS.match(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


# URL safety -----------------------------------------------------------------------------


class WebhookUrlError(Refused):
    """A webhook address that is refused; the message says why, in the reader's language."""


def _ip(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> Iterator[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to (mapped, 6to4, Teredo, NAT64)."""
    if ip.ipv4_mapped is not None:
        yield ip.ipv4_mapped
    if ip.sixtofour is not None:
        yield ip.sixtofour
    if ip.teredo is not None:
        yield from ip.teredo
    if ip in _NAT64:
        yield ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def _is_forbidden(ip: _IPAddress) -> bool:
    """Whether an address is not a public unicast one (loopback, private, link-local...)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return True
        if any(_is_forbidden(inner) for inner in _embedded_ipv4(ip)):
            return True
        if ip.ipv4_mapped is not None:
            return False  # judged by its IPv4 address alone
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _allowed(allowed_hosts: Collection[str]) -> tuple[set[str], set[_IPAddress]]:
    names: set[str] = set()
    ips: set[_IPAddress] = set()
    for entry in allowed_hosts:
        entry = entry.strip().strip("[]").lower()
        address = _ip(entry)
        if address is not None:
            ips.add(address)
        elif entry:
            names.add(entry.rstrip("."))
    return names, ips


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not url.strip():
        raise WebhookUrlError(_("Enter the address of the webhook endpoint."))
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlError(
            _("The webhook address is too long (at most %(count)s characters).", count="2,000")
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise WebhookUrlError(
            _("The webhook address must not contain spaces or control characters.")
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError as exc:
        raise WebhookUrlError(_("The webhook address is not a valid URL.")) from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookUrlError(_("The webhook address must start with https:// or http://."))
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError(_("The webhook address must not contain a user name or password."))
    if not parts.hostname:
        raise WebhookUrlError(_("The webhook address has no host name."))
    return parts


def check_url(url: str, allowed_hosts: Collection[str]) -> None:
    """Refuse a webhook address that is malformed or leads to a non-public network address.

    The address must be ``http`` or ``https``, have a host, hold no credentials and be at
    most 2,000 characters long. The host, and every address it resolves to, must be public
    unless the host or that address is in ``allowed_hosts``. IP literals need no DNS.

    :raises WebhookUrlError: with a message for the person who entered the address.
    """
    hosts, port = _hosts(url)
    names, ips = _allowed_hosts(tuple(allowed_hosts))
    for host in hosts:
        if host in names:
            continue
        literal = _ip(host)
        addresses = [literal] if literal is not None else _resolve(host, port)
        for address in addresses:
            if address not in ips and _is_forbidden(address):
                raise _private_address(address)


@functools.lru_cache(maxsize=256)
def _hosts(url: str) -> tuple[tuple[str, ...], int | None]:
    """The hosts to judge in a well-formed address (as urllib and as the HTTP client read
    it: parsers disagree on odd URLs), and its port. Parsed once per address and process:
    a worker checks the same few endpoints again before every delivery."""
    parts = _split(url)
    try:
        client_url = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise WebhookUrlError(_("The webhook address is not a valid URL.")) from exc
    if client_url.userinfo:
        raise WebhookUrlError(_("The webhook address must not contain a user name or password."))
    hosts = tuple(dict.fromkeys(h.lower().rstrip(".") for h in (parts.hostname, client_url.host)))
    if not all(hosts):
        raise WebhookUrlError(_("The webhook address has no host name."))
    return hosts, parts.port


@functools.lru_cache(maxsize=16)
def _allowed_hosts(allowed_hosts: tuple[str, ...]) -> tuple[frozenset[str], frozenset[_IPAddress]]:
    names, ips = _allowed(allowed_hosts)
    return frozenset(names), frozenset(ips)


def _private_address(address: _IPAddress) -> WebhookUrlError:
    return WebhookUrlError(
        _(
            "The webhook address leads to a private, local or reserved network "
            "address (%(address)s); use a public address.",
            address=str(address),
        )
    )


def _check_peer(response: httpx.Response, url: str, allowed_hosts: Collection[str]) -> None:
    """Refuse a connection that reached a non-public address after all (DNS rebinding)."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not peer:
        return  # a transport without sockets (tests' MockTransport): nothing to judge
    address = _ip(str(peer[0]))
    names, ips = _allowed_hosts(tuple(allowed_hosts))
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if address is None or host in names or address in ips:
        return
    if _is_forbidden(address):
        raise _private_address(address)


def _resolve(host: str, port: int | None) -> list[_IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port or None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookUrlError(
            _(
                "The host name %(host)s of the webhook address could not be found; "
                "check the address.",
                host=host,
            )
        ) from exc
    addresses: list[_IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = _ip(str(sockaddr[0]))
        if address is None:  # an address family we cannot judge: refuse rather than guess
            raise WebhookUrlError(
                _("The host name %(host)s of the webhook address could not be checked.", host=host)
            )
        addresses.append(address)
    if not addresses:
        raise WebhookUrlError(
            _(
                "The host name %(host)s of the webhook address could not be found; "
                "check the address.",
                host=host,
            )
        )
    return addresses


# One attempt ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt gave: the status (None without a response) or the error."""

    status_code: int | None
    retry_after: float | None
    error: str
    duration_ms: int
    response_excerpt: str

    @property
    def outcome(self) -> Outcome:
        """``delivered`` (2xx), ``gone`` (410: disable the endpoint) or ``retry``."""
        if self.status_code is not None and 200 <= self.status_code < 300:
            return "delivered"
        if self.status_code == 410:
            return "gone"
        return "retry"


_transport: httpx.HTTPTransport | None = None
_transport_pid: int | None = None
_transport_lock = threading.Lock()


def _forget_transport() -> None:
    """In a forked child: drop the parent's connection pool without closing its sockets."""
    global _transport, _transport_pid, _transport_lock
    _transport, _transport_pid, _transport_lock = None, None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_transport)


@atexit.register
def _close_transport() -> None:
    """Close the kept-alive connections when the process ends."""
    if _transport is not None and _transport_pid == os.getpid():
        _transport.close()


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """The TLS settings every connection pool shares (certifi's CA store, as httpx's default).

    Reading the CA store costs ~25 ms: once per process, not once per pool."""
    global _tls
    if _tls is None:
        _tls = httpx.create_ssl_context(trust_env=False)
    return _tls


def _shared_transport() -> httpx.HTTPTransport:
    """The process's connection pool (keep-alive); a new one after a fork.

    A transport, not an ``httpx.Client``: a delivery needs none of a client's cookies, auth,
    redirects or proxies from the environment (a proxy would defeat the URL check), and the
    client's layers cost about as much CPU as the request itself."""
    global _transport, _transport_pid
    with _transport_lock:
        if _transport is None or _transport_pid != os.getpid():
            _transport = httpx.HTTPTransport(
                verify=_tls_context(),
                trust_env=False,
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
            )
            _transport_pid = os.getpid()
        return _transport


def _since(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_LENGTH]


def post(
    url: str,
    msg_id: str,
    timestamp: int,
    body: bytes,
    secrets: Sequence[str],
    *,
    timeout: float = 15.0,
    allowed_hosts: Collection[str] = (),
    transport: httpx.BaseTransport | None = None,
) -> Attempt:
    """Make one signed delivery attempt; never raises for a refused URL or a network error.

    The URL is checked again right before posting (DNS may have changed). Redirects are not
    followed (they count as a failure to retry), and at most 2 KB of the response is read.
    ``transport`` defaults to the process's shared connection pool.
    """
    start = time.monotonic()
    headers = signed_headers(msg_id, timestamp, body, secrets)
    headers["accept-encoding"] = "identity"  # the excerpt is read raw: no decompression
    try:
        check_url(url, allowed_hosts)
    except WebhookUrlError as exc:
        return Attempt(None, None, str(exc)[:MAX_ERROR_LENGTH], _since(start), "")
    headers["user-agent"] = USER_AGENT
    headers["accept"] = "*/*"
    try:
        request = httpx.Request(
            "POST",
            url,
            content=body,
            headers=headers,
            extensions={"timeout": httpx.Timeout(timeout).as_dict()},
        )
        response = (transport or _shared_transport()).handle_request(request)
        try:
            _check_peer(response, url, allowed_hosts)
            excerpt = _read_excerpt(response, deadline=start + timeout)
            status = response.status_code
            retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        finally:
            response.close()
    except WebhookUrlError as exc:  # connected to a private address after all: no excerpt
        return Attempt(None, None, str(exc)[:MAX_ERROR_LENGTH], _since(start), "")
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, ValueError) as exc:
        return Attempt(None, None, _describe(exc), _since(start), "")
    return Attempt(status, retry_after, "", _since(start), excerpt)


def _read_excerpt(response: httpx.Response, deadline: float) -> str:
    """Up to 2 KB of the response body; stops early past the deadline."""
    data = b""
    try:
        for chunk in response.iter_raw():
            data += chunk
            if len(data) >= RESPONSE_EXCERPT_BYTES or time.monotonic() > deadline:
                break
    except (httpx.HTTPError, httpx.StreamError, OSError):
        pass  # the status is what counts; a broken body leaves a shorter excerpt
    return data[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")
