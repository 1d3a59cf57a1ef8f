"""PlatformWorker: short jobs (referral deliveries) run in the worker, others in a horse."""

from __future__ import annotations

import os
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.job import JobStatus

from inclusive.jobs.runner import PlatformWorker, _is_short
from inclusive.referrals.outbox import run_delivery
from tests.jobs import pid_jobs


def test_a_short_job_runs_in_the_worker_and_another_in_a_work_horse(
    redis_conn: Redis, tmp_path: Path
):
    queue = Queue("platform-worker-test", connection=redis_conn)
    short = queue.enqueue(pid_jobs.write_pid_short, str(tmp_path / "short"))
    forked = queue.enqueue(pid_jobs.write_pid, str(tmp_path / "forked"))
    worker = PlatformWorker([queue], connection=redis_conn)
    worker.work(burst=True)  # a horse exits with os._exit: this process carries on

    assert short.get_status(refresh=True) == JobStatus.FINISHED
    assert forked.get_status(refresh=True) == JobStatus.FINISHED
    assert int((tmp_path / "short").read_text()) == os.getpid()
    assert int((tmp_path / "forked").read_text()) != os.getpid()


def test_deliveries_are_short_and_other_jobs_are_not(redis_conn: Redis):
    queue = Queue("platform-worker-test", connection=redis_conn)
    assert _is_short(queue.enqueue(run_delivery, "delivery-x-1"))
    assert not _is_short(queue.enqueue(pid_jobs.write_pid, "/nonexistent"))
    assert not _is_short(queue.enqueue("tests.jobs.no_such_module.job"))  # RQ reports it


def test_no_horse_is_killed_while_a_short_job_runs(redis_conn: Redis, monkeypatch):
    killed: list[object] = []
    monkeypatch.setattr("rq.worker.Worker.kill_horse", lambda self, *a: killed.append(a))
    worker = PlatformWorker(["platform-worker-test"], connection=redis_conn)
    worker._running_short = True
    worker.kill_horse()  # RQ's horse pid is 0 here: os.killpg would name this process group
    assert killed == []
    worker._running_short = False
    worker.kill_horse()
    assert len(killed) == 1
