"""Ask for background jobs: the row is written now, the job is sent only after commit.

``enqueue`` writes a :class:`JobRecord` in the caller's transaction and remembers it on
the session. When that transaction commits, the job ids go to RQ (or, with no
``REDIS_URL``, run inline right after the commit); when it rolls back, nothing is sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from redis import Redis
from rq import Queue
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, SessionTransaction

from inclusive.extensions import db
from inclusive.jobs.models import JobRecord
from inclusive.tenancy.scope import current_org_id

log = logging.getLogger(__name__)

JobFunction = Callable[..., None]
REGISTRY: dict[str, JobFunction] = {}
_PENDING = "pending_jobs"
_PENDING_CALLS = "pending_calls"
_CURRENT = object()  # "the organization in scope", the default for enqueue()

#: How long RQ may run one job before it is considered stuck.
JOB_TIMEOUT = 120


def job(name: str) -> Callable[[JobFunction], JobFunction]:
    """Register a job function under a stable name (the name is what the row stores)."""

    def register(func: JobFunction) -> JobFunction:
        if name in REGISTRY and REGISTRY[name] is not func:
            raise ValueError(f"Job name {name!r} is registered twice.")
        REGISTRY[name] = func
        return func

    return register


def enqueue(name: str, *, org_id: Any = _CURRENT, **args: Any) -> JobRecord:
    """Record a job in the current transaction; it is sent when the transaction commits."""
    if name not in REGISTRY:
        raise KeyError(f"No job is registered as {name!r}.")
    record = JobRecord(
        id=str(uuid.uuid4()),
        name=name,
        org_id=current_org_id() if org_id is _CURRENT else org_id,
        args=args,
    )
    db.session.add(record)
    db.session.info.setdefault(_PENDING, []).append((record, record.id))
    return record


def call_after_commit(row: Any, func: JobFunction, job_id: str) -> None:
    """Call ``func(row's job id)`` through RQ once this transaction commits (inline with no
    Redis); nothing happens if it rolls back, or if ``row`` was never written.

    For outboxes whose rows are their own record (referral deliveries): the RQ job id is
    ``job_id``, unique to the row, and the row, not Redis, says whether it is done.
    """
    db.session.info.setdefault(_PENDING_CALLS, []).append((row, func, job_id))


def redis_connection(app: Flask) -> Redis | None:
    """Return the app's Redis connection, or None when jobs run inline."""
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    conn = app.extensions.get("inclusive.redis")
    if conn is None:
        conn = Redis.from_url(url)
        app.extensions["inclusive.redis"] = conn
    return conn


def job_queue(app: Flask) -> Queue | None:
    """Return the RQ queue jobs go to, or None when jobs run inline."""
    conn = redis_connection(app)
    if conn is None:
        return None
    return Queue(app.config["RQ_QUEUE"], connection=conn, default_timeout=JOB_TIMEOUT)


def send_to_queue(app: Flask, job_ids: list[str]) -> None:
    """Hand committed job ids to RQ, or run them inline when there is no Redis."""
    from inclusive.jobs.runner import run_job, run_job_inline

    queue = job_queue(app)
    if queue is None:
        for job_id in job_ids:
            run_job_inline(app, job_id)
        return
    try:
        queue.enqueue_many(
            [
                Queue.prepare_data(run_job, args=(job_id,), job_id=job_id, timeout=JOB_TIMEOUT)
                for job_id in job_ids
            ]
        )
    except Exception:  # Redis down: the rows stay queued; `flask jobs-sweep` sends them again
        log.exception("Could not send %d job(s) to Redis; they stay queued.", len(job_ids))


def send_calls(app: Flask, calls: list[tuple[JobFunction, str]]) -> int:
    """Hand ``func(job_id)`` calls to RQ under those job ids, or make them inline; return
    how many were sent (none when Redis refused them: their rows stay pending)."""
    queue = job_queue(app)
    if queue is None:
        for func, job_id in calls:
            with app.app_context():  # a new app context: a session of its own
                try:
                    func(job_id)
                except Exception:
                    log.exception("Inline call %s(%s) failed.", func.__name__, job_id)
                finally:
                    db.session.remove()
        return len(calls)
    try:
        queue.enqueue_many(
            [
                Queue.prepare_data(func, args=(job_id,), job_id=job_id, timeout=JOB_TIMEOUT)
                for func, job_id in calls
            ]
        )
    except Exception:  # Redis down: the rows stay pending; the sweeper sends them again
        log.exception("Could not send %d call(s) to Redis; their rows stay pending.", len(calls))
        return 0
    return len(calls)


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT was released: the transaction itself has not committed yet
    calls = session.info.pop(_PENDING_CALLS, None)
    if calls:
        live = [(func, job_id) for row, func, job_id in calls if inspect(row).has_identity]
        if live:
            send_calls(current_app._get_current_object(), live)
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    # A job whose row was rolled back with a savepoint has no identity: it was never written.
    job_ids = [job_id for record, job_id in pending if inspect(record).has_identity]
    if job_ids:
        send_to_queue(current_app._get_current_object(), job_ids)


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.nested:
        return  # a savepoint: rows it held lose their identity and are skipped at commit
    session.info.pop(_PENDING, None)
    session.info.pop(_PENDING_CALLS, None)


def install_job_hooks(session_class: type[Session]) -> None:
    """Send jobs after commit and drop them on rollback, for every session of this class."""
    if not event.contains(session_class, "after_commit", _after_commit):
        event.listen(session_class, "after_commit", _after_commit)
        event.listen(session_class, "after_soft_rollback", _after_soft_rollback)
