"""`make faults`: the referral outbox under SIGKILL, a Redis flush and a rollback.

A scratch PostgreSQL database (``inclusive_faults``, dropped and migrated at start), a Redis
database of its own (9), a verifying webhook receiver on 127.0.0.1, two ``flask worker``
processes and ``flask cron`` (sweeping the outbox every second). The run writes
FAULTS_EVENTS referral events (sends and partner transitions, committed in batches) while a
chaos loop SIGKILLs a random worker (with its work horse) at random intervals and restarts
it, and Redis is flushed once mid-run. One event is written and rolled back on purpose.
Then it waits until every outbox row is delivered or dead and prints::

    delivered N/N, lost L, duplicates D (all with a repeated webhook-id)

N: the webhook deliveries expected (one per event); L: expected webhook-ids the receiver
never accepted; D: receptions beyond the first of an id. It exits 1 unless L is 0, every
reception verified, no event arrived under two webhook-ids and the rolled-back event never
arrived.

Environment: FAULTS_EVENTS (1000), FAULTS_DATABASE (inclusive_faults), FAULTS_SERVER_URL
(postgresql://postgres@127.0.0.1:5432/postgres), FAULTS_REDIS_URL
(redis://127.0.0.1:6379/9), FAULTS_WORKERS (2), FAULTS_WORKER_ARGS ("", or "--simple"),
FAULTS_TIMEOUT (180 s to settle), FAULTS_SEED (random).
"""

# ruff: noqa: S311, S603 -- chaos needs no cryptography; the commands are this project's own
from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET_KEY = "faults-secret-key-" + "x" * 40
ALL_SCOPES = ["identity", "contact", "program_record", "economic_figures", "offtake_ledger"]
#: The partner's transitions after the send, in order; each is one more event.
TRANSITIONS = ("acknowledge", "start_review", "approve")

LEASE_SECONDS = 3
RETRY_SCHEDULE = "0,1,2,4"
SWEEP_GRACE = 30  # the default; it must exceed the queue's backlog (see README)
WEBHOOK_TIMEOUT = 2  # below the lease: a live attempt is never taken over by another worker
BATCH = 25
BACKLOG = 100  # the producer waits while more jobs than this are queued
ERROR_RATE = 0.02  # the receiver answers 500 to this share of first receptions
SLOW_RATE = 0.1  # and takes SLOW_REPLY seconds to answer this share
SLOW_REPLY = 0.5
KILL_EVERY = (1.0, 3.0)  # seconds between SIGKILLs, drawn uniformly


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").replace("_", "").replace(",", "").strip()
    return int(raw) if raw else default


def say(line: str) -> None:
    print(line, flush=True)


# Databases and environments ----------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create ``name`` on the server; return its URL (migrated by the caller)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def platform_env(
    database_url: str, redis_url: str, queue: str, instance: Path, **settings: Any
) -> dict[str, str]:
    """The environment of the platform's processes (and of this one's app)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "RQ_", "MAIL_", "DELIVERY_", "WEBHOOK_"))
    }
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        RQ_QUEUE=queue,
        INSTANCE_PATH=str(instance),
        SECRET_KEY=SECRET_KEY,
        INCLUSIVE_ENV="development",  # webhooks to 127.0.0.1 are allowed outside production
        BASE_URL="http://127.0.0.1:5000",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update({key: str(value) for key, value in settings.items()})
    return env


def migrate(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "inclusive", "db", "upgrade"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"flask db upgrade failed:\n{result.stdout}\n{result.stderr}")


def make_app(env: dict[str, str]) -> Any:
    """The platform's app in this process, configured like its workers."""
    os.environ.update(env)
    from inclusive import create_app

    return create_app()


# Processes ---------------------------------------------------------------------------------


