"""Errors of the partner API as ``application/problem+json`` (RFC 9457), one shape for all.

Every error under ``/api/v1`` answers ``{type, title, status, detail, errors?}``: those the
API raises (:class:`Problem`), flask-smorest's and webargs' validation errors, Werkzeug's
404, 405 and 413, the rate limiter's 429 and unexpected failures (500). ``type`` is a
stable URN a client can switch on; ``title`` and ``detail`` are in the reader's language;
``errors`` maps a field to its messages.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, current_app, jsonify, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from inclusive.extensions import db

API_PREFIX = "/api/v1"
PROBLEM_MIMETYPE = "application/problem+json"
#: webargs keys its messages by where the value came from; clients only need the field.
_LOCATIONS = frozenset({"json", "query", "path", "view_args", "headers", "form", "files"})

_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "body-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "too-many-requests",
    500: "server-error",
}


def problem_type(slug: str) -> str:
    return f"urn:inclusive:problem:{slug}"


def _titles() -> dict[int, str]:
    return {
        400: _("Bad request"),
        401: _("Authentication needed"),
        403: _("Not allowed"),
        404: _("Not found"),
        405: _("Method not allowed"),
        409: _("Conflict"),
        413: _("Body too large"),
        415: _("Unsupported media type"),
        422: _("Invalid input"),
        429: _("Too many requests"),
        500: _("Server error"),
    }


def _details() -> dict[int, str]:
    return {
        400: _("The request could not be understood. Check what you sent and try again."),
        401: _("Send a valid API token in the header Authorization: Bearer <token>."),
        403: _("This token does not allow this."),
        404: _("There is nothing here, or it is not yours to see."),
        405: _("This address does not accept the %(method)s method.", method=request.method),
        409: _("This change does not fit the current state of the resource."),
        413: _(
            "The request body is larger than %(size)d KB.",
            size=current_app.config["API_MAX_BODY_BYTES"] // 1024,
        ),
        415: _("Send the body as JSON, with the header Content-Type: application/json."),
        422: _("Some fields are invalid; see errors."),
        429: _("Too many requests. Wait a little and try again."),
        500: _("Something went wrong on our side. It has been logged; please try again."),
    }


class Problem(HTTPException):
    """An API error with its own detail, type or field errors (raise it from any view)."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.slug = slug
        self.title = title
        self.errors = dict(errors) if errors else None
        self.extra_headers = dict(headers or {})


def in_api() -> bool:
    """Whether the current request is addressed to the API (documented or not)."""
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A problem+json response of the API's one shape."""
    body: dict[str, Any] = {
        "type": problem_type(slug or _SLUGS.get(status, str(status))),
        "title": title or _titles().get(status) or _phrase(status),
        "status": status,
        "detail": detail or _details().get(status) or _phrase(status),
    }
    if errors:
        body["errors"] = {str(k): [str(m) for m in v] for k, v in errors.items()}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_MIMETYPE
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="inclusive"')
    return response


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return str(status)


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow messages as ``{field: [messages]}`` (nested fields dotted)."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = str(key)
            if not prefix and name in _LOCATIONS and isinstance(value, Mapping | list):
                for k, v in flatten_errors(value, "").items():
                    flat.setdefault(k, []).extend(v)
                continue
            path = f"{prefix}.{name}" if prefix else name
            for k, v in flatten_errors(value, path).items():
                flat.setdefault(k, []).extend(v)
    elif isinstance(messages, list | tuple):
        for item in messages:
            if isinstance(item, Mapping | list | tuple):
                for k, v in flatten_errors(item, prefix).items():
                    flat.setdefault(k, []).extend(v)
            else:
                flat.setdefault(prefix or "_body", []).append(str(item))
    else:
        flat.setdefault(prefix or "_body", []).append(str(messages))
    return flat


def http_problem(error: HTTPException) -> Response:
    """Turn any HTTP error raised while serving the API into a problem."""
    status = error.code or 500
    if isinstance(error, Problem):
        return problem_response(
            status,
            error.description,
            slug=error.slug,
            title=error.title,
            errors=error.errors,
            headers=error.extra_headers,
        )
    headers: dict[str, str] = {}
    errors = None
    detail = None
    data = getattr(error, "data", None)  # webargs' abort: validation messages
    if isinstance(data, Mapping):
        messages = data.get("errors") or data.get("messages")
        if messages:
            errors = flatten_errors(messages)
        headers.update(data.get("headers") or {})
        if status == 400 and errors and "_body" in errors:
            detail = _("The body is not valid JSON.")
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    if status == 429:
        detail = _(
            "Too many requests (%(limit)s). Wait a little and try again.", limit=error.description
        )
    return problem_response(status, detail, errors=errors, headers=headers)


def install_problem_handlers(app: Flask) -> None:
    """Answer errors under /api/v1 with problems; leave every other page to its handler.

    The app's own handlers (HTML pages, see :mod:`inclusive.errors`) stay in charge outside
    the API: ours wrap them. Call after they are registered.
    """
    by_class = app.error_handler_spec[None]
    previous_http = by_class[None].get(HTTPException)
    previous_500 = by_class[500].get(InternalServerError)

    def _fallback(handler: Callable[[Any], Any] | None, error: HTTPException) -> Any:
        return handler(error) if handler is not None else error

    def on_http_error(error: HTTPException) -> Any:
        if in_api() and error.code is not None and error.code >= 400:
            return http_problem(error)
        return _fallback(previous_http, error)

    def on_server_error(error: InternalServerError) -> Any:
        if in_api():
            db.session.rollback()
            return problem_response(500)
        return _fallback(previous_500 or previous_http, error)

    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(InternalServerError, on_server_error)
