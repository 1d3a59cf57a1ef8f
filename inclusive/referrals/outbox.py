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
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, update

from inclusive.extensions import db
from inclusive.jobs.mail import render_mail, send_mail
from inclusive.jobs.queue import call_after_commit, job_queue, send_calls
from inclusive.jobs.runner import short_job
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
    Side,
    WebhookEndpoint,
    signing_secrets,
    webhook_id,
)
from inclusive.referrals.profile import decimal_amount
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
        call_after_commit(row, run_delivery, _job_id(row.id, row.attempts + 1))
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


def _job_id(delivery_id: str, attempt: int) -> str:
    """The RQ job id of a delivery's attempt: the row's id and the attempt's number."""
    return f"delivery-{delivery_id}-{attempt}"


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
            "amount_requested": decimal_amount(referral.amount_requested),
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


# Sending -----------------------------------------------------------------------------------


@short_job
def run_delivery(job_id: str) -> None:
    """RQ's entry point: one attempt at the delivery named in ``job_id`` (a short job: a
    forking worker runs it without a work horse)."""
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


@dataclass(frozen=True)
class Claim:
    """What an attempt needs, read by the UPDATE that claimed the row: the row's fields and,
    for a webhook, the partner's endpoint as it is now (None when there is none)."""

    id: str
    org_id: int
    referral_id: int
    event_id: int
    partner_id: int
    channel: str
    audience: str
    recipient: str
    locale: str
    payload: dict[str, Any]
    attempts: int  # this attempt's number
    url: str | None = None
    secret: str | None = None
    previous_secret: str | None = None
    previous_secret_until: datetime | None = None
    enabled: bool | None = None

    @property
    def webhook_id(self) -> str:
        return webhook_id(self.id)


@dataclass(frozen=True)
class Result:
    """How an attempt went: ``delivered``, ``retry``, ``gone`` (410) or ``refused``."""

    outcome: str
    error: str = ""
    duration_ms: int = 0
    status_code: int | None = None
    retry_after: float | None = None
    response_excerpt: str = ""


# An attempt's own bookkeeping is three Core statements run on the session's connection
# rather than through the ORM (whose per-statement work would double an attempt's cost): the
# claim, then the attempt's record and the row's new state. They name their row by primary
# key and serve every organization (ALL_TENANTS says so, as the sweeper's query does).
_deliveries = Delivery.__table__
_attempts = DeliveryAttempt.__table__
_endpoints = WebhookEndpoint.__table__


def _endpoint_field(column: Any) -> Any:
    return (
        select(column)
        .where(_endpoints.c.partner_id == _deliveries.c.partner_id)
        .correlate(_deliveries)
        .scalar_subquery()
    )


_d = _deliveries.c
_EVERY_TENANT = {"execution_options": ALL_TENANTS}
# The statements are built once, with bound parameters: building one costs about as much
# Python as running it.

#: The claim: a row pending and due, or sending with an expired lease, becomes this
#: attempt's; it returns what the attempt needs, the partner's endpoint included.
_CLAIM = (
    update(_deliveries)
    .where(
        _d.id == bindparam("delivery_id"),
        or_(
            and_(_d.status == DeliveryStatus.PENDING, _d.next_attempt_at <= bindparam("now")),
            and_(_d.status == DeliveryStatus.SENDING, _d.lease_until < bindparam("now")),
        ),
    )
    .values(status=DeliveryStatus.SENDING, lease_until=bindparam("lease"), attempts=_d.attempts + 1)
    .returning(
        _d.id,
        _d.org_id,
        _d.referral_id,
        _d.event_id,
        _d.partner_id,
        _d.channel,
        _d.audience,
        _d.recipient,
        _d.locale,
        _d.payload,
        _d.attempts,
        _endpoint_field(_endpoints.c.url),
        _endpoint_field(_endpoints.c.secret),
        _endpoint_field(_endpoints.c.previous_secret),
        _endpoint_field(_endpoints.c.previous_secret_until),
        _endpoint_field(_endpoints.c.enabled),
    )
)

