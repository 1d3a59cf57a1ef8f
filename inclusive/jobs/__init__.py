"""Background jobs: enqueued after commit, recorded in the database, run by RQ workers."""

from inclusive.jobs.queue import enqueue, job

__all__ = ["enqueue", "job"]
