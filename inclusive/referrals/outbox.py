"""The referral outbox: deliveries written with each event, and the worker that sends them.

:func:`notify` writes one :class:`Delivery` per channel and recipient in the transaction of
the event; after the commit RQ runs :func:`run_delivery` under a job id unique to the row.
An attempt first *claims* the row with one conditional UPDATE (pending and due, or sending
with an expired lease), so two workers never send the same attempt; a worker killed
mid-attempt leaves a lease that runs out, and :func:`sweep_deliveries` (every
``DELIVERY_SWEEP_SECONDS`` from the cron scheduler) sends such rows again, as it does rows
whose job Redis forgot. The database, not Redis, is the record; a receiver may see an event
twice (a worker killed after posting), always with the same ``webhook-id``.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import and_, or_, select, update

from inclusive.extensions import db
from inclusive.jobs.mail import render_mail, send_mail
from inclusive.jobs.queue import call_after_commit, job_queue, send_calls
from inclusive.partners.models import PartnerMembership, PartnerRole, Partnership
from inclusive.referrals import webhooks
from inclusive.referrals.models import (
    Audience,
    Channel,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Referral,
    ReferralEvent,
    ReferralState,
    Side,
    WebhookEndpoint,
)
from inclusive.tenancy.models import Membership
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import ALL_TENANTS, tenant_scope
from inclusive.timeutil import utcnow
from inclusive.urls import external_url

log = logging.getLogger(__name__)

#: Events the organization hears of by e-mail besides every partner action.
ORGANIZATION_EVENTS = frozenset({"escalated", "expired", "delivery_failed"})
#: Events the partner's users hear of by e-mail (the organization's and the platform's).
PARTNER_EMAIL_EVENTS = frozenset(
    {"sent", "withdrawn", "provide_info", "message", "reminded", "consent_revoked", "resent"}
)


# Writing -----------------------------------------------------------------------------------


def notify(referral: Referral, event: ReferralEvent) -> list[Delivery]:
    """Write the deliveries of an event (same transaction) and send them after the commit."""
    partnership = db.session.get(Partnership, referral.partnership_id)
    rows: list[Delivery] = []
    if event.kind == "delivery_failed":
        # Tell the partner's administrators by e-mail; never by the webhook that failed.
        for user in _partner_users(referral.partner_id, admins_only=True):
            rows.append(
                _row(referral, event, Channel.EMAIL, Audience.PARTNER, user.email, user.locale)
            )
    else:
        if (
            event.side != Side.PARTNER
            and event.kind in PARTNER_EMAIL_EVENTS
            and (partnership is None or partnership.notify_email)
        ):
            for user in _partner_users(referral.partner_id):
                rows.append(
                    _row(referral, event, Channel.EMAIL, Audience.PARTNER, user.email, user.locale)
                )
        endpoint = _endpoint(referral.partner_id)
        if (
            endpoint is not None
            and endpoint.enabled
            and (partnership is None or partnership.notify_webhook)
        ):
            row = _row(referral, event, Channel.WEBHOOK, Audience.PARTNER, endpoint.url, "en")
            rows.append(row)
    if event.side == Side.PARTNER or event.kind in ORGANIZATION_EVENTS:
        for user in _organization_users(referral):
            rows.append(
                _row(
                    referral,
                    event,
                    Channel.EMAIL,
                    Audience.ORGANIZATION,
                    user.email,
                    user.locale or referral.organization.default_language,
                )
            )
    for row in rows:
        if row.channel == Channel.WEBHOOK:
            row.payload = webhook_payload(referral, event, row)
        db.session.add(row)
    db.session.flush()
    for row in rows:
        call_after_commit(row, run_delivery, _job_id(row))
    return rows


def _row(
    referral: Referral,
    event: ReferralEvent,
    channel: Channel,
    audience: Audience,
    recipient: str,
    locale: str | None,
) -> Delivery:
    return Delivery(
        referral_id=referral.id,
        event_id=event.id,
        partner_id=referral.partner_id,
        channel=channel,
        audience=audience,
        recipient=recipient,
        locale=(locale or "en")[:5],
        status=DeliveryStatus.PENDING,
        next_attempt_at=utcnow(),
    )


def _job_id(row: Delivery) -> str:
    """The RQ job id of a delivery's next attempt: the row's id and the attempt number."""
    return f"delivery-{row.id}-{row.attempts + 1}"


def _partner_users(partner_id: int, admins_only: bool = False) -> list[Any]:
    query = select(PartnerMembership).where(PartnerMembership.partner_id == partner_id)
    if admins_only:
        query = query.where(PartnerMembership.role == PartnerRole.PARTNER_ADMIN)
    return [m.user for m in db.session.scalars(query) if m.user.active]


def _organization_users(referral: Referral) -> list[Any]:
    """The organization's administrators and program managers, and whoever prepared it."""
    query = select(Membership).where(
        Membership.org_id == referral.org_id,
        Membership.role.in_([Role.ADMIN, Role.PROGRAM_MANAGER]),
    )
    users = {m.user.id: m.user for m in db.session.scalars(query) if m.user.active}
    if referral.created_by is not None and referral.created_by.active:
        users.setdefault(referral.created_by.id, referral.created_by)
    return sorted(users.values(), key=lambda u: u.id)


