"""Settings come from the environment; production refuses unsafe ones."""

import pytest

from inclusive import create_app
from inclusive.config import ConfigError, database_uri, load_settings


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({"INCLUSIVE_ENV": "production"}, str(tmp_path))


def test_production_refuses_sqlite_and_missing_mail(tmp_path, monkeypatch):
    monkeypatch.setenv("INCLUSIVE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.org")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_app({"INSTANCE_PATH": str(tmp_path)})
    monkeypatch.delenv("MAIL_SERVER")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1/x")
    with pytest.raises(ConfigError, match="MAIL_SERVER"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_development_generates_a_secret_once_and_keeps_it(tmp_path):
    first = load_settings({}, str(tmp_path))["SECRET_KEY"]
    second = load_settings({}, str(tmp_path))["SECRET_KEY"]
    assert first == second and len(first) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_cookie_and_hsts_settings_follow_the_environment(tmp_path):
    production = load_settings(
        {"INCLUSIVE_ENV": "production", "SECRET_KEY": "s" * 40}, str(tmp_path)
    )
    development = load_settings({}, str(tmp_path))
    assert production["SESSION_COOKIE_SECURE"] and production["HSTS_ENABLED"]
    assert production["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert not development["SESSION_COOKIE_SECURE"] and not development["HSTS_ENABLED"]
    for settings in (production, development):
        assert settings["SESSION_COOKIE_HTTPONLY"] and settings["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_database_url_defaults_to_sqlite_in_the_instance_folder(tmp_path):
    assert database_uri(None, str(tmp_path)) == f"sqlite:///{tmp_path}/inclusive.db"
    assert database_uri("postgresql://u@h/db", "x") == "postgresql+psycopg://u@h/db"
    assert database_uri("postgres://u@h/db", "x") == "postgresql+psycopg://u@h/db"


def test_unknown_environment_name_is_refused(tmp_path):
    with pytest.raises(ConfigError):
        load_settings({"INCLUSIVE_ENV": "staging"}, str(tmp_path))


def test_nothing_happens_at_import():
    import importlib

    import inclusive

    module = importlib.reload(inclusive)
    assert not hasattr(module, "app")
