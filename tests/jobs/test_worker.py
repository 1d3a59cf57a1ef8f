"""A real RQ worker process, real Redis and a real SMTP server deliver the platform's e-mails.

These tests commit for real (the worker is another process) and run the worker with
``flask --app inclusive worker --burst``.
"""

from __future__ import annotations

import html
import re
import socket
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext
from redis import Redis
from rq import Queue
from sqlalchemy import select

from inclusive.auth.services import authenticate, request_password_reset
from inclusive.extensions import db
from inclusive.jobs.models import JobRecord, JobStatus
from inclusive.jobs.runner import run_job
from inclusive.tenancy.models import Invitation
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import tenant_scope
from inclusive.tenancy.services import invite
from tests import factories

LINK = re.compile(r"https?://[^\s\"'<>]+")
NEW_PASSWORD = "plum kettle orbit lantern 93"


def _links(text: str) -> list[str]:
    return LINK.findall(text)


def _in(locale: str, msgid: str, **values: object) -> str:
    """The compiled translation of ``msgid`` in ``locale``.

    The catalogues are still being translated, so the expected text comes from the
    compiled catalogue rather than being hard-coded; the ``<html lang>`` of each e-mail
    checks the language even while a translation equals its English msgid.
    """
    with force_locale(locale):
        return gettext(msgid, **values)


def _assert_in_language(body: str, locale: str, msgid: str, **values: object) -> None:
    translated = _in(locale, msgid, **values)
    english = msgid % values if values else msgid
    assert translated in body, f"the {locale} text of {msgid!r} is missing from:\n{body}"
    if translated != english:
        assert english not in body, f"the English {msgid!r} is in a {locale} e-mail"


def _fresh() -> None:
    """End this process's transaction: the next read sees what other processes committed."""
    db.session.rollback()


def _rows() -> list[JobRecord]:
    _fresh()
    return list(db.session.scalars(select(JobRecord).order_by(JobRecord.name)))


def _output(result) -> str:
    return f"--- worker stdout ---\n{result.stdout}\n--- worker stderr ---\n{result.stderr}"


@pytest.mark.committed
def test_worker_sends_invitation_and_reset_by_smtp_in_the_recipients_languages(
    app: Flask, client: FlaskClient, redis_jobs: Redis, smtp_server, burst_worker
):
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_jobs)
    base_url = app.config["BASE_URL"]

    org = factories.OrganizationFactory(slug="sol", name="Cooperativa Sol", default_language="es")
    inviter = factories.UserFactory(name="Ines Inviter", locale="en")
    with tenant_scope(org.id):
        factories.MembershipFactory(organization=org, user=inviter, role="admin")
    reader = factories.UserFactory(email="rosa@example.org", name="Rosa Leitora", locale="pt")
    db.session.commit()
    org_id, reader_id = org.id, reader.id

    with tenant_scope(org_id):
        invitation_id = invite(org, inviter, "Nuevo.Socio@Example.org", Role.FIELD_OFFICER).id
    # The page asked in English; the user's own locale (pt) must win.
    request_password_reset("rosa@example.org", "en")
    assert queue.count == 0  # nothing is sent before the commit
    db.session.commit()
    assert queue.count == 2
    assert smtp_server.handler.messages() == []

    output = _output(burst_worker())

    received = smtp_server.handler.messages()
    assert len(received) == 2, output
    by_rcpt = {tuple(r.rcpt_tos): r for r in received}
    assert set(by_rcpt) == {("nuevo.socio@example.org",), ("rosa@example.org",)}, output
    assert queue.count == 0, output
    rows = _rows()
    assert [(r.name, r.status, r.attempts, r.error) for r in rows] == [
        ("auth.password_reset_email", JobStatus.FINISHED, 1, None),
        ("tenancy.invitation_email", JobStatus.FINISHED, 1, None),
    ], output
    assert [r.org_id for r in rows] == [None, org_id]

    # The invitation: in the organization's language (Spanish), with a link that works.
    mail = by_rcpt[("nuevo.socio@example.org",)]
    assert mail.message["To"] == "nuevo.socio@example.org"
    assert mail.message["Subject"] == _in(
        "es", "%(inviter)s invites you to %(org)s", inviter="Ines Inviter", org="Cooperativa Sol"
    )
    text, page_html = mail.text(), html.unescape(mail.html())
    assert '<html lang="es">' in page_html
    with force_locale("es"):
        role = Role.FIELD_OFFICER.label
    _assert_in_language(text, "es", "Hello,")
    _assert_in_language(text, "es", "Open this link to accept:")
    _assert_in_language(
        text,
        "es",
        "%(inviter)s invites you to join %(org)s on Inclusive Ventures as %(role)s.",
        inviter="Ines Inviter",
        org="Cooperativa Sol",
        role=role,
    )
    _assert_in_language(page_html, "es", "Accept the invitation")
    (link,) = _links(text)
    assert link.startswith(base_url + "/invitations/")
    assert f'href="{link}"' in page_html
    page = client.get(urlsplit(link).path)
    assert page.status_code == 200
    assert "Cooperativa Sol" in page.text
    assert "nuevo.socio@example.org" in page.text
    with tenant_scope(org_id):
        assert db.session.get(Invitation, invitation_id).sent_at is not None

    # The reset: in the user's own language (Portuguese), with a single-use link.
    mail = by_rcpt[("rosa@example.org",)]
    assert mail.message["To"] == "rosa@example.org"
    assert mail.message["Subject"] == _in("pt", "Choose a new password")
    text, page_html = mail.text(), html.unescape(mail.html())
    assert '<html lang="pt">' in page_html
    for body in (text, page_html):
        _assert_in_language(body, "pt", "Hello %(name)s,", name="Rosa Leitora")
        _assert_in_language(
            body,
            "pt",
            "Someone asked to choose a new password for your Inclusive Ventures account. "
            "If it was you, open this link:",
        )
    (link,) = _links(text)
    assert link.startswith(base_url + "/password/reset/")
    assert f'href="{link}"' in page_html
    path = urlsplit(link).path

    form = client.get(path)
    assert form.status_code == 200
    assert 'name="password"' in form.text
    assert "rosa@example.org" in form.text
    done = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302, done.text
    assert urlsplit(done.headers["Location"]).path == "/login"
    assert client.get(path).status_code == 400  # the link works once
    _fresh()
    assert authenticate("rosa@example.org", NEW_PASSWORD).id == reader_id

    # The same job ids delivered again through RQ send nothing more.
    for row in rows:
        queue.enqueue(run_job, row.id)
    assert queue.count == 2
    output = _output(burst_worker())
    assert len(smtp_server.handler.messages()) == 2, output
    assert [(r.status, r.attempts) for r in _rows()] == [(JobStatus.FINISHED, 1)] * 2, output


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.committed
def test_worker_records_a_failed_send_on_the_row_and_in_rq(
    app: Flask, redis_jobs: Redis, smtp_server, burst_worker
):
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_jobs)
    factories.UserFactory(email="nobody@example.org")
    db.session.commit()
    request_password_reset("nobody@example.org", "en")
    db.session.commit()
    (job_id,) = queue.job_ids

    output = _output(burst_worker(MAIL_PORT=str(_closed_port())))

    (row,) = _rows()
    assert (row.id, row.status, row.attempts) == (job_id, JobStatus.FAILED, 1), output
    assert "ConnectionRefusedError" in row.error, output
    assert queue.failed_job_registry.get_job_ids() == [job_id], output
    assert smtp_server.handler.messages() == []
