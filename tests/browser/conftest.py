"""Browser fixtures: the platform served for real (with CSRF) and driven by Debian's chromium.

``live_server`` builds a second app on the session database with real CSRF protection and
serves it from a thread (nothing forks). What the browser does is really committed, so
every test using it must be marked ``committed``: its tables are emptied afterwards.

``browser``, ``context`` and ``page`` replace pytest-playwright's fixtures of the same
names: Playwright's own browser download does not work here, Debian's chromium does.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    sync_playwright,
)
from werkzeug.serving import make_server

from inclusive import create_app
from inclusive.extensions import db, limiter
from tests.conftest import base_config, need

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
#: How chromium reports a response with an error status in the console.
HTTP_STATUS_MESSAGE = "Failed to load resource: the server responded with a status of"
#: Playwright waits this long (ms) for an element or a page before failing the test.
TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class LiveServer:
    """The platform served on a free local port."""

    app: Flask
    url: str

    def link(self, url: str) -> str:
        """Point an absolute link built from BASE_URL (as in e-mails) at this server."""
        base = urlsplit(self.app.config["BASE_URL"])
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == (base.scheme, base.netloc), url
        here = urlsplit(self.url)
        return urlunsplit((here.scheme, here.netloc, parts.path, parts.query, parts.fragment))


@pytest.fixture
def live_server(
    request: pytest.FixtureRequest, app: Flask, instance_dir: Path, mail_dir: Path
) -> Iterator[LiveServer]:
    """A separate app (real CSRF) on the session database, served from a daemon thread."""
    if request.node.get_closest_marker("committed") is None:
        pytest.fail("Tests using live_server must be marked committed (the server commits).")
    config = {
        **base_config(instance_dir),
        "WTF_CSRF_ENABLED": True,
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "MAIL_DIR": str(mail_dir),
    }
    live = create_app(config)
    # Flask-Limiter's state is global: start from empty counts, and leave none behind.
    limiter.reset()
    server = make_server("127.0.0.1", 0, live, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=live, url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        with live.app_context():
            db.session.remove()
            db.engine.dispose()
        limiter.reset()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, once per session."""
    need(os.path.exists(CHROMIUM), f"chromium is not installed at {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors (CSP violations among them) and uncaught exceptions of the test's pages."""
    return []


@pytest.fixture
def new_context(
    browser: Browser, live_server: LiveServer, console_errors: list[str]
) -> Iterator[Callable[..., BrowserContext]]:
    """Open browser contexts on the live server, closed at the end of the test.

    ``new_context(width=360, height=780)``; other keywords go to ``browser.new_context``.
    """
    contexts: list[BrowserContext] = []

    def record_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if message.text.startswith(HTTP_STATUS_MESSAGE) and url == message.page.url:
            # The page's own HTTP status (a failed login is a 401 by design): the tests
            # check what the page says. A script, style or image that fails still counts.
            return
        console_errors.append(f"{message.text} ({url})")

    def record_page_error(error: Error) -> None:
        console_errors.append(f"uncaught: {error}")

    def on_page(page: Page) -> None:
        page.on("console", record_console)
        page.on("pageerror", record_page_error)

    def open_context(width: int = 1280, height: int = 800, **options: Any) -> BrowserContext:
        settings = {
            "base_url": live_server.url,
            "viewport": {"width": width, "height": height},
            "locale": "en-US",
            **options,
        }
        context = browser.new_context(**settings)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        context.on("page", on_page)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    """A new browser context per test, 1280x800, English."""
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def snap(request: pytest.FixtureRequest, console_errors: list[str]) -> Callable[[Page, str], Path]:
    """Screenshot a step to screenshots/<test>-<step>.png; fail on any console error so far."""
    SCREENSHOTS.mkdir(exist_ok=True)
    test_name = request.node.originalname
    for old in SCREENSHOTS.glob(f"{test_name}-*.png"):
        old.unlink()

    def take(page: Page, step: str) -> Path:
        path = SCREENSHOTS / f"{test_name}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        assert console_errors == [], f"console errors by step {step}: {console_errors}"
        return path

    return take


# E-mail written to MAIL_DIR ---------------------------------------------------------


@dataclass(frozen=True)
class Mailbox:
    """The .eml files the live server writes (no MAIL_SERVER), read as a recipient would."""

    folder: Path
    server: LiveServer

    def newest(self) -> EmailMessage:
        """Parse the newest .eml file (their names start with a timestamp)."""
        files = sorted(self.folder.glob("*.eml"), key=lambda p: p.name)
        assert files, f"no e-mail was written to {self.folder}"
        with files[-1].open("rb") as handle:
            message = email.message_from_binary_file(handle, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message

    def link(self, message: EmailMessage, path_prefix: str) -> str:
        """The message's link to ``path_prefix``, pointed at the live server."""
        body = message.get_body(preferencelist=("plain",))
        assert body is not None, "the e-mail has no plain-text part"
        text = body.get_content()
        for url in re.findall(r"https?://\S+", text):
            if urlsplit(url).path.startswith(path_prefix):
                return self.server.link(url)
        raise AssertionError(f"no link to {path_prefix} in the e-mail:\n{text}")


@pytest.fixture
def mailbox(mail_dir: Path, live_server: LiveServer) -> Mailbox:
    return Mailbox(folder=mail_dir, server=live_server)