def _endpoint(partner_id: int) -> WebhookEndpoint | None:
    return db.session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.partner_id == partner_id)
    )


def webhook_payload(referral: Referral, event: ReferralEvent, row: Delivery) -> dict[str, Any]:
    """The body a webhook receives: the event, and the referral as it stands after it."""
    return {
        "type": f"referral.{event.kind}",
        "timestamp": event.at.replace(microsecond=0).isoformat() + "Z",
        "data": {
            "referral_id": referral.id,
            "organization": {
                "slug": referral.organization.slug,
                "name": referral.organization.name,
            },
            "state": referral.state,
            "product": referral.product,
            "amount_requested": _money(referral.amount_requested),
            "currency": referral.currency,
            "profile_sha256": referral.profile_sha256,
            "event": {
                "id": event.id,
                "kind": event.kind,
                "side": event.side,
                "from_state": event.from_state,
                "to_state": event.to_state,
                "note": event.note,
                "data": event.data,
                "at": event.at.replace(microsecond=0).isoformat() + "Z",
            },
            "links": {"api": f"/api/v1/referrals/{referral.id}"},
        },
    }


def _money(hundredths: int | None) -> str | None:
    if hundredths is None:
        return None
    whole, cents = divmod(hundredths, 100)
    return f"{whole}.{cents:02d}"


# Sending -----------------------------------------------------------------------------------


def run_delivery(job_id: str) -> None:
    """RQ's entry point: one attempt at the delivery named in ``job_id``."""
    from inclusive.jobs.runner import worker_app

    app = worker_app()
    with app.app_context():
        try:
            attempt(_delivery_id(job_id))
        finally:
            db.session.remove()


def _delivery_id(job_id: str) -> str:
    # "delivery-<uuid>-<attempt>" (or a bare uuid)
    if job_id.startswith("delivery-"):
        return job_id[len("delivery-") :].rsplit("-", 1)[0]
    return job_id


