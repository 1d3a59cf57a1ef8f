"""Operator commands: ``flask --app inclusive <command> --help`` explains each."""

from __future__ import annotations

import os
from typing import NoReturn

import click
from flask import Flask, current_app
from sqlalchemy import select

from inclusive.auth.models import User
from inclusive.auth.services import AccountError, create_user, find_user
from inclusive.extensions import db
from inclusive.partners.models import PartnerKind, PartnerRole
from inclusive.partners.services import (
    PartnerError,
    add_partner_user,
    create_partner,
    link_partner,
    partner_by_slug,
)
from inclusive.tenancy.models import Membership, Organization
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import tenant_scope
from inclusive.tenancy.services import MembershipError, check_slug


def _fail(message: str) -> NoReturn:
    db.session.rollback()
    raise click.ClickException(message)


@click.command("create-org")
@click.argument("slug")
@click.option("--name", required=True, help="The organization's name.")
@click.option("--country", default="PE", show_default=True, help="ISO 3166 country code.")
@click.option("--language", type=click.Choice(["en", "es", "pt"]), default="es", show_default=True)
@click.option("--currency", default="PEN", show_default=True, help="ISO 4217 currency code.")
def create_org_command(slug: str, name: str, country: str, language: str, currency: str) -> None:
    """Create an organization (tenant) with this SLUG, its web address under /o/."""
    if len(country) != 2 or not country.isalpha():
        _fail(f"--country must be a two-letter ISO code, not {country!r}.")
    if len(currency) != 3 or not currency.isalpha():
        _fail(f"--currency must be a three-letter ISO code, not {currency!r}.")
    try:
        check_slug(slug)
    except MembershipError as exc:
        _fail(f"{slug!r}: {exc}")
    org = Organization(
        slug=slug,
        name=name.strip(),
        country=country.upper(),
        default_language=language,
        currency=currency.upper(),
    )
    db.session.add(org)
    db.session.commit()
    click.echo(f"Created organization {slug} ({name}); add an admin with create-user.")


@click.command("create-user")
@click.argument("email")
@click.option("--password", help="Needed when the user is new (at least 10 characters).")
@click.option("--name", help="The user's name (defaults to the part of EMAIL before @).")
@click.option("--org", "org_slug", help="Slug of the organization to join.")
@click.option("--partner", "partner_slug", help="Slug of the capital partner to join.")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role] + [r.value for r in PartnerRole]),
    required=True,
    help="Role in --org (staff roles) or in --partner (partner_admin, loan_officer).",
)
def create_user_command(
    email: str,
    password: str | None,
    name: str | None,
    org_slug: str | None,
    partner_slug: str | None,
    role: str,
) -> None:
    """Create a user, or give an existing one a role in an organization or a partner."""
    if bool(org_slug) == bool(partner_slug):
        _fail("Give exactly one of --org or --partner.")
    if partner_slug:
        _create_partner_user(email, password, name, partner_slug, role)
        return
    if role not in set(Role):
        _fail(f"--role {role!r} is a partner role; staff roles are: {', '.join(Role)}.")
    org = db.session.scalar(select(Organization).filter_by(slug=org_slug))
    if org is None:
        _fail(f"No organization has the slug {org_slug!r}.")
    user, created = _new_or_existing_user(email, password, name, org.default_language)
    with tenant_scope(org.id):
        membership = db.session.scalar(select(Membership).filter_by(user_id=user.id))
        if membership is None:
            db.session.add(Membership(user_id=user.id, role=role))
        else:
            membership.role = role
        db.session.commit()
    click.echo(f"{'Created' if created else 'Updated'} {user.email}: {role} of {org_slug}.")


def _new_or_existing_user(
    email: str, password: str | None, name: str | None, locale: str | None
) -> tuple[User, bool]:
    """The user with this address, or a new one; and whether it is new."""
    user = find_user(email)
    if user is not None:
        return user, False
    if not password:
        _fail("--password is required for a new user.")
    if "@" not in email:
        _fail(f"{email!r} is not an e-mail address.")
    try:
        return create_user(email, name or email.split("@")[0], password, locale), True
    except AccountError as exc:
        _fail(str(exc))


def _create_partner_user(
    email: str, password: str | None, name: str | None, partner_slug: str, role: str
) -> None:
    if role not in set(PartnerRole):
        _fail(f"--role {role!r} is a staff role; partner roles are: {', '.join(PartnerRole)}.")
    partner = partner_by_slug(partner_slug)
    if partner is None:
        _fail(f"No capital partner has the slug {partner_slug!r}.")
    user, created = _new_or_existing_user(email, password, name, None)
    add_partner_user(partner, user, PartnerRole(role))
    db.session.commit()
    click.echo(f"{'Created' if created else 'Updated'} {user.email}: {role} of {partner_slug}.")


@click.command("create-partner")
@click.argument("slug")
@click.option("--name", required=True, help="The capital partner's name.")
@click.option("--kind", type=click.Choice([k.value for k in PartnerKind]), required=True)
@click.option("--country", default="", help="ISO 3166 country code (two letters).")
def create_partner_command(slug: str, name: str, kind: str, country: str) -> None:
    """Register a capital partner with this SLUG, its web address under /p/."""
    try:
        create_partner(slug=slug, name=name, kind=PartnerKind(kind), country=country)
    except PartnerError as exc:
        _fail(f"{slug!r}: {exc}")
    db.session.commit()
    click.echo(f"Created capital partner {slug} ({name}); add its users with create-user.")