class Proc:
    """A platform process (``flask worker``, ``flask cron``) that can be killed and restarted."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_dir / f"{self.name}.log"
        with log.open("ab") as out:
            out.write(f"\n=== start {self.starts} at {time.time():.3f} ===\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "inclusive", *self.args],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def children(self) -> list[int]:
        if self.process is None:
            return []
        pid = self.process.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def kill(self, redis: Any = None) -> int:
        """SIGKILL the process and its children (RQ's scheduler, and the work horse if a job
        runs); return 1 if it had a job running: a work horse (it runs in a process group of
        its own), or, given Redis, the worker itself busy (it runs deliveries without one)."""
        if self.process is None:
            return 0
        children = self.children()
        horses = 0
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                horses += os.getpgid(pid) == pid
        if redis is not None and not horses:
            from rq import Worker

            horses += any(
                w.pid == self.process.pid and w.get_state() == "busy"
                for w in Worker.all(connection=redis)
            )
        for pid in [self.process.pid, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        return horses

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None


def wait_ready(procs: Iterable[Proc], timeout: float = 90.0) -> None:
    """Wait until each worker has printed that it listens on its queue."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        log = proc.log_dir / f"{proc.name}.log"
        while " on queue " not in log.read_text(errors="replace").rsplit("=== start", 1)[-1]:
            if proc.process is not None and proc.process.poll() is not None:
                raise SystemExit(f"{proc.name} exited:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{proc.name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)


# The world: an organization, a partner with a webhook, producers with consents -------------


@dataclass
class World:
    org_id: int
    partner_id: int
    referral_ids: list[int]
    spare_id: int  # a draft kept for the rolled-back send


def make_world(app: Any, url: str, secret: str, referrals: int, slug: str = "faults") -> World:
    """An organization, a partner whose webhook is ``url``, and ``referrals + 1`` drafts."""
    from inclusive.auth.services import create_user
    from inclusive.consents.services import record_consent
    from inclusive.extensions import db
    from inclusive.milestones.services import today
    from inclusive.partners.services import create_partner, link_partner
    from inclusive.producers.models import Producer
    from inclusive.referrals import services
    from inclusive.referrals.models import WebhookEndpoint
    from inclusive.tenancy.models import Membership, Organization
    from inclusive.tenancy.roles import Role
    from inclusive.tenancy.scope import tenant_scope

    with app.app_context():
        org = Organization(
            slug=slug,
            name="Cooperativa Fallas",
            country="PE",
            default_language="es",
            currency="PEN",
        )
        db.session.add(org)
        partner = create_partner(
            slug=f"{slug}-mfi",
            name="Microfinanciera Fallas",
            kind="mfi",
            products=["working_capital_loan"],
        )
        db.session.flush()
        link_partner(org, partner)
        db.session.add(WebhookEndpoint(partner_id=partner.id, url=url, secret=secret))
        # Field officers only: no organization e-mails, every outbox row is a webhook.
        recorder = create_user(
            f"recorder@{slug}.example", "Rosa Recorder", "plum kettle orbit lantern 93", "es"
        )
        witness = create_user(
            f"witness@{slug}.example", "Wilma Witness", "plum kettle orbit lantern 94", "es"
        )
        org_id, partner_id = org.id, partner.id
        ids: list[int] = []
        with tenant_scope(org_id):
            for user in (recorder, witness):
                db.session.add(Membership(user_id=user.id, role=Role.FIELD_OFFICER))
            partnership = services.partnership_choices()[0]
            for n in range(referrals + 1):
                producer = Producer(
                    kind="individual",
                    name=f"Productora {n}",
                    name_key=f"productora {n}",
                    national_id=f"F{n:09d}",
                    phone=f"+5190{n:07d}",
                    region="Cusco",
                    municipality="Urubamba",
                )
                db.session.add(producer)
                db.session.flush()
                record_consent(
                    producer,
                    partner_id=partner_id,
                    purpose="Working-capital loan",
                    scopes=ALL_SCOPES,
                    method="verbal",
                    witness_id=witness.id,
                    given_on=today() - timedelta(days=2),
                    recorder=recorder,
                )
                referral = services.create_referral(
                    producer,
                    partnership_id=partnership.id,
                    product="working_capital_loan",
                    amount="1500",
                    purpose="Buy a second oven",
                )
                ids.append(referral.id)
                if n % 50 == 49:
                    db.session.commit()
            db.session.commit()
        db.session.remove()
    return World(org_id, partner_id, ids[:-1], ids[-1])


def event_steps(world: World, events: int) -> list[tuple[int, str]]:
    """``events`` (referral id, action) steps: sends, then each partner transition in turn."""
    per = 1 + len(TRANSITIONS)
    needed = -(-events // per)
    if needed > len(world.referral_ids):
        raise ValueError(f"{events} events need {needed} referrals")
    chosen = world.referral_ids[:needed]
    steps = [(rid, action) for action in ("send", *TRANSITIONS) for rid in chosen]
    return steps[:events]


def act(world: World, referral_id: int, action: str) -> None:
    """One event: the organization sends, or the partner moves the referral on."""
    from inclusive.extensions import db
    from inclusive.referrals import services
    from inclusive.referrals.models import Referral, Side
    from inclusive.tenancy.scope import tenant_scope

    with tenant_scope(world.org_id):
        referral = db.session.get(Referral, referral_id)
        if action == "send":
            services.send(referral, None)
            return
    services.apply(referral, action, Side.PARTNER, None)


def webhook_id(delivery_id: str) -> str:
    return f"msg_{delivery_id.replace('-', '')}"


def outbox_counts(database_url: str) -> Counter[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall()
    return Counter({status: count for status, count in rows})


def wait_settled(
    database_url: str, timeout: float, tick: Callable[[], None] | None = None
) -> tuple[bool, Counter[str]]:
    deadline = time.monotonic() + timeout
    while True:
        counts = outbox_counts(database_url)
        if counts["pending"] + counts["sending"] == 0:
            return True, counts
        if time.monotonic() > deadline:
            return False, counts
        if tick is not None:
            tick()
        time.sleep(0.5)


# The run -----------------------------------------------------------------------------------


@dataclass
class Chaos:
    workers: list[Proc]
    rng: random.Random
    started: float
    redis: Any = None
    kills: list[tuple[float, str, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Kill a random worker every KILL_EVERY s; the next kill waits until it listens again."""
        while not self.stop.wait(self.rng.uniform(*KILL_EVERY)):
            worker = self.rng.choice(self.workers)
            horses = worker.kill(self.redis)
            self.kills.append((time.monotonic() - self.started, worker.name, horses))
            worker.start()
            wait_ready([worker])


class FlakyResponder:
    """Answer 500 to a few first receptions (retries on the schedule), take SLOW_REPLY
    seconds over some others (so that kills land while a worker waits for the answer: the
    receiver has the event, the outbox does not know it yet), 200 otherwise."""

    def __init__(self, rng: random.Random, rate: float, slow_rate: float = 0.0) -> None:
        self.rng = rng
        self.rate = rate
        self.slow_rate = slow_rate
        self.seen: set[str | None] = set()
        self.errors = 0
        self.slow = 0
        self.lock = threading.Lock()

    def __call__(self, delivery: Any) -> Any:
        from tests.webhook_receiver import Reply

        with self.lock:
            first = delivery.webhook_id not in self.seen
            self.seen.add(delivery.webhook_id)
            draw = self.rng.random()
            if first and draw < self.rate:
                self.errors += 1
                return 500
            if first and draw < self.rate + self.slow_rate:
                self.slow += 1
                return Reply(200, delay=SLOW_REPLY)
        return 200


def main() -> int:
    from redis import Redis

    from tests.webhook_receiver import WebhookReceiver

    events = env_int("FAULTS_EVENTS", 1000)
    workers_n = env_int("FAULTS_WORKERS", 2)
    timeout = env_int("FAULTS_TIMEOUT", 180)
    seed = env_int("FAULTS_SEED", random.randrange(1 << 30))
    worker_args = os.environ.get("FAULTS_WORKER_ARGS", "").split()
    server_url = os.environ.get("FAULTS_SERVER_URL", SERVER_URL)
    redis_url = os.environ.get("FAULTS_REDIS_URL", "redis://127.0.0.1:6379/9")
    rng = random.Random(seed)
    run_dir = Path(tempfile.mkdtemp(prefix="inclusive-faults-"))
    (run_dir / "instance").mkdir()

    database_url = fresh_database(server_url, os.environ.get("FAULTS_DATABASE", "inclusive_faults"))
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    secret_holder: list[str] = []
    from inclusive.referrals.webhooks import new_secret

    secret_holder.append(new_secret())
    receiver = WebhookReceiver(secret_holder)
    responder = FlakyResponder(rng, ERROR_RATE, SLOW_RATE)
    receiver.responder = responder
    env = platform_env(
        database_url,
        redis_url,
        "faults",
        run_dir / "instance",
        DELIVERY_LEASE_SECONDS=LEASE_SECONDS,
        DELIVERY_RETRY_SCHEDULE=RETRY_SCHEDULE,
        DELIVERY_SWEEP_SECONDS=1,
        DELIVERY_SWEEP_GRACE=SWEEP_GRACE,
        WEBHOOK_TIMEOUT=WEBHOOK_TIMEOUT,
    )
    say(f"faults: seed {seed}; database {database_url}; Redis {redis_url}; logs in {run_dir}")
    migrate(env)
    app = make_app(env)
    per = 1 + len(TRANSITIONS)
    world = make_world(app, receiver.url, secret_holder[0], -(-events // per))
    steps = event_steps(world, events)

    workers = [
        Proc(f"worker-{n + 1}", ["worker", *worker_args], env, run_dir) for n in range(workers_n)
    ]
    cron = Proc("cron", ["cron"], env, run_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the processes on the way out
    try:
        for proc in (*workers, cron):
            proc.start()
        wait_ready(workers)
        return run(
            app,
            world,
            steps,
            workers,
            cron,
            redis,
            receiver,
            responder,
            rng,
            database_url,
            timeout,
            events,
            worker_args,
        )
    finally:
        for proc in (*workers, cron):
            proc.stop()
        receiver.stop()


def run(
    app: Any,
    world: World,
    steps: list[tuple[int, str]],
    workers: list[Proc],
    cron: Proc,
    redis: Any,
    receiver: Any,
    responder: FlakyResponder,
    rng: random.Random,
    database_url: str,
    timeout: int,
    events: int,
    worker_args: list[str],
) -> int:
    workers_n = len(workers)

    from inclusive.extensions import db
    from inclusive.referrals.models import Delivery
    from inclusive.tenancy.scope import tenant_scope

    started = time.monotonic()
    chaos = Chaos(workers, rng, started, redis)
    chaos_thread = threading.Thread(target=chaos.run, name="chaos", daemon=True)
    chaos_thread.start()
    flush_at: float | None = None
    flush_queued = 0
    rolled_back: list[str] = []
    batches = [steps[i : i + BATCH] for i in range(0, len(steps), BATCH)]
    queue_key = "rq:queue:faults"
    try:
        with app.app_context():
            for number, batch in enumerate(batches):
                for referral_id, action in batch:
                    act(world, referral_id, action)
                with tenant_scope(world.org_id):
                    db.session.commit()
                if number == len(batches) // 3:
                    # An event written with its deliveries and their calls, then rolled back.
                    act(world, world.spare_id, "send")
                    db.session.flush()
                    with tenant_scope(world.org_id):
                        rolled_back = list(
                            db.session.scalars(
                                db.select(Delivery.id).where(Delivery.referral_id == world.spare_id)
                            )
                        )
                    db.session.rollback()
                if number == len(batches) // 2 and flush_at is None:
                    flush_queued = redis.llen(queue_key)
                    redis.flushdb()
                    flush_at = time.monotonic() - started
                while redis.llen(queue_key) > BACKLOG:  # keep the backlog under the grace
                    time.sleep(0.2)
            db.session.remove()
        produced_at = time.monotonic() - started
        time.sleep(5)  # the chaos goes on a little after the last event
    finally:
        chaos.stop.set()
        chaos_thread.join(timeout=30)
    settled, counts = wait_settled(database_url, timeout)
    settled_at = time.monotonic() - started
    time.sleep(2)  # late duplicates (a killed worker's request still in flight) arrive now
    for proc in (*workers, cron):
        proc.stop()
    receiver.stop()

    # What was written, and what arrived --------------------------------------------------
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, event_id, status, attempts FROM deliveries WHERE channel = 'webhook'"
        ).fetchall()
        other = conn.execute(
            "SELECT count(*) FROM deliveries WHERE channel <> 'webhook'"
        ).fetchone()
        notified = conn.execute(
            "SELECT count(*) FROM referral_events WHERE kind <> 'created'"
        ).fetchone()[0]
        attempt_rows = conn.execute("SELECT count(*) FROM delivery_attempts").fetchone()[0]
        left = conn.execute(
            "SELECT count(*) FROM deliveries WHERE id = ANY(%s)", (rolled_back,)
        ).fetchone()[0]
    expected = {webhook_id(r[0]): r for r in rows}
    received = receiver.deliveries
    unverified = sum(1 for d in received if not d.verified)
    accepted = {d.webhook_id for d in received if d.verified and 200 <= d.status < 300}
    lost = sorted(i for i in expected if i not in accepted)
    per_id = Counter(d.webhook_id for d in received)
    duplicates = sum(n - 1 for n in per_id.values())
    after_error = sum(1 for d in received if d.status >= 500)  # each error is followed by one
    redelivered = sum(
        max(0, sum(1 for d in received if d.webhook_id == i and 200 <= d.status < 300) - 1)
        for i in per_id
    )
    ids_per_event: dict[Any, set[str | None]] = defaultdict(set)
    for d in received:
        event = ((d.body or {}).get("data") or {}).get("event") or {}
        ids_per_event[event.get("id")].add(d.webhook_id)
    renamed = sum(len(ids) - 1 for ids in ids_per_event.values() if len(ids) > 1)
    unknown = sorted({d.webhook_id for d in received} - set(expected))
    rolled_ids = {webhook_id(i) for i in rolled_back}
    rollback_ok = bool(rolled_back) and left == 0 and not (rolled_ids & set(per_id))

    n = len(expected)
    how = (
        "all with a repeated webhook-id"
        if renamed == 0
        else f"{renamed} of them under a NEW webhook-id"
    )
    say(f"delivered {n - len(lost)}/{n}, lost {len(lost)}, duplicates {duplicates} ({how})")
    say(
        f"  events: {notified} written in {len(batches)} commits of {BATCH} over "
        f"{produced_at:.1f} s ({events} asked, {n} webhook rows, {other[0]} other rows); "
        f"{workers_n} `flask worker {' '.join(worker_args)}`".rstrip()
        + " + `flask cron` "
        f"(sweep every 1 s, grace {SWEEP_GRACE} s), lease {LEASE_SECONDS} s, "
        f"retries {RETRY_SCHEDULE} s"
    )
    gaps = [b[0] - a[0] for a, b in zip(chaos.kills, chaos.kills[1:], strict=False)]
    say(
        f"  chaos: {len(chaos.kills)} SIGKILLs of a worker (and its work horse, if any) "
        f"({sum(1 for k in chaos.kills if k[2])} with a job running), restarted each time; "
        f"first at {chaos.kills[0][0] if chaos.kills else 0:.1f} s, "
        f"{sum(gaps) / len(gaps) if gaps else 0:.1f} s apart on average"
    )
    say(f"  Redis FLUSHDB at {flush_at or 0:.1f} s ({flush_queued} jobs waiting in the queue)")
    say(
        f"  duplicates: {after_error} after an error answer ({responder.errors} injected 500s, "
        f"{responder.slow} answers slowed by {SLOW_REPLY} s), "
        f"{redelivered} redeliveries of an accepted delivery; "
        f"{duplicates - after_error - redelivered} other"
    )
    say(
        f"  outbox: {dict(sorted(counts.items()))}, {attempt_rows} attempts recorded; "
        f"{'settled' if settled else 'NOT settled'} at {settled_at:.1f} s"
    )
    say(
        f"  verified: {len(received) - unverified}/{len(received)} receptions; "
        f"{len(unknown)} unexpected ids"
    )
    if rolled_back:
        say(
            f"  rollback: a send with {len(rolled_back)} delivery row(s) "
            f"({', '.join(sorted(rolled_ids))}) rolled back after its enqueue: "
            f"{left} row(s) left, received {sum(per_id[i] for i in rolled_ids)} time(s) -> "
            f"{'OK' if rollback_ok else 'FAILED'}"
        )
    if lost:
        say(f"  lost ids (first 10): {', '.join(lost[:10])}")
    ok = (
        not lost
        and unverified == 0
        and renamed == 0
        and not unknown
        and rollback_ok
        and settled
        and notified == n
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
