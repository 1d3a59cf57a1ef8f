"""A webhook receiver on 127.0.0.1 for tests and fault-injection scripts.

It verifies every delivery with the ``standardwebhooks`` library (the reference
implementation a partner would use), records it, and answers as scripted::

    with WebhookReceiver([secret]) as receiver:
        receiver.script(Reply(500), Reply(429, retry_after="7"), Reply(200, delay=0.5))
        ...  # deliver to receiver.url
        receiver.wait_for(3)
        assert receiver.duplicates == 0

A delivery that fails verification is answered 400 (without using up a scripted reply) and
recorded with ``verified=False``. Replies come from the script queue first, then from
``receiver.responder`` (a callable taking the :class:`Delivery`) if set, else 200.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one delivery: status, optional Retry-After, delay in seconds."""

    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """One request the receiver got."""

    webhook_id: str | None
    timestamp: int | None
    body: Any  # the parsed JSON body, None when it is not JSON
    verified: bool
    raw: bytes
    headers: dict[str, str]
    path: str
    status: int  # what the receiver answered


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a kept-alive connection never holds up the end of a test
    receiver: WebhookReceiver

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a worker killed mid-request, a test's client timing out)
        is not an error of the receiver's; anything else is printed as usual."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)) or self.receiver._stopping.is_set():
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """End the kept-alive connections too: a stopped receiver answers nothing more."""
        with self.connections_lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.connections.clear()


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as a partner's web server answers: one connection carries
    many deliveries (werkzeug's development server closes every connection)."""

    protocol_version = "HTTP/1.1"
    # The head and the body are two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK of the head (up to 40 ms on Linux). Web servers send at once.
    disable_nagle_algorithm = True
    timeout = 30  # an idle kept-alive connection is closed after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        try:
            raw = self._body()
        except ValueError:
            self._send(Reply(400, body="bad request body"), close=True)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.receiver._receive(self.command, urlsplit(self.path).path, raw, headers)
        self._send(reply)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        if length < 0:
            raise ValueError("negative content-length")
        return self.rfile.read(length) if length else b""

    def _send(self, reply: Reply, close: bool = False) -> None:
        body = reply.body.encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.retry_after is not None:
            self.send_header("Retry-After", reply.retry_after)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.receiver.quiet:
            super().log_message(format, *args)


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 (free port) that verifies and records deliveries."""

    def __init__(
        self,
        secrets: Sequence[str] | str = (),
        *,
        replies: Iterable[Reply | int] = (),
        responder: Callable[[Delivery], Reply | int] | None = None,
        path: str = "/webhook",
        quiet: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._secrets: tuple[str, ...] = ()
        self.secrets = secrets  # type: ignore[assignment]
        self._queue: deque[Reply] = deque(_reply(r) for r in replies)
        self.responder = responder
        self._deliveries: list[Delivery] = []
        self._path = path
        self.quiet = quiet
        self._server = _Server(("127.0.0.1", 0))
        self._server.receiver = self
        self.port: int = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"webhook-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()

    # Settings ---------------------------------------------------------------------------

    @property
    def secrets(self) -> list[str]:
        """The secrets a delivery may be signed with (any one of them is enough)."""
        with self._lock:
            return list(self._secrets)

    @secrets.setter
    def secrets(self, value: Sequence[str] | str) -> None:
        values = (value,) if isinstance(value, str) else tuple(value)
        with self._lock:
            self._secrets = values

    def script(self, *replies: Reply | int) -> None:
        """Queue the answers to the next deliveries (a bare int is a status)."""
        with self._lock:
            self._queue.extend(_reply(r) for r in replies)

    # Records ----------------------------------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._deliveries)

    @property
    def verified(self) -> list[Delivery]:
        """The deliveries whose signature verified."""
        return [d for d in self.deliveries if d.verified]

    @property
    def ids(self) -> Counter[str | None]:
        """How many times each webhook-id arrived."""
        return Counter(d.webhook_id for d in self.deliveries)

    @property
    def duplicates(self) -> int:
        """Deliveries whose webhook-id had already arrived (retries and redeliveries)."""
        counts = self.ids
        return sum(n - 1 for n in counts.values())

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` deliveries have arrived; False on timeout."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._deliveries) >= count, timeout)

    def clear(self) -> None:
        """Forget the deliveries and the scripted replies."""
        with self._lock:
            self._deliveries.clear()
            self._queue.clear()

    # Life -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving and close the socket; sleeping replies wake up and end."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Serving ----------------------------------------------------------------------------

    def _verify(self, raw: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(raw, headers, json_parse=False)
            except Exception:  # the library also raises ValueError, binascii.Error...
                continue
            return True
        return False

    def _next_reply(self, delivery: Delivery) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return _reply(self.responder(delivery))
        return Reply()

    def _receive(self, method: str, path: str, raw: bytes, headers: dict[str, str]) -> Reply:
        verified = method == "POST" and self._verify(raw, headers)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        try:
            timestamp: int | None = int(headers.get("webhook-timestamp", ""))
        except ValueError:
            timestamp = None
        delivery = Delivery(
            webhook_id=headers.get("webhook-id"),
            timestamp=timestamp,
            body=body,
            verified=verified,
            raw=raw,
            headers=headers,
            path=path,
            status=400,
        )
        reply = self._next_reply(delivery) if verified else Reply(400, body="invalid signature")
        with self._arrived:
            self._deliveries.append(replace(delivery, status=reply.status))
            self._arrived.notify_all()
        if reply.delay > 0:
            self._stopping.wait(reply.delay)
        return reply


def _reply(value: Reply | int) -> Reply:
    return value if isinstance(value, Reply) else Reply(int(value))
