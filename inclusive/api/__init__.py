"""The partner API: ``/api/v1``, documented at ``/api/v1/openapi.json`` (OpenAPI 3).

:func:`init_api` mounts it on an app: flask-smorest's :class:`Api` with the bearer scheme,
problem+json errors (:mod:`inclusive.api.problems`), the partner's pages to manage tokens
and the webhook (:mod:`inclusive.api.partner_pages`, registered with the workspace
blueprints) and the ``create-api-token`` command.
"""

from __future__ import annotations

import http
from typing import Any

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from inclusive.api.problems import API_PREFIX, PROBLEM_MIMETYPE, install_problem_handlers

BEARER_SCHEME = "bearerAuth"
API_MAX_BODY_BYTES = 64 * 1024
API_RATE_LIMIT = "600 per minute"


class PartnerApi(Api):
    """flask-smorest's Api, with problem+json errors that stay inside /api/v1.

    flask-smorest would answer every error of the app in JSON; the app's own handlers keep
    the HTML pages, and :func:`install_problem_handlers` answers the API's errors.
    """

    DEFAULT_ERROR_RESPONSE_NAME = None  # each operation lists the errors it may give

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from inclusive.api.schemas import ProblemSchema

        self.ERROR_SCHEMA = ProblemSchema
        super().__init__(*args, **kwargs)

    def _register_error_handlers(self) -> None:
        install_problem_handlers(self._app)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)


def init_api(app: Flask) -> PartnerApi:
    """Mount the partner API on ``app`` (call after the app's error handlers are set)."""
    from inclusive.api.cli import create_api_token_command
    from inclusive.api.views import blp
    from inclusive.extensions import csrf

    app.config.setdefault("API_MAX_BODY_BYTES", API_MAX_BODY_BYTES)
    app.config.setdefault("API_RATE_LIMIT", API_RATE_LIMIT)
    app.config.update(
        API_TITLE="Inclusive Ventures partner API",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
    )
    app.config["API_SPEC_OPTIONS"] = {
        "info": {
            "description": (
                "What a capital partner does with the referrals organizations send it: read "
                "them with their frozen credit-readiness profile, answer them, talk in their "
                "thread, and receive each event on a signed webhook. Errors are "
                "application/problem+json. See docs/api.md."
            )
        },
        "servers": [{"url": "/"}],
        "security": [{BEARER_SCHEME: []}],
        "components": {
            "securitySchemes": {
                BEARER_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "ivp_<prefix>_<secret>",
                    "description": (
                        "An API token a partner administrator creates under API access "
                        "(or `flask create-api-token`): Authorization: Bearer ivp_..."
                    ),
                }
            }
        },
    }
    api = PartnerApi(app)
    api.register_blueprint(blp)
    for name, description in (
        ("Referrals", "Referrals sent to the partner: read, answer, talk."),
        ("Webhook", "The partner's signed webhook endpoint and its secret."),
        ("Partner", "The partner the token acts for."),
    ):
        api.spec.tag({"name": name, "description": description})
    csrf.exempt(blp)  # bearer tokens only: no cookie ever authenticates a request here
    app.cli.add_command(create_api_token_command)
    return api