def _claim(delivery_id: str) -> Delivery | None:
    """Take the delivery for one attempt, or None when it is done, not due, or held."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config["DELIVERY_LEASE_SECONDS"])
    result = db.session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            or_(
                and_(
                    Delivery.status == DeliveryStatus.PENDING,
                    Delivery.next_attempt_at <= now + timedelta(seconds=1),
                ),
                and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_until < now),
            ),
        )
        .values(
            status=DeliveryStatus.SENDING, lease_until=now + lease, attempts=Delivery.attempts + 1
        )
        .execution_options(**ALL_TENANTS, synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.scalar(
        select(Delivery).where(Delivery.id == delivery_id).execution_options(**ALL_TENANTS)
    )


def attempt(delivery_id: str) -> str | None:
    """Make one attempt at a delivery; return its outcome (None when there was nothing to do)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    with tenant_scope(delivery.org_id):
        number = delivery.attempts
        try:
            result = _post(delivery) if delivery.channel == Channel.WEBHOOK else _mail(delivery)
        except Exception as exc:  # a bug or a broken template: recorded, retried on schedule
            log.exception("Delivery %s failed before it was sent.", delivery_id)
            db.session.rollback()
            result = _MailResult("retry", f"{type(exc).__name__}: {exc}")
        # The attempt is done: record it (the send itself held no transaction open).
        delivery = db.session.get(Delivery, delivery_id)
        outcome = result.outcome if not isinstance(result, str) else result
        db.session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                number=number,
                status_code=getattr(result, "status_code", None),
                outcome=outcome if isinstance(outcome, str) else "retry",
                error=(getattr(result, "error", "") or "")[:2000],
                duration_ms=getattr(result, "duration_ms", 0) or 0,
                response_excerpt=(getattr(result, "response_excerpt", "") or "")[:2000],
            )
        )
        _settle(delivery, outcome, getattr(result, "retry_after", None))
        error = getattr(result, "error", "")
        if outcome != "delivered":
            delivery.last_error = (error or _status_text(result))[:2000]
        db.session.commit()
        return outcome


def _status_text(result: Any) -> str:
    code = getattr(result, "status_code", None)
    return f"HTTP {code}" if code else ""


class _MailResult:
    def __init__(self, outcome: str, error: str = "", duration_ms: int = 0) -> None:
        self.outcome = outcome
        self.error = error
        self.duration_ms = duration_ms
        self.status_code = None
        self.retry_after = None
        self.response_excerpt = ""


def _post(delivery: Delivery) -> Any:
    endpoint = _endpoint(delivery.partner_id)
    if endpoint is None or not endpoint.enabled:
        return _MailResult("refused", "The partner's webhook endpoint is disabled or removed.")
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    config = current_app.config
    secrets = endpoint.secrets()
    url = endpoint.url
    db.session.commit()  # no transaction stays open while the receiver answers
    return webhooks.post(
        url,
        delivery.webhook_id,
        int(utcnow().timestamp()),
        body,
        secrets,
        timeout=config["WEBHOOK_TIMEOUT"],
        allowed_hosts=config["WEBHOOK_ALLOWED_HOSTS"],
    )


def _mail(delivery: Delivery) -> Any:
    import time

    started = time.monotonic()
    referral = db.session.get(Referral, delivery.referral_id)
    event = db.session.get(ReferralEvent, delivery.event_id)
    if delivery.audience == Audience.PARTNER:
        link = external_url(
            "partner_referrals.show", partner_slug=referral.partner.slug, referral_id=referral.id
        )
    else:
        link = external_url(
            "referrals.show", org_slug=referral.organization.slug, referral_id=referral.id
        )
    mail = render_mail(
        "referral_event",
        to=delivery.recipient,
        locale=delivery.locale,
        referral=referral,
        event=event,
        audience=delivery.audience,
        link=link,
    )
    db.session.commit()
    try:
        send_mail(mail)
    except Exception as exc:  # SMTP down or refusing: try again on the schedule
        return _MailResult(
            "retry", f"{type(exc).__name__}: {exc}", int((time.monotonic() - started) * 1000)
        )
    return _MailResult("delivered", "", int((time.monotonic() - started) * 1000))


def _schedule() -> tuple[float, ...]:
    return tuple(current_app.config.get("DELIVERY_RETRY_SCHEDULE") or webhooks.RETRY_SCHEDULE)


def _settle(delivery: Delivery, outcome: str, retry_after: float | None) -> None:
    now = utcnow()
    delivery.lease_until = None
    if outcome == "delivered":
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        return
    if outcome == "gone":  # 410: the receiver asks never to be called again
        endpoint = _endpoint(delivery.partner_id)
        if endpoint is not None:
            endpoint.enabled = False
            endpoint.disabled_reason = "The receiver answered 410 Gone."
        _dead(delivery)
        return
    if outcome == "refused":
        _dead(delivery)
        return
    delay = webhooks.retry_delay(delivery.attempts, _schedule(), retry_after)
    if delay is None:
        _dead(delivery)
        return
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    _schedule_job(delivery, delay)


