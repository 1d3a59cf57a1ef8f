"""Jobs are sent after commit, dropped on rollback, run in their tenant scope, recorded."""

from __future__ import annotations

import email
import email.policy
import logging
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from inclusive.auth.models import User
from inclusive.auth.services import request_password_reset
from inclusive.extensions import db
from inclusive.jobs import enqueue, job
from inclusive.jobs.models import JobRecord, JobStatus
from inclusive.jobs.runner import run_job
from inclusive.tenancy.models import Membership
from inclusive.tenancy.scope import TenantScopeError, current_org_id, tenant_scope
from tests import factories

# Test-only jobs --------------------------------------------------------------------------

#: What the probe jobs saw, appended by the jobs themselves (cleared by a fixture).
probes: list[dict[str, object]] = []


@job("tests.boom")
def boom(message: str = "kaputt") -> None:
    raise RuntimeError(f"boom: {message}")


@job("tests.write_then_boom")
def write_then_boom(email_address: str) -> None:
    db.session.add(User(email=email_address, name="Ghost", password_hash="x"))
    db.session.flush()
    raise RuntimeError("failed after writing")


@job("tests.scope_probe")
def scope_probe(label: str) -> None:
    """Record the organization in scope and the memberships a plain query returns."""
    seen: dict[str, object] = {"label": label, "org_id": current_org_id()}
    try:
        rows = db.session.scalars(select(Membership)).all()
    except TenantScopeError as exc:
        seen["error"] = type(exc).__name__
    else:
        seen["membership_org_ids"] = sorted(m.org_id for m in rows)
    probes.append(seen)


@pytest.fixture(autouse=True)
def _clear_probes() -> None:
    probes.clear()


# Helpers -----------------------------------------------------------------------------------


def eml_messages(folder: Path) -> list[EmailMessage]:
    if not folder.is_dir():
        return []
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def job_row(job_id: str) -> JobRecord | None:
    """Read the row afresh (not from the identity map)."""
    db.session.expire_all()
    return db.session.get(JobRecord, job_id)


def job_row_count(job_id: str) -> int:
    return db.session.scalar(
        select(func.count()).select_from(JobRecord).where(JobRecord.id == job_id)
    )


def committed_user(**fields: object) -> User:
    user = factories.UserFactory(**fields)
    db.session.commit()
    return user


def reset_job(user: User) -> JobRecord:
    """Ask for a password-reset e-mail for ``user`` and return the job's row."""
    request_password_reset(user.email, "en")
    rows = [obj for obj in db.session.new if isinstance(obj, JobRecord)]
    assert len(rows) == 1, rows
    assert rows[0].name == "auth.password_reset_email"
    return rows[0]


# 1. Sent after commit, never after rollback --------------------------------------------------


def test_commit_runs_the_job_inline_and_records_it(mail_dir: Path):
    user = committed_user(email="lena@example.org")
    record = reset_job(user)
    job_id = record.id
    assert eml_messages(mail_dir) == []  # nothing before the commit

    db.session.commit()

    messages = eml_messages(mail_dir)
    assert [m["To"] for m in messages] == ["lena@example.org"]
    assert "/password/reset/" in messages[0].get_body(("plain",)).get_content()
    row = job_row(job_id)
    assert row.status == JobStatus.FINISHED == "finished"
    assert row.attempts == 1
    assert row.error is None
    assert row.org_id is None
    assert row.started_at is not None
    assert row.finished_at is not None
    assert row.finished_at >= row.started_at


def test_nothing_runs_before_commit_even_after_flush(mail_dir: Path):
    user = committed_user()
    record = reset_job(user)
    db.session.flush()
    assert job_row(record.id).status == JobStatus.QUEUED
    assert eml_messages(mail_dir) == []


def test_rollback_sends_nothing_and_leaves_no_row(mail_dir: Path):
    user = committed_user()
    job_id = reset_job(user).id
    db.session.flush()  # the row really is in the database before the rollback
    assert job_row_count(job_id) == 1

    db.session.rollback()

    assert eml_messages(mail_dir) == []
    assert job_row_count(job_id) == 0
    # A later commit of the same session does not resurrect the dropped job.
    factories.UserFactory()
    db.session.commit()
    assert eml_messages(mail_dir) == []
    assert job_row_count(job_id) == 0