#: The attempt's record (its values are the parameters).
_RECORD = insert(_attempts)

#: The row's new state, if it is still this attempt's (sending, with its number); a
#: delivered_at or next_attempt_at of None leaves the column as it is.
_SETTLE = (
    update(_deliveries)
    .where(
        _d.id == bindparam("delivery_id"),
        _d.status == DeliveryStatus.SENDING,
        _d.attempts == bindparam("attempt"),
    )
    .values(
        status=bindparam("new_status"),
        lease_until=None,
        last_error=bindparam("error"),
        delivered_at=func.coalesce(
            bindparam("delivered", type_=_d.delivered_at.type), _d.delivered_at
        ),
        next_attempt_at=func.coalesce(
            bindparam("next_attempt", type_=_d.next_attempt_at.type), _d.next_attempt_at
        ),
    )
)


_ATTEMPT_COLUMNS = (
    "org_id",
    "delivery_id",
    "number",
    "at",
    "status_code",
    "outcome",
    "error",
    "duration_ms",
    "response_excerpt",
)

# On PostgreSQL the same work takes fewer round trips, each of which costs a busy worker a
# wait for the server: the claim says in its own RETURNING that its transaction's commit
# need not wait for the disk, and the attempt's record rides in the settle as a CTE (which
# runs whether or not the settle finds its row). The commit returning before the WAL is on
# disk is safe for this bookkeeping: a crash may forget a claim (the row is pending again) or
# a settle (the lease runs out and the attempt is made again, with the same webhook-id),
# never the delivery rows, which the event's own transaction wrote durably.
_ASYNC_COMMIT = func.set_config("synchronous_commit", "off", True)
_CLAIM_PG = _CLAIM.returning(_ASYNC_COMMIT)
_RECORD_AND_SETTLE_PG = _SETTLE.add_cte(
    insert(_attempts)
    .values({name: bindparam(f"a_{name}") for name in _ATTEMPT_COLUMNS})
    .returning(_ASYNC_COMMIT)
    .cte("recorded")
)


def _postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


@contextmanager
def _own_connection() -> Iterator[Connection | None]:
    """On PostgreSQL, when the session's bind is the app's engine: one connection for the
    whole attempt, in autocommit. The claim and the record-and-settle are one statement each,
    so each is a transaction of its own without BEGIN and COMMIT round trips, and the pool
    checks the connection once rather than once per transaction. None otherwise (SQLite, or
    a session bound to a connection, as in the tests): the session's transactions serve."""
    bind = db.session.get_bind()
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        yield None
        return
    with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def _claim(delivery_id: str, own: Connection | None) -> Claim | None:
    """Take the delivery for one attempt, or None when it is done, not due, or held.

    One conditional UPDATE … RETURNING (with the endpoint read by subqueries): two workers
    never hold the same attempt, and nothing need be read again. Committed before returning.
    """
    now = utcnow()
    lease = now + timedelta(seconds=current_app.config["DELIVERY_LEASE_SECONDS"])
    params = {"delivery_id": delivery_id, "now": now, "lease": lease}
    if own is not None:
        row = own.execute(_CLAIM_PG, params, **_EVERY_TENANT).first()  # autocommitted
    else:
        conn = db.session.connection()
        statement = _CLAIM_PG if _postgresql(conn) else _CLAIM
        row = conn.execute(statement, params, **_EVERY_TENANT).first()
        db.session.commit()  # no transaction stays open while the receiver answers
    return None if row is None else Claim(*row[:16])


