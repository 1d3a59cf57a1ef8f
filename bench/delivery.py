"""`python -m bench.delivery`: how fast the referral outbox delivers, against RQ's own pace.

A scratch PostgreSQL database (``inclusive_bench_delivery``, dropped and migrated at start),
Redis database 10 and a webhook receiver on 127.0.0.1 that verifies every request. For each
worker class, two worker processes (``default``: ``flask worker``, RQ's forking worker that
runs short jobs, deliveries among them, itself and forks a work horse for any other job, the
trivial one included; ``simple``: ``flask worker --simple``, every job in the worker: the
like-for-like comparison), and with the same two workers:

(a) a trivial RQ job: BENCH_TRIVIAL_JOBS (2,000) no-op jobs sent with ``enqueue_many``
    while each worker is held by a :func:`hold` job, then timed from their release to the
    last one finished (RQ's suspension would not do: a worker waiting for a job takes one
    even when suspended, and a suspended worker looks again only once a second);
(b) delivery: BENCH_DELIVERY_EVENTS (1,000) referral events committed while the workers are
    held, then timed from their release until every webhook is delivered (signed, posted
    to the receiver, verified there, recorded in the database); the ratio b/a (target 0.5).
    (a) and (b) alternate in BENCH_ROUNDS (4) rounds of a quarter each, so that a change in
    the machine's load during the run weighs on both;
(c) latency: with idle workers, BENCH_LATENCY_EVENTS (100) events committed one at a time;
    the time from the commit to the receiver's 200 (p50, p95, max; target p95 under 2 s).

Then (d) the cost of one ``outbox.attempt`` in this process, without RQ, for diagnosis.
A measurement, not a test: it exits 0 when a target is missed and marks the line MISSED.
Only the standard library is imported at the top: work horses import this module to find
:func:`noop`.
"""

from __future__ import annotations

import os
import sys
import time


def noop() -> None:
    """The trivial job."""


def hold(key: str, redis_url: str) -> None:
    """A job that keeps its worker busy until the bench releases it (one token on ``key``),
    so that the measured jobs wait in the queue and the workers take them at once."""
    from redis import Redis

    with Redis.from_url(redis_url) as conn:
        conn.rpush(f"{key}:ready", 1)
        conn.blpop([key], timeout=600)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").replace("_", "").replace(",", "").strip()
    return int(raw) if raw else default


RATIO_TARGET = 0.5
P95_TARGET_MS = 2000.0
WORKERS = 2
BATCH = 50
CLASSES = {"default": ["worker"], "simple": ["worker", "--simple"]}