@pytest.mark.parametrize("flush_in_savepoint", [False, True], ids=["pending", "flushed"])
def test_job_of_a_rolled_back_savepoint_is_not_sent(mail_dir: Path, flush_in_savepoint: bool):
    kept_user = committed_user(email="kept@example.org")
    dropped_user = committed_user(email="dropped@example.org")
    kept_id = reset_job(kept_user).id

    savepoint = db.session.begin_nested()
    dropped_id = reset_job(dropped_user).id
    if flush_in_savepoint:
        db.session.flush()
        assert job_row_count(dropped_id) == 1
    savepoint.rollback()
    db.session.commit()  # the outer transaction commits

    assert [m["To"] for m in eml_messages(mail_dir)] == ["kept@example.org"]
    assert job_row_count(dropped_id) == 0
    assert job_row(kept_id).status == JobStatus.FINISHED


def test_job_of_a_released_savepoint_is_sent_with_the_outer_commit(mail_dir: Path):
    user = committed_user(email="nested@example.org")
    with db.session.begin_nested():
        job_id = reset_job(user).id
    assert eml_messages(mail_dir) == []  # releasing a savepoint is not a commit
    db.session.commit()
    assert [m["To"] for m in eml_messages(mail_dir)] == ["nested@example.org"]
    assert job_row(job_id).status == JobStatus.FINISHED


@pytest.mark.committed
@pytest.mark.parametrize("savepoint_after_enqueue", [False, True], ids=["plain", "savepoint"])
def test_committed_job_is_sent_once_the_transaction_really_commits(
    mail_dir: Path, savepoint_after_enqueue: bool
):
    """Without the test transaction: the inline job reads its row on a connection of its own."""
    user = committed_user(email="real@example.org")
    job_id = reset_job(user).id
    if savepoint_after_enqueue:
        with db.session.begin_nested():  # any savepoint, e.g. "insert unless it exists"
            pass
        assert eml_messages(mail_dir) == []  # releasing a savepoint is not the commit
    db.session.commit()
    assert [m["To"] for m in eml_messages(mail_dir)] == ["real@example.org"]
    row = job_row(job_id)
    assert (row.status, row.attempts) == (JobStatus.FINISHED, 1)


def test_enqueue_refuses_unknown_job_names():
    with pytest.raises(KeyError, match=r"tests\.no-such-job"):
        enqueue("tests.no-such-job", org_id=None)


# 2. A failing job ---------------------------------------------------------------------------


def test_failing_job_is_recorded_and_does_not_raise_into_the_caller(
    mail_dir: Path, caplog: pytest.LogCaptureFixture
):
    failing_id = enqueue("tests.boom", org_id=None, message="disk on fire").id
    user = committed_user(email="after@example.org")  # commits the failing job too
    # The caller's session still works, and a later job still runs.
    reset_job(user)
    db.session.commit()

    row = job_row(failing_id)
    assert row.status == JobStatus.FAILED == "failed"
    assert row.attempts == 1
    assert row.finished_at is not None
    assert "RuntimeError: boom: disk on fire" in row.error
    assert failing_id in caplog.text
    assert [m["To"] for m in eml_messages(mail_dir)] == ["after@example.org"]


def test_failing_job_leaves_none_of_its_writes():
    failing_id = enqueue("tests.write_then_boom", org_id=None, email_address="ghost@example.org").id
    db.session.commit()
    row = job_row(failing_id)
    assert row.status == JobStatus.FAILED
    assert "failed after writing" in row.error
    assert db.session.scalar(select(User).filter_by(email="ghost@example.org")) is None


def test_run_job_raises_so_rq_marks_the_job_failed():
    # A row written without enqueue() is not sent anywhere: run_job is called by hand, as RQ does.
    record = JobRecord(name="tests.boom", org_id=None, args={"message": "from rq"})
    db.session.add(record)
    db.session.commit()
    job_id = record.id
    assert job_row(job_id).status == JobStatus.QUEUED

    with pytest.raises(RuntimeError, match="boom: from rq"):
        run_job(job_id)

    row = job_row(job_id)
    assert row.status == JobStatus.FAILED
    assert row.attempts == 1
    assert "boom: from rq" in row.error


def test_run_job_of_a_missing_row_does_nothing(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="inclusive.jobs.runner"):
        run_job("00000000-0000-0000-0000-000000000000")
    assert "has no row" in caplog.text


# 3. Tenant scope ----------------------------------------------------------------------------


def _two_orgs():
    a = factories.OrganizationFactory(slug="alpha")
    b = factories.OrganizationFactory(slug="beta")
    with tenant_scope(a.id):
        factories.MembershipFactory(organization=a)
        factories.MembershipFactory(organization=a)
    with tenant_scope(b.id):
        factories.MembershipFactory(organization=b)
    db.session.commit()
    return a.id, b.id