def _schedule_job(delivery: Delivery, delay: float) -> None:
    """Ask RQ's scheduler for the next attempt; the sweeper catches it if Redis forgets."""
    queue = job_queue(current_app._get_current_object())
    if queue is None:
        return  # no Redis: `flask deliveries-sweep` (or the next request's sweep) retries
    try:
        queue.enqueue_in(
            timedelta(seconds=delay), run_delivery, _job_id(delivery), job_id=_job_id(delivery)
        )
    except Exception:
        log.exception("Could not schedule the retry of delivery %s; the sweeper will.", delivery.id)


def _dead(delivery: Delivery) -> None:
    """The last attempt failed: say so on the referral and tell the partner's admins."""
    delivery.status = DeliveryStatus.DEAD
    if delivery.channel != Channel.WEBHOOK:
        return
    referral = db.session.get(Referral, delivery.referral_id)
    from inclusive.referrals.services import mark_delivery_failed

    mark_delivery_failed(referral)


def resend(referral: Referral) -> int:
    """Send the referral's dead deliveries again (same rows, same webhook-id); how many.

    A webhook the receiver disabled with 410 Gone stays disabled until the partner sets its
    endpoint again: its deliveries are not sent again (:class:`EndpointDisabled`).
    """
    query = select(Delivery).where(
        Delivery.referral_id == referral.id, Delivery.status == DeliveryStatus.DEAD
    )
    rows = list(db.session.scalars(query))
    endpoint = _endpoint(referral.partner_id)
    if endpoint is None or not endpoint.enabled:
        hooks = [row for row in rows if row.channel == Channel.WEBHOOK]
        rows = [row for row in rows if row.channel != Channel.WEBHOOK]
        if hooks and not rows:
            raise EndpointDisabled()
    for row in rows:
        row.status = DeliveryStatus.PENDING
        row.next_attempt_at = utcnow()
        row.attempts = 0
        row.last_error = ""
    db.session.flush()
    for row in rows:
        call_after_commit(row, run_delivery, _job_id(row))
    return len(rows)


class EndpointDisabled(Exception):
    """The partner's webhook is disabled or removed: its deliveries cannot be sent again."""


# Sweeping ----------------------------------------------------------------------------------


def due_deliveries(limit: int = 5000) -> list[tuple[str, int]]:
    """Deliveries left pending past their time (and a grace), or held by an expired lease."""
    now = utcnow()
    grace = timedelta(seconds=current_app.config["DELIVERY_SWEEP_GRACE"])
    query = (
        select(Delivery.id, Delivery.attempts)
        .where(
            or_(
                and_(
                    Delivery.status == DeliveryStatus.PENDING,
                    Delivery.next_attempt_at <= now - grace,
                ),
                and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_until < now),
            )
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .execution_options(**ALL_TENANTS)  # the sweeper serves every organization
    )
    return [(row.id, row.attempts) for row in db.session.execute(query)]


def sweep_deliveries(app: Flask) -> int:
    """Send again what Redis forgot or a killed worker left; return how many."""
    with app.app_context():
        due = due_deliveries()
        db.session.remove()
        if due:
            stamp = int(utcnow().timestamp())
            send_calls(app, [(run_delivery, f"delivery-{i}-{n + 1}_s{stamp}") for i, n in due])
        return len(due)


def delivery_summary(referral: Referral) -> list[Delivery]:
    """A referral's deliveries, newest first, with their attempts (for the organization)."""
    query = (
        select(Delivery)
        .where(Delivery.referral_id == referral.id)
        .order_by(Delivery.created_at.desc())
    )
    return list(db.session.scalars(query))


__all__ = [
    "ReferralState",
    "attempt",
    "delivery_summary",
    "notify",
    "resend",
    "run_delivery",
    "sweep_deliveries",
]