def _settlement(
    result: Result, attempts: int, now: datetime
) -> tuple[dict[str, Any], float | None]:
    """The row's new state after an attempt (the parameters of :data:`_SETTLE` but the row's), and
    the delay before the next attempt, if one is due."""
    if result.outcome == "delivered":
        status, delay = DeliveryStatus.DELIVERED, None
    else:
        delay = None
        if result.outcome == "retry":
            delay = webhooks.retry_delay(attempts, _schedule(), result.retry_after)
        status = DeliveryStatus.DEAD if delay is None else DeliveryStatus.PENDING
    return {
        "new_status": status,
        "error": "" if status == DeliveryStatus.DELIVERED else result.error[:2000],
        "delivered": now if status == DeliveryStatus.DELIVERED else None,
        "next_attempt": None if delay is None else now + timedelta(seconds=delay),
    }, delay


def attempt(delivery_id: str) -> str | None:
    """Make one attempt at a delivery; return its outcome (None when there was nothing to do).

    Two short transactions: the claim (with what the send needs), then the attempt's record
    and the row's new state; none is open while the receiver or the SMTP server answers.
    """
    with _own_connection() as own:
        claim = _claim(delivery_id, own)
        if claim is None:
            return None
        try:
            if claim.channel == Channel.WEBHOOK:
                result = _post(claim)
            else:
                with tenant_scope(claim.org_id):
                    result = _mail(claim)
        except Exception as exc:  # a bug or a broken template: recorded, retried on schedule
            log.exception("Delivery %s failed before it was sent.", delivery_id)
            db.session.rollback()
            result = Result("retry", f"{type(exc).__name__}: {exc}")
        delay = _record(claim, result, own)
    if delay is not None:
        _schedule_job(claim, delay)
    return result.outcome


def _post(claim: Claim) -> Result:
    if not claim.url or not claim.enabled:
        return Result("refused", "The partner's webhook endpoint is disabled or removed.")
    now = utcnow()
    secrets = signing_secrets(
        claim.secret or "", claim.previous_secret, claim.previous_secret_until, now
    )
    body = json.dumps(claim.payload, separators=(",", ":"), ensure_ascii=False).encode()
    config = current_app.config
    sent = webhooks.post(
        claim.url,
        claim.webhook_id,
        int(now.timestamp()),
        body,
        secrets,
        timeout=config["WEBHOOK_TIMEOUT"],
        allowed_hosts=config["WEBHOOK_ALLOWED_HOSTS"],
    )
    return Result(
        sent.outcome,
        sent.error or (f"HTTP {sent.status_code}" if sent.outcome != "delivered" else ""),
        sent.duration_ms,
        sent.status_code,
        sent.retry_after,
        sent.response_excerpt,
    )