def test_job_runs_in_the_tenant_scope_of_its_organization():
    a_id, b_id = _two_orgs()
    with tenant_scope(a_id):
        in_scope = enqueue("tests.scope_probe", label="a")  # the organization in scope
    explicit = enqueue("tests.scope_probe", org_id=b_id, label="b")  # no scope, explicit org
    assert (in_scope.org_id, explicit.org_id) == (a_id, b_id)
    ids = [in_scope.id, explicit.id]

    db.session.commit()

    assert probes == [
        {"label": "a", "org_id": a_id, "membership_org_ids": [a_id, a_id]},
        {"label": "b", "org_id": b_id, "membership_org_ids": [b_id]},
    ]
    assert [job_row(i).status for i in ids] == [JobStatus.FINISHED, JobStatus.FINISHED]


def test_platform_job_runs_with_no_scope():
    a_id, _ = _two_orgs()
    with tenant_scope(a_id):
        # Asked for inside an organization's scope, but explicitly for the platform.
        platform = enqueue("tests.scope_probe", org_id=None, label="platform")
        assert platform.org_id is None
        db.session.commit()
        assert current_org_id() == a_id  # the caller's scope is untouched
    assert probes == [{"label": "platform", "org_id": None, "error": "TenantScopeError"}]
    assert job_row(platform.id).status == JobStatus.FINISHED


def test_job_scope_does_not_leak_into_the_caller():
    a_id, b_id = _two_orgs()
    with tenant_scope(a_id):
        enqueue("tests.scope_probe", org_id=b_id, label="b")
        db.session.commit()
        assert current_org_id() == a_id
    assert current_org_id() is None
    assert probes[0]["org_id"] == b_id


# 5. With Redis: RQ gets the job only after commit --------------------------------------------


def test_with_redis_rollback_puts_nothing_in_the_queue(
    app: Flask, redis_jobs: Redis, mail_dir: Path
):
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_jobs)
    user = committed_user()
    job_id = reset_job(user).id
    db.session.flush()

    db.session.rollback()

    assert queue.count == 0
    assert job_row_count(job_id) == 0
    assert eml_messages(mail_dir) == []


def test_with_redis_commit_puts_the_job_in_the_queue_and_runs_nothing_inline(
    app: Flask, redis_jobs: Redis, mail_dir: Path
):
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_jobs)
    user = committed_user()
    job_id = reset_job(user).id
    assert queue.count == 0

    db.session.commit()

    assert queue.count == 1
    assert queue.job_ids == [job_id]
    rq_job = queue.fetch_job(job_id)
    assert rq_job.func_name == "inclusive.jobs.runner.run_job"
    assert rq_job.args == (job_id,)
    assert job_row(job_id).status == JobStatus.QUEUED  # a worker runs it, not this process
    assert eml_messages(mail_dir) == []


def test_with_redis_savepoint_rollback_sends_only_the_outer_job(app: Flask, redis_jobs: Redis):
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_jobs)
    kept_user, dropped_user = committed_user(), committed_user()
    kept_id = reset_job(kept_user).id
    savepoint = db.session.begin_nested()
    dropped_id = reset_job(dropped_user).id
    db.session.flush()
    savepoint.rollback()
    db.session.commit()
    assert queue.job_ids == [kept_id]
    assert job_row_count(dropped_id) == 0


def test_redis_down_keeps_the_row_queued_and_the_caller_unharmed(
    app: Flask, mail_dir: Path, caplog: pytest.LogCaptureFixture
):
    saved = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    app.extensions.pop("inclusive.redis", None)
    try:
        job_id = reset_job(committed_user()).id
        db.session.commit()  # must not raise
    finally:
        conn = app.extensions.pop("inclusive.redis", None)
        if conn is not None:
            conn.close()
            conn.connection_pool.disconnect()
        app.config["REDIS_URL"] = saved
    assert job_row(job_id).status == JobStatus.QUEUED
    assert "stay queued" in caplog.text
    assert eml_messages(mail_dir) == []


# 6. Duplicate delivery -----------------------------------------------------------------------


def test_duplicate_delivery_of_a_finished_job_sends_no_second_mail(mail_dir: Path):
    user = committed_user(email="once@example.org")
    job_id = reset_job(user).id
    db.session.commit()
    assert len(eml_messages(mail_dir)) == 1

    run_job(job_id)  # RQ delivers the same job id again
    run_job(job_id)

    assert len(eml_messages(mail_dir)) == 1
    row = job_row(job_id)
    assert row.status == JobStatus.FINISHED
    assert row.attempts == 1


def test_failed_job_can_be_delivered_again(mail_dir: Path):
    """The counterpart: only finished jobs are skipped; a failed one is retried."""
    record = JobRecord(name="tests.boom", org_id=None, args={})
    db.session.add(record)
    db.session.commit()
    for _ in range(2):
        with pytest.raises(RuntimeError):
            run_job(record.id)
    assert job_row(record.id).attempts == 2
