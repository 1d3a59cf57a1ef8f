"""Run one recorded job inside the app and its organization's tenant scope."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, current_app, has_app_context
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.queue import Queue

from inclusive.extensions import db
from inclusive.jobs.models import JobRecord, JobStatus
from inclusive.jobs.queue import REGISTRY
from inclusive.tenancy.scope import tenant_scope
from inclusive.timeutil import utcnow

log = logging.getLogger(__name__)

_worker_app: Flask | None = None


def worker_app() -> Flask:
    """Return the app a job runs in: the current one, or one built once per worker process."""
    global _worker_app
    if has_app_context():
        return current_app._get_current_object()
    if _worker_app is None:
        from inclusive import create_app

        _worker_app = create_app()
    return _worker_app


def forget_inherited_connections(app: Flask) -> None:
    """After a fork: never use the parent's pooled connections (called in the child)."""
    with app.app_context():
        db.engine.dispose(close=False)


def run_job(job_id: str) -> None:
    """RQ's entry point: run the job recorded under ``job_id``; raise if it fails."""
    app = worker_app()
    with app.app_context():
        _execute(job_id)


def run_job_inline(app: Flask, job_id: str) -> None:
    """Run a job in this process right after the commit that asked for it."""
    with app.app_context():  # a new app context: a session of its own
        try:
            _execute(job_id)
        except Exception:
            log.exception("Inline job %s failed (recorded on its row).", job_id)
        finally:
            db.session.remove()


def _execute(job_id: str) -> None:
    record = db.session.get(JobRecord, job_id)
    if record is None:
        log.warning("Job %s has no row (its transaction rolled back); skipped.", job_id)
        return
    if record.status == JobStatus.FINISHED:
        log.info("Job %s already finished; a duplicate delivery is ignored.", job_id)
        return
    func = REGISTRY.get(record.name)
    if func is None:
        raise LookupError(f"Job {job_id} names {record.name!r}, which is not registered.")
    record.status = JobStatus.STARTED
    record.attempts += 1
    record.started_at = utcnow()
    db.session.commit()
    name, org_id, args = record.name, record.org_id, dict(record.args)
    try:
        with tenant_scope(org_id):  # None: a platform job, with no organization in scope
            func(**args)
            db.session.flush()
        record = db.session.get(JobRecord, job_id)
        record.status = JobStatus.FINISHED
        record.finished_at = utcnow()
        record.error = None
        db.session.commit()
    except Exception:
        db.session.rollback()
        failed = db.session.get(JobRecord, job_id)
        if failed is not None:
            failed.status = JobStatus.FAILED
            failed.finished_at = utcnow()
            failed.error = traceback.format_exc(limit=20)[-4000:]
            db.session.commit()
        log.warning("Job %s (%s) failed.", job_id, name)
        raise


def short_job(func: Any) -> Any:
    """Mark an RQ job function as short and bounded: :class:`PlatformWorker` runs it in the
    worker itself rather than in a forked work horse."""
    func.short_job = True
    return func


def _is_short(job: Job) -> bool:
    try:
        return bool(getattr(job.func, "short_job", False))
    except Exception:  # a job whose function cannot be imported: RQ's own path reports it
        return False


class PlatformWorker(Worker):
    """RQ's forking worker, except for :func:`short_job` jobs, which it runs itself, as RQ's
    ``SimpleWorker`` does.

    A referral delivery is one HTTP request bounded by its timeout; a work horse for it (a
    fork of the whole platform, its own database connection) cost several times the
    delivery (bench/README.md). Long or heavy jobs (imports) keep a horse of their own: a
    crash or a leak in one ends with it. A short job runs under the same time limit (RQ's
    SIGALRM death penalty), and a worker killed in the middle of one leaves its delivery
    leased, for the sweep to send again.
    """

    _running_short = False

    def execute_job(self, job: Job, queue: Queue) -> None:
        if not _is_short(job):
            super().execute_job(job, queue)
            return
        self._running_short = True
        try:
            SimpleWorker.execute_job(self, job, queue)  # type: ignore[arg-type]
        finally:
            self._running_short = False

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if self._running_short or _is_short(job):  # no horse to watch: the job's own limit
            return SimpleWorker.get_heartbeat_ttl(self, job, working_time)  # type: ignore[arg-type]
        return super().get_heartbeat_ttl(job, working_time)

    def kill_horse(self, *args: Any, **kwargs: Any) -> None:
        if self._running_short:
            return  # no horse: the job runs here (RQ's own pid 0 would name this group)
        super().kill_horse(*args, **kwargs)
