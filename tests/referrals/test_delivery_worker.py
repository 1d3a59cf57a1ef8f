"""The referral outbox under real processes: Redis, an RQ worker process, SMTP and a webhook
receiver that verifies every delivery with the ``standardwebhooks`` library.

One worker process (``flask --app inclusive worker``, with RQ's scheduler) serves the whole
module: retries are scheduled with ``enqueue_in`` and only a running scheduler moves them to
the queue, so a ``--burst`` worker (which looks at the scheduled jobs once, when it starts)
would not see them; and starting a worker costs seconds. Tests that need the worker gone
(Redis flushed before any worker ran, a worker killed with SIGKILL) stop or kill it and start
another. The worker runs with ``DELIVERY_RETRY_SCHEDULE=0,1,1`` (three attempts, about a
second apart), ``DELIVERY_LEASE_SECONDS=2`` and ``DELIVERY_SWEEP_GRACE=0``.

Every test commits for real (``committed``: the tables are emptied after each one).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask_babel import force_locale, gettext
from redis import Redis
from rq import Queue
from sqlalchemy import select

from faults.run import Proc
from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.partners.models import CapitalPartner
from inclusive.partners.services import add_partner_user
from inclusive.referrals import services
from inclusive.referrals.models import (
    Channel,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Referral,
    ReferralEvent,
    ReferralState,
    WebhookEndpoint,
)
from inclusive.referrals.outbox import sweep_deliveries
from inclusive.referrals.webhooks import new_secret
from inclusive.tenancy.scope import tenant_scope
from inclusive.timeutil import utcnow
from tests import factories
from tests.jobs.conftest import (
    SmtpServer,
    StoringHandler,
    _drop_app_redis,
    _free_port,
    _worker_environment,
)
from tests.webhook_receiver import Delivery as Received
from tests.webhook_receiver import Reply, WebhookReceiver

pytestmark = pytest.mark.committed

SCHEDULE = "0,1,1"
LEASE_SECONDS = 2
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
WAIT = 40.0  # seconds a test waits for the worker (it is slow to start on a busy machine)


# A worker process that lives across the module's tests -----------------------------------


class WorkerProcess(Proc):
    """``flask --app inclusive worker`` (with RQ's scheduler) in a process of its own; start,
    SIGKILL and stop are faults.run's, the waiting and the log are the tests'."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        super().__init__("worker", ["worker"], env, log_dir)
        self.log = log_dir / "worker.log"

    def start(self) -> None:
        assert self.process is None, "a worker is already running"
        super().start()

    def _last_start(self) -> str:
        return self.log.read_text(errors="replace").rsplit("=== start", 1)[-1]

    def wait_ready(self, timeout: float = WAIT) -> None:
        """Wait until the worker has swept and is about to listen on its queue."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " on queue " in self._last_start():
                return
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"the worker exited with {self.process.returncode}\n{self.output()}")
            time.sleep(0.05)
        pytest.fail(f"the worker did not start in {timeout} s\n{self.output()}")

    def output(self) -> str:
        return f"--- {self.log.name} ---\n{self.log.read_text(errors='replace')[-12000:]}"


@dataclass
class Outbox:
    """What the module's tests share: the queue, Redis, the SMTP server and the worker."""

    app: Flask
    redis: Redis
    queue: Queue
    smtp: SmtpServer
    worker: WorkerProcess

    def job_keys(self) -> list[str]:
        return sorted(k.decode() for k in self.redis.scan_iter("rq:job:delivery-*"))


@pytest.fixture(scope="module")
def outbox(
    app: Flask, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outbox]:
    keys = (
        "REDIS_URL",
        "RQ_QUEUE",
        "DELIVERY_RETRY_SCHEDULE",
        "DELIVERY_LEASE_SECONDS",
        "DELIVERY_SWEEP_GRACE",
    )
    saved = {key: app.config.get(key) for key in keys}
    _drop_app_redis(app)
    app.config.update(
        REDIS_URL=redis_url,
        RQ_QUEUE=f"inclusive-test-delivery-{uuid.uuid4().hex[:12]}",
        DELIVERY_RETRY_SCHEDULE=tuple(float(s) for s in SCHEDULE.split(",")),
        DELIVERY_LEASE_SECONDS=LEASE_SECONDS,
        DELIVERY_SWEEP_GRACE=0,
    )
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    handler = StoringHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    smtp = SmtpServer("127.0.0.1", controller.port, handler)
    env = _worker_environment(app, redis_url, smtp)
    env.update(
        DELIVERY_RETRY_SCHEDULE=SCHEDULE,
        DELIVERY_LEASE_SECONDS=str(LEASE_SECONDS),
        DELIVERY_SWEEP_GRACE="0",
        WEBHOOK_TIMEOUT="15",
    )
    env.pop("WEBHOOK_ALLOWED_HOSTS", None)  # outside production: 127.0.0.1 is allowed
    worker = WorkerProcess(env, tmp_path_factory.mktemp("delivery-worker"))
    queue = Queue(app.config["RQ_QUEUE"], connection=redis)
    state = Outbox(app, redis, queue, smtp, worker)
    worker.start()
    try:
        yield state
    finally:
        worker.stop()
        controller.stop()
        redis.flushdb()
        redis.close()
        _drop_app_redis(app)
        app.config.update(saved)


@pytest.fixture
def live(outbox: Outbox) -> Iterator[Outbox]:
    """The module's services, with a running worker and an empty mailbox for this test."""
    if outbox.worker.process is None:
        outbox.worker.start()
    outbox.smtp.handler.received.clear()
    yield outbox


@pytest.fixture(autouse=True)
def _in_org(org) -> Iterator[None]:
    """Each test acts for ``org`` (rows read after a commit are reloaded in its scope)."""
    with tenant_scope(org.id):
        yield


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver([new_secret()]) as server:
        yield server


class Replies:
    """A receiver's answers in order (then 200), with the time each request arrived."""

    def __init__(self, *replies: Reply | int) -> None:
        self.replies = list(replies)
        self.arrivals: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, delivery: Received) -> Reply | int:
        with self.lock:
            self.arrivals.append(time.monotonic())
            return self.replies.pop(0) if self.replies else 200


