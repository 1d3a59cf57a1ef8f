"""Periodic work, run by RQ's cron scheduler (`flask --app inclusive cron`)."""

from __future__ import annotations

from inclusive.extensions import db
from inclusive.jobs.runner import worker_app
from inclusive.jobs.sweeper import sweep_jobs

#: Every minute: send again the jobs whose rows are still queued (Redis flushed or down).
JOBS_SWEEP_SECONDS = 60
#: Every night: flag producers whose milestones fell overdue during the day.
RISK_SWEEP_CRON = "15 2 * * *"
#: Every hour: remind partners of unacknowledged referrals, escalate, expire.
REFERRAL_REMINDER_CRON = "5 * * * *"


def sweep_queued_jobs() -> int:
    """Re-send jobs left queued for more than five minutes."""
    return sweep_jobs(worker_app())


def ask_for_risk_sweeps() -> int:
    """Ask for the at-risk sweep of every organization (one job each)."""
    from inclusive.milestones.jobs import enqueue_risk_sweeps

    app = worker_app()
    with app.app_context():
        count = enqueue_risk_sweeps()
        db.session.commit()
        return count


def sweep_pending_deliveries() -> int:
    """Send again referral deliveries left pending (Redis flushed) or held by a dead worker."""
    from inclusive.referrals.outbox import sweep_deliveries

    return sweep_deliveries(worker_app())


def remind_referrals() -> dict[str, int]:
    """Remind, escalate or expire referrals the partner has not acknowledged in time."""
    from inclusive.referrals.services import remind_all

    app = worker_app()
    with app.app_context():
        try:
            done = remind_all()
            db.session.commit()
            return done
        finally:
            db.session.remove()
