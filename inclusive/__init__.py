"""Inclusive Ventures: the platform of developers of inclusive ventures.

``create_app`` builds the Flask app; nothing happens at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, has_request_context, request, session
from flask_login import current_user

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, then apply ``config`` on top (tests)."""
    from inclusive.config import check_production, load_settings
    from inclusive.templating import LocalizedEnvironment

    instance_path = (
        (config or {}).get("INSTANCE_PATH")
        or os.environ.get("INSTANCE_PATH")
        or str(PROJECT_ROOT / "instance")
    )
    app = Flask(
        __name__,
        instance_path=instance_path,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder="static",
    )
    app.jinja_environment = LocalizedEnvironment  # before app.jinja_env is first built
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(load_settings(os.environ, app.instance_path))
    if config:
        app.config.update(config)
    check_production(app.config)

    _init_extensions(app)
    from inclusive.auth.sessions import ThrottledRefreshSessionInterface

    app.session_interface = ThrottledRefreshSessionInterface()  # the cookie re-signed once a minute
    _register_blueprints(app)
    _register_template_helpers(app)

    from inclusive.errors import register_error_handlers
    from inclusive.security import install_security_headers

    register_error_handlers(app)
    install_security_headers(app)

    from inclusive.api import init_api

    init_api(app)  # after the error handlers: the API's problems wrap them

    from inclusive.cli import register_commands

    register_commands(app)

    if not app.config.get("REDIS_URL") and app.config["ENV_NAME"] != "testing":
        app.logger.warning(
            "REDIS_URL is not set: background jobs run inline, in the web process, after commit."
        )
    return app


def _init_extensions(app: Flask) -> None:
    from flask_sqlalchemy.session import Session as FlaskSession

    import inclusive.models
    from inclusive.auth.sessions import load_session
    from inclusive.database import configure_engines, end_reads_with_commit
    from inclusive.extensions import babel, csrf, db, limiter, login_manager, migrate
    from inclusive.jobs.queue import install_job_hooks
    from inclusive.tenancy.scope import enter_tenant, install_tenant_hooks

    db.init_app(app)
    configure_engines(app)
    end_reads_with_commit(app)
    migrate.init_app(
        app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True, compare_type=True
    )
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(
        app,
        locale_selector=_select_locale,
        default_translation_directories=str(Path(__file__).parent / "translations"),
    )
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # the login page itself says what to do
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_session)

    install_tenant_hooks(FlaskSession)
    install_job_hooks(FlaskSession)

    # No organization is in scope until an entry point says which one.
    app.before_request(lambda: enter_tenant(None))
    app.teardown_request(lambda exc: enter_tenant(None))

    # Importing the job modules registers their jobs (the worker runs whatever is asked).
    import inclusive.auth.services
    import inclusive.tenancy.services  # noqa: F401


def _select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # a job or a command: English unless forced otherwise
        return "en"
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    if session.get("lang") in languages:
        return session["lang"]
    if g.get("org") is not None and not request.accept_languages:
        return g.org.default_language
    return request.accept_languages.best_match(languages) or "en"


def _register_blueprints(app: Flask) -> None:
    from inclusive.auth.views import bp as auth_bp
    from inclusive.main import bp as main_bp
    from inclusive.tenancy.views import bp as org_bp
    from inclusive.tenancy.views import public as invitations_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(invitations_bp)
    app.register_blueprint(org_bp)
    for blueprint in _workspace_blueprints():
        app.register_blueprint(blueprint)
    if app.config["ENV_NAME"] != "production" and not app.config.get("MAIL_SERVER"):
        from inclusive.dev.views import bp as dev_bp

        app.register_blueprint(dev_bp)


def _workspace_blueprints() -> list[Any]:
    from inclusive.api.partner_pages import bp as partner_api_bp
    from inclusive.consents.views import bp as consents_bp
    from inclusive.milestones.views import bp as plans_bp
    from inclusive.partners.views import bp as partners_bp
    from inclusive.partners.views import partner_bp
    from inclusive.producers.import_views import bp as imports_bp
    from inclusive.producers.views import bp as producers_bp
    from inclusive.programs.views import bp as programs_bp
    from inclusive.referrals.partner_views import bp as partner_referrals_bp
    from inclusive.referrals.views import bp as referrals_bp

    return [
        programs_bp,
        producers_bp,
        plans_bp,
        imports_bp,
        partners_bp,
        partner_bp,
        consents_bp,
        referrals_bp,
        partner_referrals_bp,
        partner_api_bp,
    ]


def _register_template_helpers(app: Flask) -> None:
    from flask_babel import get_locale

    from inclusive.choices import LANGUAGE_NAMES
    from inclusive.fieldcache import csrf_field, field_html
    from inclusive.layout import page_chrome
    from inclusive.tenancy.roles import Permission, Role
    from inclusive.tenancy.services import memberships_of
    from inclusive.tenancy.web import can

    def my_memberships() -> list[Any]:
        if "my_memberships" not in g:
            if not current_user.is_authenticated:
                g.my_memberships = []
            else:  # as the login read found them (load_session), else read now
                found = g.pop("session_memberships", None)
                g.my_memberships = found if found is not None else memberships_of(current_user)
        return g.my_memberships

    from inclusive.presentation import register_presentation

    register_presentation(app)
    app.jinja_env.globals.update(
        get_locale=get_locale,
        can=can,
        Permission=Permission,
        role_label=lambda role: Role(role).label,
        roles=list(Role),
        my_memberships=my_memberships,
        page_chrome=page_chrome,
        field_html=field_html,
        csrf_field=csrf_field,
        language_names=LANGUAGE_NAMES,
    )
