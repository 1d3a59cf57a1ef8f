"""Send again the jobs whose rows are still queued: the database, not Redis, is the record."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from inclusive.extensions import db
from inclusive.jobs.models import JobRecord, JobStatus
from inclusive.jobs.queue import send_to_queue
from inclusive.timeutil import utcnow


def sweep_jobs(app: Flask, older_than: int = 300) -> int:
    """Re-send jobs queued for more than ``older_than`` seconds; return how many."""
    with app.app_context():
        cutoff = utcnow() - timedelta(seconds=older_than)
        ids = list(
            db.session.scalars(
                select(JobRecord.id)
                .where(JobRecord.status == JobStatus.QUEUED, JobRecord.created_at < cutoff)
                .limit(10_000)
            )
        )
        db.session.remove()
        if ids:
            send_to_queue(app, ids)
        return len(ids)
