"""What the parts of the benchmark share: databases, the app, logins, the pages measured."""

from __future__ import annotations

import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"  # git-ignored
INSTANCE_DIR = RESULTS_DIR / "instance"  # the bench app's instance folder (stored uploads)

DEFAULT_SCALE = 1_000_000
SMALL_SCALE = 1_000
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: A fixed key, so that a cookie signed here is accepted by the gunicorn workers.
SECRET_KEY = "bench-secret-key-" + "x" * 40
ORG_SLUG = "bench"
OTHER_SLUG = "bench-other"
ADMIN_EMAIL = "admin@bench.example"
OTHER_ADMIN_EMAIL = "admin@bench-other.example"
#: The producer list's filter (the most common region of the generator) and the
#: program page's program (the most popular program), so both scales show the same page.
LIST_REGION = "Cusco"
BIG_PROGRAM = "Proveedores lácteos del altiplano"
#: The producer whose page is measured: it has plans, figures, diagnostics and purchases.
FEATURED_INDEX = 6


def national_id(org_code: str, index: int) -> str:
    """The national id the generator gives producer number ``index`` of an organization."""
    return f"{org_code}{index:09d}"


def scale_from_env() -> int:
    raw = os.environ.get("BENCH_SCALE", "").replace("_", "").replace(",", "").strip()
    return int(raw) if raw else DEFAULT_SCALE


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def default_database(scale: int) -> str:
    """inclusive_bench at the full scale; a database per other scale (a quick run at
    BENCH_SCALE=20000 then does not throw away the million, which takes long to build)."""
    if scale == SMALL_SCALE:
        return "inclusive_bench_small"
    return "inclusive_bench" if scale == DEFAULT_SCALE else f"inclusive_bench_{scale}"


def libpq_url(url: str) -> str:
    """A URL psycopg accepts (SQLAlchemy's ``postgresql+psycopg://`` is not one)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def connect(url: str, **kwargs: Any) -> psycopg.Connection:
    return psycopg.connect(libpq_url(url), **kwargs)


def database_exists(server_url: str, name: str) -> bool:
    with connect(server_url, autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def database_size(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def app_config(url: str) -> dict[str, Any]:
    """Settings of the bench app, on top of the environment (as create_app takes them)."""
    from inclusive.config import database_uri

    return {
        "SQLALCHEMY_DATABASE_URI": database_uri(url, str(INSTANCE_DIR)),
        "SECRET_KEY": SECRET_KEY,
        "INSTANCE_PATH": str(INSTANCE_DIR),
        "STORAGE_DIR": str(INSTANCE_DIR / "files"),
        "RATELIMIT_ENABLED": False,
        "REDIS_URL": None,
        "MAIL_SERVER": None,
    }


def make_app(url: str) -> Any:
    """The platform's app on a bench database, built as create_app builds it."""
    import logging

    from inclusive import create_app

    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("INCLUSIVE_ENV", "development")
    logging.getLogger("inclusive").setLevel(logging.ERROR)
    app = create_app(app_config(url))
    app.logger.setLevel(logging.ERROR)
    return app


def server_env(url: str) -> dict[str, str]:
    """The environment of the gunicorn that serves the bench app."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=libpq_url(url),
        INCLUSIVE_ENV="development",
        SECRET_KEY=SECRET_KEY,
        INSTANCE_PATH=str(INSTANCE_DIR),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("REDIS_URL", None)
    env.pop("MAIL_SERVER", None)
    return env


@dataclass
class Targets:
    """The pages measured on one database, found by the same rules at every scale."""

    org_id: int
    org_slug: str
    region: str
    program_id: int
    program_enrollments: int
    producer_id: int
    admin_id: int
    producers: int
    quiet_program_id: int  # a program in which no enrollment is active (a filter with no match)

    def list_path(self) -> str:
        return f"/o/{self.org_slug}/producers/?region={self.region}"

    def program_path(self) -> str:
        return f"/o/{self.org_slug}/programs/{self.program_id}"

    def producer_path(self) -> str:
        return f"/o/{self.org_slug}/producers/{self.producer_id}"

    def reference_path(self) -> str:
        return f"/bench/reference?org_id={self.org_id}&region={self.region}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_targets(url: str) -> Targets:
    from bench.generate import ORG_CODE

    with connect(url) as conn:
        org_id = conn.execute(
            "SELECT id FROM organizations WHERE slug = %s", (ORG_SLUG,)
        ).fetchone()[0]
        program_id, enrolled = conn.execute(
            "SELECT p.id, (SELECT count(*) FROM enrollments e WHERE e.org_id = p.org_id "
            "AND e.program_id = p.id) FROM programs p WHERE p.org_id = %s AND p.name = %s",
            (org_id, BIG_PROGRAM),
        ).fetchone()
        producer_id = conn.execute(
            "SELECT id FROM producers WHERE org_id = %s AND national_id = %s",
            (org_id, national_id(ORG_CODE, FEATURED_INDEX)),
        ).fetchone()[0]
        admin_id = conn.execute("SELECT id FROM users WHERE email = %s", (ADMIN_EMAIL,)).fetchone()[
            0
        ]
        producers = conn.execute(
            "SELECT count(*) FROM producers WHERE org_id = %s", (org_id,)
        ).fetchone()[0]
        quiet = conn.execute(
            "SELECT p.id FROM programs p WHERE p.org_id = %s AND NOT EXISTS (SELECT 1 FROM "
            "enrollments e WHERE e.org_id = p.org_id AND e.program_id = p.id "
            "AND e.state = 'active') ORDER BY p.id LIMIT 1",
            (org_id,),
        ).fetchone()
    return Targets(
        org_id=org_id,
        org_slug=ORG_SLUG,
        region=LIST_REGION,
        program_id=program_id,
        program_enrollments=enrolled,
        producer_id=producer_id,
        admin_id=admin_id,
        producers=producers,
        quiet_program_id=quiet[0] if quiet else program_id,
    )


def login_key(app: Any, email: str = ADMIN_EMAIL) -> str:
    """Start a server-side login session for a user (as logging in does); return its key."""
    from datetime import timedelta

    from sqlalchemy import delete, select

    from inclusive.auth.models import AuthSession, User
    from inclusive.auth.sessions import start_session
    from inclusive.extensions import db
    from inclusive.timeutil import utcnow

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        # Sessions of earlier runs are of no use: keep the table small.
        db.session.execute(
            delete(AuthSession).where(
                AuthSession.user_id == user.id,
                AuthSession.created_at < utcnow() - timedelta(hours=6),
            )
        )
        key = start_session(user).key
        db.session.commit()
    return key


def session_cookie(app: Any, key: str) -> tuple[str, str]:
    """The Flask session cookie (name, value) of a logged-in browser, signed with the app's key."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = key
        session["_fresh"] = True
        session.permanent = True
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    if cookie is None:
        raise RuntimeError("The test client kept no session cookie.")
    return name, cookie.value


def random_password() -> str:
    return "bench-" + secrets.token_urlsafe(24)


def fmt_int(n: float) -> str:
    return f"{round(n):,}"
