"""Fixtures: one app per session, one rolled-back transaction per test, factories, logins.

The suite runs on PostgreSQL when DATABASE_URL points to it, on SQLite otherwise. Tests
that need Redis, an RQ worker or chromium skip when those are missing, and fail instead
when REQUIRE_SERVICES=1 (as in CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.globals import _cv_app
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import RedisError

from inclusive import create_app
from inclusive.auth.models import User
from inclusive.config import database_uri
from inclusive.extensions import db, limiter
from inclusive.tenancy.models import Membership, Organization
from inclusive.tenancy.scope import tenant_scope
from tests import factories

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
#: Redis database number the tests own (flushed freely); never the one the platform uses.
TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "13"))


def need(condition: bool, reason: str) -> None:
    """Skip when a service is missing; fail instead when REQUIRE_SERVICES=1."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def test_database_url(tmp_dir: Path) -> str:
    return database_uri(os.environ.get("DATABASE_URL"), str(tmp_dir))


def base_config(instance: Path) -> dict[str, Any]:
    """Settings of the test app (on top of the environment)."""
    return {
        "INSTANCE_PATH": str(instance),
        "ENV_NAME": "testing",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-to-pass-checks",
        "SQLALCHEMY_DATABASE_URI": test_database_url(instance),
        "REDIS_URL": None,  # jobs run inline unless a test says otherwise
        "MAIL_SERVER": None,
        "MAIL_DIR": str(instance / "mail"),
        "WTF_CSRF_ENABLED": False,
        # Flask-Limiter keeps one global state: every test app uses the same settings.
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOGIN_LIMIT_PER_IP": "20 per minute",
        "LOGIN_LIMIT_PER_ACCOUNT": "5 per 15 minutes",
        "BASE_URL": "http://testserver.local",
        "SERVER_NAME": None,
    }


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context, as in production.

    pytest-flask keeps a request context pushed for the whole test; without this, the
    client's requests would share its ``g`` (the logged-in user, the organization, the
    locale) from one request to the next.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)  # the request's contexts end before we return
        self.preserve_context = False  # pytest-flask's `with client` would keep them alive
        token = _cv_app.set(None)
        try:
            return super().open(*args, **kwargs)
        finally:
            _cv_app.reset(token)


@pytest.fixture(scope="session")
def app(instance_dir: Path) -> Iterator[Flask]:
    app = create_app(base_config(instance_dir))
    app.test_client_class = IsolatedClient
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _transaction(request: pytest.FixtureRequest, app: Flask) -> Iterator[None]:
    """Run each test inside a transaction that is rolled back at the end.

    Commits in views become savepoints. Tests marked ``committed`` (real worker
    processes, browsers) skip this and clean up by truncating instead.
    """
    if request.node.get_closest_marker("committed"):
        yield
        truncate_all(app)
        return
    with app.app_context():
        engines = db._app_engines[app]
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        engines[None] = connection
        db.session.remove()
        db.session.configure(join_transaction_mode="create_savepoint")
    try:
        yield
    finally:
        with app.app_context():
            db.session.remove()
            outer.rollback()
            connection.close()
            engines[None] = engine
            limiter.reset()


def truncate_all(app: Flask) -> None:
    """Empty every table (for tests whose data other processes must see)."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def mail_dir(app: Flask) -> Iterator[Path]:
    """The folder development e-mails are written to, emptied around the test."""
    path = Path(app.config["MAIL_DIR"])
    shutil.rmtree(path, ignore_errors=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# Factories and people ---------------------------------------------------------------


@pytest.fixture
def org() -> Organization:
    return factories.OrganizationFactory(slug="acme", default_language="en")


@pytest.fixture
def other_org() -> Organization:
    return factories.OrganizationFactory(slug="other-org")


@pytest.fixture
def make_member(org: Organization) -> Callable[..., User]:
    """Create a user with a role in ``org`` (or another organization)."""

    def make(role: str = "admin", organization: Organization | None = None, **user: Any) -> User:
        target = organization or org
        person = factories.UserFactory(**user)
        with tenant_scope(target.id):
            factories.MembershipFactory(user=person, organization=target, role=role)
        return person

    return make


@pytest.fixture
def login(client: FlaskClient) -> Callable[[User], User]:
    """Log a user in on the test client without spending a password hash."""
    from inclusive.auth.sessions import start_session

    def do(user: User) -> User:
        row = start_session(user)
        db.session.commit()
        with client.session_transaction() as session:
            session.clear()
            session["_user_id"] = row.key
            session["_fresh"] = True
        return user

    return do


@pytest.fixture
def login_as(
    make_member: Callable[..., User], login: Callable[[User], User]
) -> Callable[..., User]:
    """Create a member of ``org`` with a role and log them in: ``login_as("viewer")``."""

    def do(role: str = "admin", **user: Any) -> User:
        return login(make_member(role, **user))

    return do


@pytest.fixture
def admin(make_member: Callable[..., User]) -> User:
    return make_member("admin", name="Ada Admin", email="ada@acme.example")


def membership_of(user: User, organization: Organization) -> Membership:
    with tenant_scope(organization.id):
        return db.session.scalars(db.select(Membership).filter_by(user_id=user.id)).one()


# Services ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis database the tests own; skip (or fail in CI) when Redis does not answer."""
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    url = base.rsplit("/", 1)[0] + f"/{TEST_REDIS_DB}" if base.count("/") >= 3 else base
    try:
        Redis.from_url(url, socket_connect_timeout=1).ping()
    except RedisError:
        need(False, f"no Redis answers at {url}")
    return url


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[Redis]:
    conn = Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()
