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

import json
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from standardwebhooks.webhooks import Webhook
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


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


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


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
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1",
            0,
            self._wsgi,
            threaded=True,
            request_handler=_QuietHandler if quiet else None,
        )
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

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        raw = request.get_data(cache=False)
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = request.method == "POST" and self._verify(raw, headers)
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
            path=request.path,
            status=400,
        )
        reply = self._next_reply(delivery) if verified else Reply(400, body="invalid signature")
        with self._arrived:
            self._deliveries.append(replace(delivery, status=reply.status))
            self._arrived.notify_all()
        if reply.delay > 0:
            self._stopping.wait(reply.delay)
        response = Response(reply.body, status=reply.status, headers=dict(reply.headers))
        if reply.retry_after is not None:
            response.headers["Retry-After"] = reply.retry_after
        return response(environ, start_response)


def _reply(value: Reply | int) -> Reply:
    return value if isinstance(value, Reply) else Reply(int(value))
