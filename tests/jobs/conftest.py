"""Fixtures for the job and e-mail tests: Redis-backed jobs, a real SMTP server, a worker."""

from __future__ import annotations

import email
import email.policy
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from redis import Redis

import inclusive
from inclusive.extensions import db

PROJECT_ROOT = Path(inclusive.__file__).resolve().parent.parent
WORKER_TIMEOUT = 60  # seconds


@pytest.fixture
def redis_jobs(app: Flask, redis_url: str, redis_conn: Redis) -> Iterator[Redis]:
    """Point the app at the test Redis database for one test (jobs go to RQ, not inline).

    Yields the test's own connection to that database (flushed before and after). The
    queue gets a name of its own, so that a worker of another test run sharing this Redis
    database cannot take this test's jobs.
    """
    saved = {key: app.config.get(key) for key in ("REDIS_URL", "RQ_QUEUE")}
    _drop_app_redis(app)
    app.config["REDIS_URL"] = redis_url
    app.config["RQ_QUEUE"] = f"inclusive-test-{uuid.uuid4().hex[:12]}"
    try:
        yield redis_conn
    finally:
        _drop_app_redis(app)
        app.config.update(saved)


def _drop_app_redis(app: Flask) -> None:
    conn = app.extensions.pop("inclusive.redis", None)
    if conn is not None:
        conn.close()
        conn.connection_pool.disconnect()


# A real SMTP server -------------------------------------------------------------------


@dataclass
class Received:
    """One message as the SMTP server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()


@dataclass
class StoringHandler:
    """aiosmtpd handler that keeps every envelope it is given."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:  # the name aiosmtpd calls
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: StoringHandler


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1 and a random free port, stopped after the test."""
    handler = StoringHandler()
    controller = None
    for _attempt in range(5):  # the free port may be taken between probing and binding
        candidate = Controller(handler, hostname="127.0.0.1", port=_free_port())
        try:
            candidate.start()
        except (OSError, RuntimeError):
            continue
        controller = candidate
        break
    if controller is None:
        pytest.fail("could not start an SMTP server on 127.0.0.1")
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()


# A real RQ worker process -------------------------------------------------------------


def _worker_environment(app: Flask, redis_url: str, smtp: SmtpServer) -> dict[str, str]:
    """The environment of a worker that sees the test database, Redis and SMTP server."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MAIL_", "RQ_", "FLASK_"))
    }
    env.update(
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=redis_url,
        RQ_QUEUE=app.config["RQ_QUEUE"],
        INSTANCE_PATH=app.config["INSTANCE_PATH"],
        SECRET_KEY=app.config["SECRET_KEY"],
        INCLUSIVE_ENV="testing",
        BASE_URL=app.config["BASE_URL"],
        MAIL_SERVER=smtp.host,
        MAIL_PORT=str(smtp.port),
        MAIL_USE_TLS="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def _run_burst_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``flask --app inclusive worker --burst`` until the queue is empty.

    Ends the test process's database transaction first: the worker must see committed
    rows, and SQLite must not be locked by this process.
    """
    db.session.commit()
    db.session.close()
    command = [sys.executable, "-m", "flask", "--app", "inclusive", "worker", "--burst"]
    try:
        result = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"the worker did not finish in {WORKER_TIMEOUT} s\n"
            f"--- stdout ---\n{_text(exc.stdout)}\n--- stderr ---\n{_text(exc.stderr)}"
        )
    if result.returncode != 0:
        pytest.fail(f"the worker exited with {result.returncode}\n{worker_output(result)}")
    return result


@pytest.fixture
def burst_worker(
    app: Flask, redis_url: str, redis_jobs: Redis, smtp_server: SmtpServer
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a real RQ worker process (``--burst``) against the test Redis, database and SMTP.

    Call it as ``burst_worker()``, or with environment overrides (``MAIL_PORT="1"``).
    """
    env = _worker_environment(app, redis_url, smtp_server)

    def run(**overrides: str) -> subprocess.CompletedProcess[str]:
        return _run_burst_worker({**env, **overrides})

    return run


def worker_output(result: subprocess.CompletedProcess[str]) -> str:
    return f"--- worker stdout ---\n{result.stdout}\n--- worker stderr ---\n{result.stderr}"


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output