def _mail(claim: Claim) -> Result:
    started = time.monotonic()
    referral = db.session.get(Referral, claim.referral_id)
    event = db.session.get(ReferralEvent, claim.event_id)
    if claim.audience == Audience.PARTNER:
        link = external_url(
            "partner_referrals.show", partner_slug=referral.partner.slug, referral_id=referral.id
        )
    else:
        link = external_url(
            "referrals.show", org_slug=referral.organization.slug, referral_id=referral.id
        )
    mail = render_mail(
        "referral_event",
        to=claim.recipient,
        locale=claim.locale,
        referral=referral,
        event=event,
        audience=claim.audience,
        link=link,
    )
    db.session.commit()
    try:
        send_mail(mail)
    except Exception as exc:  # SMTP down or refusing: try again on the schedule
        return Result("retry", f"{type(exc).__name__}: {exc}", _ms(started))
    return Result("delivered", "", _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _schedule() -> tuple[float, ...]:
    return tuple(current_app.config.get("DELIVERY_RETRY_SCHEDULE") or webhooks.RETRY_SCHEDULE)


def _record(claim: Claim, result: Result, own: Connection | None) -> float | None:
    """Record the attempt and settle the row, fenced by the claim: an attempt that outlived
    its lease (another worker took the row meanwhile) records itself and changes nothing.
    A row that dies says so on its referral in the same transaction (:func:`_dead`), in the
    session. Returns the delay before the next attempt, if one is due."""
    now = utcnow()
    attempt_row = {
        "org_id": claim.org_id,
        "delivery_id": claim.id,
        "number": claim.attempts,
        "at": now,
        "status_code": result.status_code,
        "outcome": result.outcome,
        "error": result.error[:2000],
        "duration_ms": result.duration_ms,
        "response_excerpt": result.response_excerpt[:2000],
    }
    settle, delay = _settlement(result, claim.attempts, now)
    params = {**settle, "delivery_id": claim.id, "attempt": claim.attempts}
    params.update({f"a_{name}": value for name, value in attempt_row.items()})
    dies = settle["new_status"] == DeliveryStatus.DEAD
    if own is not None and not dies:
        settled = own.execute(_RECORD_AND_SETTLE_PG, params, **_EVERY_TENANT)  # autocommitted
    else:
        conn = db.session.connection()
        if _postgresql(conn):
            settled = conn.execute(_RECORD_AND_SETTLE_PG, params, **_EVERY_TENANT)
        else:
            conn.execute(_RECORD, attempt_row, **_EVERY_TENANT)
            settled = conn.execute(_SETTLE, params, **_EVERY_TENANT)
    if settled.rowcount != 1:
        db.session.commit()  # the attempt is on record; the row is another attempt's now
        log.warning("Delivery %s attempt %d outlived its lease.", claim.id, claim.attempts)
        return None
    if dies:
        with tenant_scope(claim.org_id):
            _dead(claim, gone=result.outcome == "gone")
    db.session.commit()
    return delay


def _dead(claim: Claim, gone: bool) -> None:
    """The last attempt failed: a 410 disables the endpoint; a dead webhook says so on the
    referral and tells the partner's admins."""
    if gone:
        endpoint = _endpoint(claim.partner_id)
        if endpoint is not None:
            endpoint.enabled = False
            endpoint.disabled_reason = "The receiver answered 410 Gone."
    if claim.channel != Channel.WEBHOOK:
        return
    from inclusive.referrals.services import mark_delivery_failed

    mark_delivery_failed(db.session.get(Referral, claim.referral_id))
    db.session.flush()


def _schedule_job(claim: Claim, delay: float) -> None:
    """Ask RQ's scheduler for the next attempt, after the commit that made it due; the
    sweeper sends it if Redis or the scheduler forgets."""
    queue = job_queue(current_app._get_current_object())
    if queue is None:
        return  # no Redis: `flask deliveries-sweep` (or the cron scheduler) retries
    job_id = _job_id(claim.id, claim.attempts + 1)
    try:
        # RQ's scheduler keeps whole seconds and runs a job once its second has come: round
        # up, or the attempt comes up to a second early (before a receiver's Retry-After).
        when = datetime.fromtimestamp(math.ceil(time.time() + delay), UTC)
        queue.enqueue_at(when, run_delivery, job_id, job_id=job_id)
    except Exception:
        log.exception("Could not schedule the retry of delivery %s; the sweeper will.", claim.id)


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
        call_after_commit(row, run_delivery, _job_id(row.id, row.attempts + 1))
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
        calls = [(run_delivery, _job_id(i, n + 1)) for i, n in due]
        queue = job_queue(app)
        if calls and queue is not None:
            # A row whose next attempt's job waits in the queue needs no other: one more per
            # sweep floods a queue that is behind. Any other is sent again: a scheduled retry
            # (RQ's scheduler dies with a SIGKILLed worker and is not replaced for minutes),
            # a job a killed worker had taken, a job Redis forgot.
            try:
                waiting = set(queue.get_job_ids())
            except Exception:
                log.exception("Could not read the queue; every due delivery is sent again.")
                waiting = set()
            calls = [call for call in calls if call[1] not in waiting]
        return send_calls(app, calls) if calls else 0


def delivery_summary(referral: Referral) -> list[Delivery]:
    """A referral's deliveries, newest first, with their attempts (for the organization)."""
    query = (
        select(Delivery)
        .where(Delivery.referral_id == referral.id)
        .order_by(Delivery.created_at.desc())
    )
    return list(db.session.scalars(query))
