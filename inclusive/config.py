"""Settings: read from the environment here and nowhere else."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("development", "production", "testing")
LANGUAGES = ("en", "es", "pt")


class ConfigError(RuntimeError):
    """The environment does not describe a platform that may start."""


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def database_uri(url: str | None, instance_path: str) -> str:
    """Return the SQLAlchemy URI: DATABASE_URL (psycopg 3) or SQLite in the instance folder."""
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "inclusive.db")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _development_secret(instance_path: str) -> str:
    """Generate a secret key once and keep it in the instance folder (development only)."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load_settings(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Turn environment variables into Flask settings, refusing unsafe production setups."""
    env = environ.get("INCLUSIVE_ENV", "development").strip().lower()
    if env not in ENVIRONMENTS:
        raise ConfigError(f"INCLUSIVE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    production = env == "production"

    secret_key = environ.get("SECRET_KEY", "")
    if not secret_key:
        if production:
            raise ConfigError("SECRET_KEY must be set in production (a long random string).")
        secret_key = _development_secret(instance_path)

    redis_url = environ.get("REDIS_URL") or None
    mail_server = environ.get("MAIL_SERVER") or None
    return {
        "ENV_NAME": env,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_uri(environ.get("DATABASE_URL"), instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url,
        "RQ_QUEUE": environ.get("RQ_QUEUE", "inclusive"),
        "BASE_URL": environ.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "SIGNUP_ENABLED": _flag(environ.get("SIGNUP_ENABLED"), default=True),
        # Sessions and cookies: Secure only where the platform is served over https.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_NAME": "__Host-session" if production else "session",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": production,
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
        "HSTS_ENABLED": production,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        # Links sent by e-mail.
        "INVITATION_MAX_AGE": int(environ.get("INVITATION_MAX_AGE", 7 * 24 * 3600)),
        "PASSWORD_RESET_MAX_AGE": int(environ.get("PASSWORD_RESET_MAX_AGE", 3600)),
        # Login throttling: per IP, and per account (a known device is counted apart).
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "LOGIN_LIMIT_PER_IP": environ.get("LOGIN_LIMIT_PER_IP", "30 per minute;300 per hour"),
        "LOGIN_LIMIT_PER_ACCOUNT": environ.get("LOGIN_LIMIT_PER_ACCOUNT", "10 per 15 minutes"),
        # E-mail: SMTP when MAIL_SERVER is set, otherwise .eml files outside production.
        "MAIL_SERVER": mail_server,
        "MAIL_PORT": int(environ.get("MAIL_PORT", 587 if production else 25)),
        "MAIL_USERNAME": environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": environ.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _flag(environ.get("MAIL_USE_TLS"), default=production),
        "MAIL_FROM": environ.get("MAIL_FROM", "Inclusive Ventures <no-reply@localhost>"),
        "MAIL_DIR": str(Path(instance_path) / "mail"),
        # CSV imports: refused above these sizes; larger than IMPORT_INLINE_ROWS runs as a job.
        "IMPORT_MAX_BYTES": int(environ.get("IMPORT_MAX_BYTES", 20 * 1024 * 1024)),
        "IMPORT_INLINE_ROWS": int(environ.get("IMPORT_INLINE_ROWS", 2000)),
        "IMPORT_MAX_ROWS": int(environ.get("IMPORT_MAX_ROWS", 200_000)),
        # Referral deliveries (the outbox): webhooks per the Standard Webhooks specification.
        "WEBHOOK_TIMEOUT": float(environ.get("WEBHOOK_TIMEOUT", 15)),
        # Hosts a webhook may point at although they are private or loopback addresses.
        "WEBHOOK_ALLOWED_HOSTS": _list(
            environ.get("WEBHOOK_ALLOWED_HOSTS", "" if production else "127.0.0.1,localhost,::1")
        ),
        # Seconds before each retry (the specification's schedule unless set).
        "DELIVERY_RETRY_SCHEDULE": _seconds(environ.get("DELIVERY_RETRY_SCHEDULE")),
        # An attempt holds its delivery this long; a killed worker's delivery is taken again after.
        "DELIVERY_LEASE_SECONDS": int(environ.get("DELIVERY_LEASE_SECONDS", 60)),
        # How often the cron scheduler looks for deliveries left pending (Redis flushed or down).
        "DELIVERY_SWEEP_SECONDS": int(environ.get("DELIVERY_SWEEP_SECONDS", 30)),
        "DELIVERY_SWEEP_GRACE": int(environ.get("DELIVERY_SWEEP_GRACE", 30)),
        # Hours a rotated webhook secret stays valid beside the new one.
        "WEBHOOK_ROTATION_HOURS": int(environ.get("WEBHOOK_ROTATION_HOURS", 24)),
        # Languages.
        "LANGUAGES": LANGUAGES,
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
    }


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _seconds(value: str | None) -> tuple[float, ...] | None:
    """A comma-separated list of seconds, or None for the default schedule."""
    if not value:
        return None
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError("DELIVERY_RETRY_SCHEDULE must be seconds separated by commas.") from exc


def check_production(config: Mapping[str, Any]) -> None:
    """Refuse to start a production app whose settings would be unsafe."""
    if config.get("ENV_NAME") != "production":
        return
    if not config.get("SECRET_KEY") or len(str(config["SECRET_KEY"])) < 32:
        raise ConfigError("SECRET_KEY must be set in production, at least 32 characters long.")
    if not config.get("MAIL_SERVER"):
        raise ConfigError("MAIL_SERVER must be set in production (invitations, password resets).")
    if str(config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"):
        raise ConfigError("DATABASE_URL must point to PostgreSQL in production.")
    if config["DELIVERY_LEASE_SECONDS"] < config["WEBHOOK_TIMEOUT"] + 10:
        raise ConfigError(
            "DELIVERY_LEASE_SECONDS must exceed WEBHOOK_TIMEOUT by at least 10 seconds: an "
            "attempt must end before another worker may take its delivery."
        )