# Data ------------------------------------------------------------------------------------


def _hook(partner: CapitalPartner, receiver: WebhookReceiver) -> WebhookEndpoint:
    row = WebhookEndpoint(partner_id=partner.id, url=receiver.url, secret=receiver.secrets[0])
    db.session.add(row)
    db.session.flush()
    return row


def _partner_user(partner: CapitalPartner, role: str, email: str, locale: str) -> User:
    user = factories.UserFactory(email=email, name=email.split("@")[0].title(), locale=locale)
    add_partner_user(partner, user, role)
    return user


def _send(referral: Referral, org_id: int, actor: User) -> int:
    with tenant_scope(org_id):
        services.send(referral, actor)
    db.session.commit()
    return referral.id


def _fresh() -> None:
    """End this process's transaction: the next read sees what the worker committed."""
    db.session.rollback()


def _rows(org_id: int, referral_id: int) -> list[Delivery]:
    _fresh()
    with tenant_scope(org_id):
        query = (
            select(Delivery)
            .where(Delivery.referral_id == referral_id)
            .order_by(Delivery.created_at, Delivery.channel, Delivery.recipient)
        )
        return list(db.session.scalars(query))


def _attempts(org_id: int, delivery_id: str) -> list[DeliveryAttempt]:
    with tenant_scope(org_id):
        query = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.number)
        )
        return list(db.session.scalars(query))


def _referral(org_id: int, referral_id: int) -> Referral:
    _fresh()
    with tenant_scope(org_id):
        return db.session.get(Referral, referral_id)


def _events(org_id: int, referral_id: int) -> list[str]:
    _fresh()
    with tenant_scope(org_id):
        query = select(ReferralEvent.kind).where(ReferralEvent.referral_id == referral_id)
        return list(db.session.scalars(query.order_by(ReferralEvent.id)))