def say(line: str) -> None:
    print(line, flush=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


class Steps:
    """Events without end: each referral is sent, acknowledged, put under review, then
    asked for information and resumed, again and again (every step is one event)."""

    LOOP = ("request_info", "resume_review")

    def __init__(self, referral_ids: list[int]) -> None:
        self.ids = list(referral_ids)
        self.done = dict.fromkeys(self.ids, 0)
        self.turn = 0

    def next(self) -> tuple[int, str, str]:
        rid = self.ids[self.turn % len(self.ids)]
        self.turn += 1
        n = self.done[rid]
        self.done[rid] = n + 1
        head = ("send", "acknowledge", "start_review")
        action = head[n] if n < len(head) else self.LOOP[(n - len(head)) % 2]
        return rid, action, "Which oven, and its price?" if action == "request_info" else ""


def main() -> int:
    import resource
    import tempfile
    import threading
    from collections.abc import Callable
    from pathlib import Path

    import psycopg
    from redis import Redis
    from rq import Queue
    from rq.registry import FailedJobRegistry, FinishedJobRegistry
    from rq.suspension import resume

    from bench import cpu
    from bench.delivery import hold  # by its module's name, not __main__'s
    from bench.delivery import noop as trivial_job
    from faults.run import Proc, fresh_database, make_app, make_world, migrate, platform_env
    from faults.run import wait_ready as wait_listening
    from tests.webhook_receiver import WebhookReceiver

    trivial_n = env_int("BENCH_TRIVIAL_JOBS", 2000)
    delivery_n = env_int("BENCH_DELIVERY_EVENTS", 1000)
    latency_n = env_int("BENCH_LATENCY_EVENTS", 100)
    attempt_n = env_int("BENCH_ATTEMPT_EVENTS", 200)
    rounds = max(1, env_int("BENCH_ROUNDS", 4))
    classes = [
        c.strip()
        for c in os.environ.get("BENCH_WORKER_CLASSES", "default,simple").split(",")
        if c.strip()
    ]
    server_url = os.environ.get("BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("BENCH_DELIVERY_REDIS_URL", "redis://127.0.0.1:6379/10")
    run_dir = Path(tempfile.mkdtemp(prefix="inclusive-bench-delivery-"))
    (run_dir / "instance").mkdir()
    database_url = fresh_database(
        server_url, os.environ.get("BENCH_DELIVERY_DATABASE", "inclusive_bench_delivery")
    )
    redis = Redis.from_url(redis_url)
    redis.flushdb()

    from inclusive.referrals.webhooks import new_secret

    arrivals: dict[str | None, float] = {}
    lock = threading.Lock()

    def responder(delivery: object) -> int:
        with lock:
            arrivals.setdefault(getattr(delivery, "webhook_id", None), time.monotonic())
        return 200

    secret = new_secret()
    receiver = WebhookReceiver([secret], responder=responder)
    env = platform_env(database_url, redis_url, "bench-delivery", run_dir / "instance")
    say(
        f"delivery bench: {WORKERS} workers per class ({', '.join(classes)}); "
        f"{database_url}; {redis_url}; logs in {run_dir}"
    )
    migrate(env)
    app = make_app(env)
    world = make_world(app, receiver.url, secret, 60, slug="bench-delivery")
    steps = Steps(world.referral_ids)
    queue = Queue("bench-delivery", connection=redis)

    from sqlalchemy import select

    from faults.run import act as referral_act
    from inclusive.extensions import db
    from inclusive.referrals import outbox
    from inclusive.referrals.models import Delivery
    from inclusive.tenancy.scope import tenant_scope

    def act_one() -> None:
        rid, action, note = steps.next()
        if action == "request_info" or action == "resume_review":
            from inclusive.referrals import services
            from inclusive.referrals.models import Referral, Side

            with tenant_scope(world.org_id):
                referral = db.session.get(Referral, rid)
            services.apply(referral, action, Side.PARTNER, None, note=note)
        else:
            referral_act(world, rid, action)

    def commit() -> None:
        with tenant_scope(world.org_id):
            db.session.commit()

    # One connection for the polling: a new one every 50 ms would cost PostgreSQL a process
    # start each time, CPU taken from the deliveries being measured.
    poll = psycopg.connect(database_url, autocommit=True)

    def delivered_count() -> int:
        row = poll.execute("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
        return row.fetchone()[0]

    redis_pid = int(redis.info("server")["process_id"])

    def cpu_snapshot(workers: list[Proc]) -> dict[str, float]:
        """CPU seconds so far: the workers (their reaped work horses included), the
        delivery database's backends, Redis, and this process (the receiver, the polling)."""
        pids = [w.process.pid for w in workers if w.process is not None]
        backend_pids = [
            row[0]
            for row in poll.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        ]
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "workers": sum(cpu.cpu_seconds(pids, children=True).values()),
            "postgres": sum(cpu.cpu_seconds(backend_pids).values()),
            "redis": sum(cpu.cpu_seconds([redis_pid]).values()),
            "receiver": own.ru_utime + own.ru_stime,
            "_backends": tuple(backend_pids),  # type: ignore[dict-item]
        }

    def add_cpu(
        total: dict[str, dict[str, float]],
        kind: str,
        before: dict[str, float],
        after: dict[str, float],
    ) -> None:
        sums = total.setdefault(kind, {})
        for key in ("workers", "postgres", "redis", "receiver"):
            spent = after[key] - before[key]
            if key == "postgres" and before["_backends"] != after["_backends"]:
                spent = max(spent, 0.0)  # backends came or went: a lower bound
            sums[key] = sums.get(key, 0.0) + spent

    def cpu_line(label: str, sums: dict[str, float], n: int) -> str:
        parts = [f"{key} {spent / n * 1000:.2f}" for key, spent in sums.items()]
        return f"cpu ms per {label}: " + ", ".join(parts)

    def wait_for(condition, timeout: float, what: str, poll: float = 0.02) -> float:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}; logs in {run_dir}")
            time.sleep(poll)
        return time.monotonic()

    holds = 0

    def hold_workers() -> str:
        """Keep every worker busy with a :func:`hold` job; return the key that releases them."""
        nonlocal holds
        holds += 1
        key = f"bench-delivery:hold:{holds}"
        for _ in range(WORKERS):
            queue.enqueue(hold, key, redis_url)
        ready = 0
        deadline = time.monotonic() + 60
        while ready < WORKERS:
            if time.monotonic() > deadline:
                raise SystemExit(f"the workers did not take their hold jobs; logs in {run_dir}")
            ready += redis.blpop([f"{key}:ready"], timeout=1) is not None
        return key

    def drain(key: str, count: Callable[[], int], base: int, n: int, what: str) -> float:
        """Release the held workers; return the seconds until n more are counted."""
        started = time.monotonic()
        redis.rpush(key, *([1] * WORKERS))
        ended = wait_for(lambda: count() - base >= n, 900, what)
        return ended - started

    results: dict[str, dict[str, float]] = {}
    try:
        with app.app_context():
            for name in classes:
                workers = [
                    Proc(f"{name}-{n + 1}", CLASSES[name], env, run_dir) for n in range(WORKERS)
                ]
                for worker in workers:
                    worker.start()
                try:
                    wait_listening(workers)
                    # (a) and (b), alternated over ROUNDS rounds: a change in the machine's
                    # load during the run weighs on both rates alike.
                    finished = FinishedJobRegistry(queue=queue)
                    failed = FailedJobRegistry(queue=queue)
                    spent = {"trivial": 0.0, "delivery": 0.0}
                    cpu_spent: dict[str, dict[str, float]] = {}
                    got = 0
                    for turn in range(rounds):
                        # (a) the trivial job -----------------------------------------------
                        n = trivial_n // rounds + (turn < trivial_n % rounds)
                        key = hold_workers()
                        base = finished.count + failed.count
                        for start in range(0, n, 500):
                            queue.enqueue_many(
                                [
                                    Queue.prepare_data(trivial_job)
                                    for _ in range(min(500, n - start))
                                ]
                            )
                        cpu_before = cpu_snapshot(workers)
                        spent["trivial"] += drain(
                            key,
                            lambda: finished.count + failed.count,  # noqa: B023
                            base,
                            n + WORKERS,  # the hold jobs end in the registry too
                            "the trivial jobs",
                        )
                        add_cpu(cpu_spent, "trivial", cpu_before, cpu_snapshot(workers))
                        if failed.count:
                            raise SystemExit(f"{failed.count} trivial jobs failed; see {run_dir}")
                        # (b) delivery ------------------------------------------------------
                        n = delivery_n // rounds + (turn < delivery_n % rounds)
                        key = hold_workers()
                        base = delivered_count()
                        seen = len(arrivals)
                        for start in range(0, n, BATCH):
                            for _ in range(min(BATCH, n - start)):
                                act_one()
                            commit()
                        cpu_before = cpu_snapshot(workers)
                        spent["delivery"] += drain(key, delivered_count, base, n, "the deliveries")
                        add_cpu(cpu_spent, "delivery", cpu_before, cpu_snapshot(workers))
                        got += len(arrivals) - seen
                    trivial = trivial_n / spent["trivial"]
                    say(
                        f"trivial RQ job, 2 {name} workers: {trivial_n} no-op jobs "
                        f"(enqueue_many), {trivial:.1f} jobs/s over {spent['trivial']:.1f} s "
                        "(from the workers' release to the last job done, summed over rounds)"
                    )
                    say(cpu_line(f"trivial job ({name})", cpu_spent["trivial"], trivial_n))
                    rate = delivery_n / spent["delivery"]
                    ratio = rate / trivial
                    say(
                        f"delivery, 2 {name} workers: {delivery_n} events signed, posted, "
                        f"verified by the receiver ({got} new ids) and recorded: "
                        f"{rate:.1f} events/s over {spent['delivery']:.1f} s"
                    )
                    say(cpu_line(f"delivery ({name})", cpu_spent["delivery"], delivery_n))
                    missed = "" if ratio >= RATIO_TARGET else " MISSED"
                    say(
                        f"delivery/trivial, 2 {name} workers: {ratio:.2f} "
                        f"(target >= {RATIO_TARGET}; {rounds} rounds of each, alternated){missed}"
                    )
                    # (c) latency -----------------------------------------------------------
                    time.sleep(1.0)  # idle workers
                    latencies: list[float] = []
                    for _ in range(latency_n):
                        act_one()
                        db.session.flush()
                        with tenant_scope(world.org_id):
                            (row_id,) = db.session.scalars(
                                select(Delivery.id).where(
                                    Delivery.attempts == 0, Delivery.status == "pending"
                                )
                            ).all()
                        wid = f"msg_{row_id.replace('-', '')}"
                        sent = time.monotonic()
                        commit()
                        wait_for(lambda: wid in arrivals, 60, "a delivery")  # noqa: B023
                        latencies.append((arrivals[wid] - sent) * 1000)
                        time.sleep(0.05)
                    p95 = percentile(latencies, 0.95)
                    missed = "" if p95 < P95_TARGET_MS else " MISSED"
                    say(
                        f"commit -> receiver 200, 2 idle {name} workers: p95 {p95:.0f} ms "
                        f"(p50 {percentile(latencies, 0.5):.0f}, max {max(latencies):.0f}) over "
                        f"{latency_n} events (target p95 < {P95_TARGET_MS:.0f} ms){missed}"
                    )
                    results[name] = {"trivial": trivial, "delivery": rate, "p95": p95}
                finally:
                    resume(redis)
                    for worker in workers:
                        worker.stop()
            # (d) one attempt in this process, without RQ -----------------------------------
            if attempt_n:
                ids: list[str] = []
                for _ in range(attempt_n):
                    act_one()
                    db.session.flush()
                commit()
                redis.delete("rq:queue:bench-delivery")  # no worker runs: do them here
                with tenant_scope(world.org_id):
                    ids = list(
                        db.session.scalars(select(Delivery.id).where(Delivery.status == "pending"))
                    )
                db.session.remove()
                started = time.monotonic()
                for delivery_id in ids:
                    outbox.attempt(delivery_id)
                    db.session.remove()
                spent = (time.monotonic() - started) / max(1, len(ids)) * 1000
                say(
                    f"outbox.attempt in one process, no RQ: {spent:.1f} ms per webhook "
                    f"({len(ids)} deliveries) = {1000 / spent:.0f}/s per process"
                )
    finally:
        resume(redis)
        receiver.stop()
        poll.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
