"""Diagnostic pages for the fixed cost of a request (bench only, not the platform's).

``anon noop`` answers a word to anyone; ``staff noop`` answers a word behind the staff entry
point (login session, membership, tenant scope); ``staff layout`` renders the base layout
with an empty content block there. The differences between them, and between them and
a page, tell what the login, the organization and the layout cost per request.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app
from flask.templating import _render

from inclusive.tenancy.web import org_blueprint

LAYOUT = (
    '{% extends "base.html" %}{% block title %}-{% endblock %}{% block content %}-{% endblock %}'
)


def register(app: Flask) -> None:
    """Add the diagnostic routes to a bench app."""
    anonymous = Blueprint("bench_fixed", __name__, url_prefix="/bench/fixed")
    anonymous.add_url_rule("/noop", "noop", _noop)
    staff = org_blueprint("bench_fixed_staff", __name__, "/bench/fixed")
    staff.add_url_rule("/noop", "noop", _noop)
    staff.add_url_rule("/layout", "layout", _layout)
    app.register_blueprint(anonymous)
    app.register_blueprint(staff)


def paths(org_slug: str) -> dict[str, str]:
    return {
        "anon noop": "/bench/fixed/noop",
        "staff noop": f"/o/{org_slug}/bench/fixed/noop",
        "staff layout": f"/o/{org_slug}/bench/fixed/layout",
    }


def _noop() -> str:
    return "ok"


def _layout() -> Any:
    # Compiled once, as a template file is (render_template_string compiles at each call).
    template = current_app.extensions.get("bench.fixed_layout")
    if template is None:
        template = current_app.jinja_env.from_string(LAYOUT)
        current_app.extensions["bench.fixed_layout"] = template
    context: dict[str, Any] = {}
    current_app.update_template_context(context)
    return _render(current_app, template, context)