def _wait(condition: Callable[[], Any], what: str, live: Outbox, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out ({timeout} s) waiting for {what}\n{live.worker.output()}")


def _settled(org_id: int, referral_id: int, count: int | None = None) -> Callable[[], Any]:
    """True once the referral has deliveries (``count`` of them) and none is open."""

    def check() -> list[Delivery] | None:
        rows = _rows(org_id, referral_id)
        if not rows or (count is not None and len(rows) < count):
            return None
        return None if any(r.status in OPEN for r in rows) else rows

    return check


def _webhook(rows: list[Delivery]) -> Delivery:
    (row,) = [r for r in rows if r.channel == Channel.WEBHOOK]
    return row


def _in(locale: str, msgid: str, **values: object) -> str:
    with force_locale(locale):
        return gettext(msgid, **values)


# The tests -------------------------------------------------------------------------------


def test_sending_delivers_the_signed_webhook_and_emails_each_partner_user_in_their_language(
    live, receiver, app, org, mfi, staff, draft
):
    _hook(mfi, receiver)
    _partner_user(mfi, "partner_admin", "rosa@andina.example", "es")
    _partner_user(mfi, "loan_officer", "joao@andina.example", "pt")
    org_id = org.id
    referral_id = _send(draft, org_id, staff["manager"])

    rows = _wait(_settled(org_id, referral_id, 3), "three deliveries", live)

    assert sorted((r.channel, r.status) for r in rows) == [
        ("email", "delivered"),
        ("email", "delivered"),
        ("webhook", "delivered"),
    ], live.worker.output()
    hook = _webhook(rows)
    # The webhook: one request, verified by standardwebhooks, webhook-id = the row's msg_ id.
    assert receiver.wait_for(1)
    (got,) = receiver.deliveries
    assert got.verified, got.headers
    assert got.webhook_id == hook.webhook_id == f"msg_{hook.id.replace('-', '')}"
    assert got.body["type"] == "referral.sent"
    assert got.body["data"]["referral_id"] == referral_id
    assert got.body["data"]["state"] == "sent"
    assert got.body == hook.payload
    # The e-mails: one per partner user, each in the user's own language.
    mails = {tuple(m.rcpt_tos): m for m in live.smtp.handler.messages()}
    assert set(mails) == {("rosa@andina.example",), ("joao@andina.example",)}, live.worker.output()
    for address, locale in (("rosa@andina.example", "es"), ("joao@andina.example", "pt")):
        mail = mails[(address,)]
        assert f'<html lang="{locale}">' in mail.html()
        assert _in(locale, "Hello,") in mail.text()
        assert f"#{referral_id}" in mail.text()
    # Every attempt is recorded.
    for row in rows:
        assert row.attempts == 1
        assert row.delivered_at is not None and row.lease_until is None
        (attempt,) = _attempts(org_id, row.id)
        assert (attempt.number, attempt.outcome) == (1, "delivered")
        assert attempt.status_code == (200 if row.channel == Channel.WEBHOOK else None)


def test_a_500_then_a_429_are_retried_with_the_same_webhook_id_and_retry_after_is_honoured(
    live, receiver, org, mfi, staff, draft
):
    replies = Replies(Reply(500), Reply(429, retry_after="2"), Reply(200))
    receiver.responder = replies
    _hook(mfi, receiver)
    org_id = org.id
    referral_id = _send(draft, org_id, staff["manager"])

    rows = _wait(_settled(org_id, referral_id), "the retried webhook", live)

    hook = _webhook(rows)
    assert hook.status == DeliveryStatus.DELIVERED, hook.last_error
    assert [d.status for d in receiver.deliveries] == [500, 429, 200]
    assert all(d.verified for d in receiver.deliveries)
    assert set(receiver.ids) == {hook.webhook_id}
    assert receiver.duplicates == 2
    # The timestamps are signed afresh on every attempt; the body is the same bytes.
    assert len({d.raw for d in receiver.deliveries}) == 1
    first, second, third = replies.arrivals
    assert second - first >= 0.8  # schedule[1] = 1 s, less 10 % jitter
    # RQ's scheduler keeps whole seconds (it may run a job up to 1 s early) and the claim
    # takes a row up to 1 s before it is due: a receiver's Retry-After must still hold.
    assert third - second >= 2.0, f"Retry-After: 2 was not honoured ({third - second:.2f} s)"
    attempts = _attempts(org_id, hook.id)
    assert [(a.number, a.status_code, a.outcome) for a in attempts] == [
        (1, 500, "retry"),
        (2, 429, "retry"),
        (3, 200, "delivered"),
    ]
    assert hook.attempts == 3


def test_a_410_disables_the_endpoint_kills_the_delivery_and_nothing_more_is_posted(
    live, receiver, org, mfi, staff, draft
):
    receiver.responder = Replies(Reply(410))
    endpoint_id = _hook(mfi, receiver).id
    _partner_user(mfi, "partner_admin", "paula@andina.example", "es")
    org_id = org.id
    referral_id = _send(draft, org_id, staff["manager"])

    _wait(
        lambda: _referral(org_id, referral_id).state == ReferralState.DELIVERY_FAILED,
        "the referral to show delivery_failed",
        live,
    )
    rows = _wait(_settled(org_id, referral_id), "the deliveries of delivery_failed", live)

    hook = _webhook(rows)
    assert hook.status == DeliveryStatus.DEAD
    assert [(a.status_code, a.outcome) for a in _attempts(org_id, hook.id)] == [(410, "gone")]
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    assert not endpoint.enabled
    assert "410" in endpoint.disabled_reason
    # The partner's admin heard of the failure by e-mail (and never by the webhook).
    to_paula = [m for m in live.smtp.handler.messages() if m.rcpt_tos == ["paula@andina.example"]]
    assert len(to_paula) == 2  # the referral, then its failed delivery
    # Staff cannot resend it while the endpoint stays disabled.
    referral = _referral(org_id, referral_id)
    with pytest.raises(services.ReferralError, match="410"):
        services.resend_deliveries(referral, staff["admin"])
    db.session.rollback()
    # A later event writes no webhook delivery and posts nothing.
    referral = _referral(org_id, referral_id)
    with tenant_scope(org_id):
        services.withdraw(referral, staff["manager"], "Sent by mistake.")
    db.session.commit()
    _wait(_settled(org_id, referral_id), "the withdrawal's e-mails", live)
    time.sleep(0.5)
    assert len(receiver.deliveries) == 1
    assert [r.channel for r in _rows(org_id, referral_id)].count("webhook") == 1


def test_a_webhook_failing_every_attempt_dies_tells_the_partner_admin_then_resend_delivers(
    live, receiver, org, mfi, staff, draft
):
    receiver.responder = lambda delivery: 500
    _hook(mfi, receiver)
    _partner_user(mfi, "partner_admin", "paula@andina.example", "pt")
    org_id = org.id
    referral_id = _send(draft, org_id, staff["manager"])

    _wait(
        lambda: _referral(org_id, referral_id).state == ReferralState.DELIVERY_FAILED,
        "the referral to show delivery_failed",
        live,
    )
    rows = _wait(_settled(org_id, referral_id), "every delivery to settle", live)

    hook = _webhook(rows)
    assert hook.status == DeliveryStatus.DEAD
    assert hook.attempts == len(SCHEDULE.split(","))
    assert [a.outcome for a in _attempts(org_id, hook.id)] == ["retry", "retry", "retry"]
    assert [d.status for d in receiver.deliveries] == [500, 500, 500]
    assert set(receiver.ids) == {hook.webhook_id}
    assert "delivery_failed" in _events(org_id, referral_id)
    mails = live.smtp.handler.messages()
    to_paula = [m for m in mails if m.rcpt_tos == ["paula@andina.example"]]
    assert len(to_paula) == 2, [m.rcpt_tos for m in mails]
    assert '<html lang="pt">' in to_paula[-1].html()
    assert any(m.rcpt_tos == ["julia@acme.example"] for m in mails)  # the program manager

    # The receiver is fixed; staff send the failed delivery again: same row, same webhook-id.
    receiver.responder = None
    referral = _referral(org_id, referral_id)
    with tenant_scope(org_id):
        assert services.resend_deliveries(referral, staff["admin"]) == 1
    db.session.commit()
    _wait(
        lambda: _webhook(_rows(org_id, referral_id)).status == DeliveryStatus.DELIVERED,
        "the resent webhook",
        live,
    )

    assert [d.status for d in receiver.deliveries] == [500, 500, 500, 200]
    assert set(receiver.ids) == {hook.webhook_id}
    assert _referral(org_id, referral_id).state == ReferralState.SENT
    assert _events(org_id, referral_id)[-1] == "resent"


def test_a_rolled_back_event_delivers_nothing(live, receiver, org, mfi, staff, draft):
    _hook(mfi, receiver)
    _partner_user(mfi, "partner_admin", "paula@andina.example", "en")
    org_id = org.id
    db.session.commit()
    referral_id = draft.id
    with tenant_scope(org_id):
        services.send(draft, staff["manager"])  # the event, its deliveries and their calls
        db.session.flush()
        written = db.session.scalars(
            select(Delivery.id).where(Delivery.referral_id == referral_id)
        ).all()
    assert len(written) == 2  # the webhook and the admin's e-mail, not yet committed
    db.session.rollback()

    time.sleep(1.5)  # the worker is listening: give it time to do anything at all
    assert _rows(org_id, referral_id) == []
    assert [k for k in live.job_keys() if any(w in k for w in written)] == []
    assert live.queue.count == 0
    assert receiver.deliveries == []
    assert live.smtp.handler.messages() == []
    assert _referral(org_id, referral_id).state == ReferralState.DRAFT


def test_redis_flushed_after_the_commit_the_sweep_sends_it_again_and_it_arrives_once(
    live, receiver, app, org, mfi, staff, draft
):
    live.worker.stop()  # no worker runs between the commit and the flush
    _hook(mfi, receiver)
    org_id = org.id
    referral_id = _send(draft, org_id, staff["manager"])
    (row,) = _rows(org_id, referral_id)
    assert live.queue.job_ids == [f"delivery-{row.id}-1"]

    live.redis.flushdb()
    assert live.queue.count == 0 and live.job_keys() == []
    assert sweep_deliveries(app) == 1  # pending past the grace (0 s here): sent again
    assert live.queue.count == 1
    live.worker.start()  # its start-up sweep sends it once more: the claim lets one through

    _wait(_settled(org_id, referral_id), "the swept delivery", live)
    time.sleep(1.0)
    (row,) = _rows(org_id, referral_id)
    assert row.status == DeliveryStatus.DELIVERED
    assert receiver.ids == {row.webhook_id: 1}
    assert len(_attempts(org_id, row.id)) == 1


def test_a_worker_killed_mid_delivery_leaves_a_lease_and_the_sweep_delivers_it_again(
    live, receiver, app, org, mfi, staff, draft
):
    receiver.responder = Replies(Reply(200, delay=30))  # holds the first request open
    _hook(mfi, receiver)
    org_id = org.id
    live.worker.wait_ready()
    before = utcnow()
    referral_id = _send(draft, org_id, staff["manager"])
    assert receiver.wait_for(1, timeout=WAIT), live.worker.output()

    (row,) = _rows(org_id, referral_id)
    assert row.status == DeliveryStatus.SENDING
    # Leased when claimed, after the send (the lease may be over already on a busy machine).
    assert row.lease_until is not None
    assert row.lease_until >= before + timedelta(seconds=LEASE_SECONDS)
    # A delivery is a short job: the worker posts it itself, no work horse (PlatformWorker).
    assert live.worker.kill() == 0, "a work horse was posting the delivery"
    (row,) = _rows(org_id, referral_id)
    assert (row.status, row.attempts) == (DeliveryStatus.SENDING, 1)
    assert _attempts(org_id, row.id) == []  # the killed attempt recorded nothing

    _wait(lambda: _rows(org_id, referral_id)[0].lease_until < utcnow(), "the lease", live)
    assert sweep_deliveries(app) == 1
    live.worker.start()

    _wait(_settled(org_id, referral_id), "the delivery after the kill", live)
    (row,) = _rows(org_id, referral_id)
    assert row.status == DeliveryStatus.DELIVERED
    assert row.attempts == 2
    assert [(a.number, a.outcome) for a in _attempts(org_id, row.id)] == [(2, "delivered")]
    # The same webhook-id twice: a duplicate the receiver can drop, and nothing lost.
    assert receiver.ids == {row.webhook_id: 2}
    assert receiver.duplicates == 1
    assert all(d.verified for d in receiver.deliveries)
