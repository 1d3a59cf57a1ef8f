"""Error pages: HTML for browsers, problem+json for API clients."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from inclusive.extensions import db


def wants_json() -> bool:
    """Tell whether the client prefers JSON to HTML."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _messages() -> dict[int, str]:
    return {
        400: _("The request could not be understood. Check what you sent and try again."),
        403: _("Your role does not allow this. Ask an administrator of the organization."),
        404: _("There is nothing here, or you are not allowed to see it."),
        405: _("This page cannot be used that way."),
        413: _("What you sent is too large."),
        429: _("Too many attempts. Wait a few minutes and try again."),
        500: _("Something went wrong on our side. It has been logged; please try again."),
    }


def render_error(code: int, message: str | None = None) -> Any:
    """Answer an error in the format the client wants."""
    text = message or _messages().get(code, _("Something went wrong."))
    if wants_json():
        response = jsonify(type="about:blank", title=text, status=code)
        response.status_code = code
        response.mimetype = "application/problem+json"
        return response
    return render_template("errors/error.html", code=code, message=text), code


def register_error_handlers(app: Flask) -> None:
    """Answer every error with a page of the platform, never a stack trace."""

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> Any:
        return render_error(
            400,
            _("This form had expired or was sent from elsewhere. Go back, reload and try again."),
        )

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        if error.code is None or error.code < 400:
            return error
        response = render_error(error.code)
        if error.code == 405 and error.valid_methods and not wants_json():
            body, code = response
            return body, code, {"Allow": ", ".join(error.valid_methods)}
        return response

    @app.errorhandler(InternalServerError)
    def _internal(error: InternalServerError) -> Any:
        db.session.rollback()
        return render_error(500)
