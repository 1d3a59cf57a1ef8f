"""Periodic work on plans: the daily at-risk sweep."""

from __future__ import annotations

from sqlalchemy import select

from inclusive.extensions import db
from inclusive.jobs import enqueue, job
from inclusive.milestones.services import sweep_risk
from inclusive.tenancy.models import Organization


@job("milestones.sweep_risk")
def sweep_risk_job() -> None:
    """Flag producers whose milestones fell overdue since yesterday (one organization)."""
    sweep_risk()


def enqueue_risk_sweeps() -> int:
    """Ask for the at-risk sweep of every organization (run daily by the scheduler or cron)."""
    org_ids = list(db.session.scalars(select(Organization.id)))
    for org_id in org_ids:
        enqueue("milestones.sweep_risk", org_id=org_id)
    return len(org_ids)