@click.command("link-partner")
@click.option("--org", "org_slug", required=True, help="Slug of the organization.")
@click.option("--partner", "partner_slug", required=True, help="Slug of the capital partner.")
def link_partner_command(org_slug: str, partner_slug: str) -> None:
    """Make an active partnership between an organization and a capital partner."""
    org = db.session.scalar(select(Organization).filter_by(slug=org_slug))
    if org is None:
        _fail(f"No organization has the slug {org_slug!r}.")
    partner = partner_by_slug(partner_slug)
    if partner is None:
        _fail(f"No capital partner has the slug {partner_slug!r}.")
    _partnership, changed = link_partner(org, partner)
    db.session.commit()
    if changed:
        click.echo(f"{org_slug} and {partner_slug} are now partners.")
    else:
        click.echo(f"{org_slug} and {partner_slug} were already partners; nothing changed.")


@click.command("demo-data")
def demo_data_command() -> None:
    """Load the demo organizations and users (running it again changes nothing)."""
    from inclusive.demo import load_demo_data

    for line in load_demo_data():
        click.echo(line)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty (tests, cron).")
@click.option(
    "--simple",
    is_flag=True,
    help="Run every job in this process (by default, all but short ones get a forked process).",
)
def worker_command(burst: bool, simple: bool) -> None:
    """Run an RQ worker (with its scheduler) for the platform's queue."""
    from rq import SimpleWorker

    from inclusive.jobs.queue import job_queue
    from inclusive.jobs.runner import PlatformWorker, forget_inherited_connections
    from inclusive.jobs.sweeper import sweep_jobs
    from inclusive.referrals.outbox import sweep_deliveries

    app: Flask = current_app._get_current_object()
    queue = job_queue(app)
    if queue is None:
        raise click.ClickException("REDIS_URL is not set: there is no queue to work on.")
    resent = sweep_jobs(app)
    if resent:
        click.echo(f"Sent {resent} job(s) left queued (Redis was down or flushed).")
    redelivered = sweep_deliveries(app)
    if redelivered:
        click.echo(f"Sent {redelivered} referral delivery(ies) left pending.")
    os.register_at_fork(after_in_child=lambda: forget_inherited_connections(app))
    worker_class = SimpleWorker if simple else PlatformWorker
    worker = worker_class([queue], connection=queue.connection)
    click.echo(f"Worker {os.getpid()} on queue {queue.name!r} ({worker_class.__name__}).")
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


@click.command("cron")
def cron_command() -> None:
    """Run RQ's cron scheduler: the jobs sweep every minute, the at-risk sweep nightly."""
    from rq.cron import CronScheduler

    from inclusive.jobs import periodic
    from inclusive.jobs.queue import job_queue

    queue = job_queue(current_app._get_current_object())
    if queue is None:
        raise click.ClickException("REDIS_URL is not set: there is no queue to schedule on.")
    scheduler = CronScheduler(connection=queue.connection)
    scheduler.register(periodic.sweep_queued_jobs, queue.name, interval=periodic.JOBS_SWEEP_SECONDS)
    scheduler.register(periodic.ask_for_risk_sweeps, queue.name, cron=periodic.RISK_SWEEP_CRON)
    scheduler.register(
        periodic.sweep_pending_deliveries,
        queue.name,
        interval=current_app.config["DELIVERY_SWEEP_SECONDS"],
    )
    scheduler.register(periodic.remind_referrals, queue.name, cron=periodic.REFERRAL_REMINDER_CRON)
    click.echo(f"Cron scheduler on queue {queue.name!r}.")
    scheduler.start()


@click.command("jobs-sweep")
@click.option("--older-than", default=300, show_default=True, help="Seconds a job may wait.")
def jobs_sweep_command(older_than: int) -> None:
    """Send again the jobs whose rows are still queued (run from cron every few minutes)."""
    from inclusive.jobs.sweeper import sweep_jobs

    click.echo(f"Sent {sweep_jobs(current_app._get_current_object(), older_than)} job(s).")


@click.command("deliveries-sweep")
def deliveries_sweep_command() -> None:
    """Send again referral deliveries left pending or held by a worker that died."""
    from inclusive.referrals.outbox import sweep_deliveries

    click.echo(f"Sent {sweep_deliveries(current_app._get_current_object())} delivery(ies).")


@click.command("remind-referrals")
def remind_referrals_command() -> None:
    """Remind partners of unacknowledged referrals, escalate, expire (run hourly)."""
    from inclusive.referrals.services import remind_all

    done = remind_all()
    db.session.commit()
    summary = ", ".join(f"{count} {what}" for what, count in sorted(done.items())) or "nothing"
    click.echo(f"Referral reminders: {summary}.")


@click.command("sweep-risk")
def sweep_risk_command() -> None:
    """Ask for the daily at-risk sweep of every organization (run from cron daily)."""
    from inclusive.milestones.jobs import enqueue_risk_sweeps

    count = enqueue_risk_sweeps()
    db.session.commit()
    click.echo(f"At-risk sweep asked for {count} organization(s).")


def register_commands(app: Flask) -> None:
    """Add the platform's commands to ``flask``."""
    for command in (
        cron_command,
        deliveries_sweep_command,
        remind_referrals_command,
        create_org_command,
        create_partner_command,
        create_user_command,
        link_partner_command,
        demo_data_command,
        worker_command,
        jobs_sweep_command,
        sweep_risk_command,
    ):
        app.cli.add_command(command)
