"""The partner API, ``/api/v1``: a capital partner's referrals, their thread and its webhook.

Authentication is a bearer token (``Authorization: Bearer ivp_...``), and nothing else: the
partner in scope is the token's, set once in :func:`_authenticate` before any view runs; a
session cookie is never looked at. No organization is in scope: referrals are read through
the partner-side services, which filter by the partner's id.
"""

from __future__ import annotations

import http
import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import current_app, g, request, url_for
from flask_babel import gettext as _
from flask_smorest import Blueprint
from sqlalchemy import func, select

from inclusive.api import schemas
from inclusive.api.problems import Problem
from inclusive.extensions import db, limiter, login_manager
from inclusive.partners.models import CapitalPartner
from inclusive.referrals import endpoints, services
from inclusive.referrals.endpoints import EndpointError
from inclusive.referrals.models import ApiToken, Referral, Side, WebhookEndpoint
from inclusive.referrals.profile import decimal_amount
from inclusive.referrals.services import Disbursement, ReferralError, ReferralFilters
from inclusive.tenancy.models import Organization
from inclusive.tenancy.scope import ALL_TENANTS

F = TypeVar("F", bound=Callable[..., Any])

blp = Blueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    description="A capital partner's referrals, their thread, and its webhook.",
)


def _rate_key() -> str:
    """Requests are counted per token presented (per address without one)."""
    presented = request.headers.get("Authorization", "").partition(" ")[2].strip()
    if presented:
        return "api-token:" + endpoints.token_digest(presented)[:32]
    return "api-ip:" + (request.remote_addr or "")


limiter.limit(lambda: current_app.config["API_RATE_LIMIT"], key_func=_rate_key)(blp)

#: Field names of the disbursement in the services, as the API calls them.
_API_FIELDS = {"disbursed_on": "date"}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def problems(*codes: int) -> Callable[[F], F]:
    """Document the error responses an operation may give (problem+json, one shape)."""

    def decorator(view: F) -> F:
        for code in sorted(set(codes) | {401, 429}, reverse=True):
            view = blp.alt_response(code, response=http.HTTPStatus(code).name)(view)
        return view

    return decorator


# Authentication and request hygiene ----------------------------------------------------------


@blp.before_request
def _authenticate() -> None:
    """Find the token's partner; refuse a missing, malformed, unknown or revoked token.

    Then find the referral in the path (404 unless it is the partner's, before the body
    is read), and refuse bodies that are too large (413), not JSON (415) or not valid
    JSON (400).
    """
    g._login_user = login_manager.anonymous_user()  # a session cookie never authenticates
    request.max_content_length = current_app.config["API_MAX_BODY_BYTES"]
    scheme, _sep, presented = request.headers.get("Authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise Problem(401, _("Send an API token in the header Authorization: Bearer <token>."))
    token = endpoints.active_token(presented)
    if token is None:
        raise Problem(
            401,
            _("This API token is unknown or revoked."),
            slug="invalid-token",
            headers={"WWW-Authenticate": 'Bearer realm="inclusive", error="invalid_token"'},
        )
    partner = db.session.get(CapitalPartner, token.partner_id)
    if partner is None:  # pragma: no cover -- tokens go with their partner
        raise Problem(401, _("This API token is unknown or revoked."), slug="invalid-token")
    if endpoints.touch_token(token):
        db.session.commit()
    g.api_token = token
    g.api_partner = partner
    referral_id = (request.view_args or {}).get("referral_id")
    if referral_id is not None:  # before the body is read: another's referral is just 404
        g.referral = _referral_or_404(referral_id)
    if request.method in _BODY_METHODS:
        _check_body()


@blp.after_request
def _no_store(response: Any) -> Any:
    """Answers hold personal data (the profiles): no cache keeps them."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _check_body() -> None:
    limit = current_app.config["API_MAX_BODY_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413)
    data = request.get_data(cache=True)  # raises 413 past the limit (chunked bodies too)
    if not data:
        return
    if not request.is_json:
        raise Problem(415)
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, _("The body is not valid JSON.")) from exc


def current_partner() -> CapitalPartner:
    return g.api_partner


def current_token() -> ApiToken:
    return g.api_token


def _via() -> dict[str, str]:
    """How a change made through the API is told apart on the timeline: the token used."""
    token = current_token()
    return {"channel": "api", "token": token.name, "token_prefix": token.prefix}


# Presenting ----------------------------------------------------------------------------------


def _summary(referral: Referral) -> dict[str, Any]:
    return {
        "id": referral.id,
        "organization": {
            "slug": referral.organization.slug,
            "name": referral.organization.name,
        },
        "producer_name": services.producer_name(referral),
        "state": referral.state,
        "state_label": services.state_label(referral.state),
        "product": referral.product,
        "amount_requested": decimal_amount(referral.amount_requested),
        "currency": referral.currency,
        "sent_at": referral.sent_at,
        "updated_at": referral.updated_at,
        "url": url_for("api.get_referral", referral_id=referral.id),
    }


def _needs(name: str) -> list[str]:
    action = services.ACTIONS[name]
    needs = ["note"] if action.needs_note else []
    if name == "decline":
        needs.append("reason")
    if name == "disburse":
        needs += ["amount", "date", "term_months"]
    return needs


def _detail(referral: Referral) -> dict[str, Any]:
    data = _summary(referral)
    disbursement = None
    if referral.disbursed_amount is not None and referral.disbursed_on is not None:
        disbursement = {
            "amount": decimal_amount(referral.disbursed_amount),
            "currency": referral.disbursed_currency,
            "date": referral.disbursed_on,
            "product": referral.disbursed_product,
            "term_months": referral.disbursed_term_months,
        }
    data.update(
        purpose=referral.purpose or "",
        profile=referral.profile or {},
        profile_version=referral.profile_version or "",
        profile_sha256=referral.profile_sha256 or "",
        acknowledged_at=referral.acknowledged_at,
        answered_at=referral.answered_at,
        closed_at=referral.closed_at,
        decline_reason=referral.decline_reason,
        decline_note=referral.decline_note or "",
        disbursement=disbursement,
        actions=[
            {
                "name": a.name,
                "label": str(a.label),
                "needs_note": a.needs_note,
                "needs": _needs(a.name),
            }
            for a in services.actions_for(referral, Side.PARTNER)
        ],
    )
    return data


def _referral_or_404(referral_id: int) -> Referral:
    referral = services.referral_for_partner(current_partner(), referral_id)
    if referral is None:
        raise Problem(404)
    return referral


def current_referral() -> Referral:
    """The referral named in the path, found by :func:`_authenticate`."""
    return g.referral


def _refusal(
    exc: ReferralError | EndpointError,
    conflict: bool = True,
    more: dict[str, str] | None = None,
) -> Problem:
    """A service's refusal: 422 naming the field at fault, else 409 (out of order).

    ``more``: other fields at fault besides the one the refusal names (a disbursement's).
    """
    db.session.rollback()
    field = getattr(exc, "field", None)
    if field:
        errors = {_API_FIELDS.get(field, field): [str(exc)]}
        for key, message in (more or {}).items():
            errors.setdefault(_API_FIELDS.get(key, key), [str(message)])
        return Problem(422, str(exc), errors=errors)
    if conflict:
        return Problem(409, str(exc), slug="transition-refused")
    return Problem(422, str(exc))


# Referrals -----------------------------------------------------------------------------------


def _page_link(page: int, per_page: int, query: dict[str, Any], rel: str) -> str:
    params = {k: v for k, v in query.items() if k not in ("page", "per_page") and v}
    params.update(page=page, per_page=per_page)
    return f'<{url_for("api.list_referrals")}?{urlencode(params)}>; rel="{rel}"'


@blp.route("/referrals", tags=["Referrals"], endpoint="list_referrals")
@blp.arguments(schemas.ReferralQuerySchema, location="query", as_kwargs=True)
@blp.response(
    200,
    schemas.ReferralPageSchema,
    headers={
        "Link": {
            "description": 'Links to the first, previous, next and last pages (rel="...").',
            "schema": {"type": "string"},
        }
    },
)
@problems()
def list_referrals(**query: Any) -> Any:
    """The partner's referrals, newest first

    Every organization's referrals to this partner (never a draft). Filter by `state`,
    `organization` (its slug) and `product`; page with `page` and `per_page` (at most
    100). The body holds `items` and `pagination`; the `Link` header links the pages.
    """
    partner = current_partner()
    filters = ReferralFilters(state=query.get("state", ""), product=query.get("product", ""))
    select_referrals = services.partner_referrals(partner, filters)
    slug = query.get("organization")
    if slug:
        organization = db.session.scalar(select(Organization).where(Organization.slug == slug))
        if organization is None:
            select_referrals = select_referrals.where(Referral.id.is_(None))
        else:
            select_referrals = select_referrals.where(Referral.org_id == organization.id)
    page, per_page = query["page"], query["per_page"]
    total = db.session.scalar(
        select(func.count())
        .select_from(select_referrals.order_by(None).subquery())
        .execution_options(**ALL_TENANTS)
    )
    rows = db.session.scalars(select_referrals.limit(per_page).offset((page - 1) * per_page)).all()
    total_pages = (total + per_page - 1) // per_page if total else 0
    links = [_page_link(1, per_page, query, "first")]
    if total_pages:
        links.append(_page_link(total_pages, per_page, query, "last"))
    if page > 1:
        links.append(_page_link(min(page - 1, max(total_pages, 1)), per_page, query, "prev"))
    if page < total_pages:
        links.append(_page_link(page + 1, per_page, query, "next"))
    body = {
        "items": [_summary(r) for r in rows],
        "pagination": {
            "page": page,
            "per_page": per_page,
            "total": total,
            "total_pages": total_pages,
            "previous_page": min(page - 1, total_pages) if page > 1 and total_pages else None,
            "next_page": page + 1 if page < total_pages else None,
        },
    }
    return body, 200, {"Link": ", ".join(links)}


@blp.route("/referrals/<int:referral_id>", tags=["Referrals"], endpoint="get_referral")
@blp.response(200, schemas.ReferralSchema)
@problems(404)
def get_referral(referral_id: int) -> Any:
    """One referral, with its frozen profile and the actions available now"""
    return _detail(current_referral())


@blp.route("/referrals/<int:referral_id>/events", tags=["Referrals"], endpoint="referral_events")
@blp.response(200, schemas.EventListSchema)
@problems(404)
def referral_events(referral_id: int) -> Any:
    """The referral's timeline: every step, oldest first, both sides"""
    referral = current_referral()
    items = [
        {
            "id": e.id,
            "kind": e.kind,
            "label": str(services.EVENT_LABELS.get(e.kind, e.kind)),
            "side": e.side,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "note": e.note or "",
            "data": e.data or {},
            "at": e.at,
        }
        for e in services.timeline(referral)
    ]
    return {"items": items}


def _message(message: Any) -> dict[str, Any]:
    return {"id": message.id, "side": message.side, "body": message.body, "at": message.at}


@blp.route("/referrals/<int:referral_id>/messages", tags=["Referrals"], endpoint="list_messages")
@blp.response(200, schemas.MessageListSchema)
@problems(404)
def list_messages(referral_id: int) -> Any:
    """The referral's thread with the organization, oldest first"""
    referral = current_referral()
    return {"items": [_message(m) for m in services.thread(referral)]}


@blp.route(
    "/referrals/<int:referral_id>/messages",
    tags=["Referrals"],
    endpoint="post_message",
    methods=["POST"],
)
@blp.arguments(schemas.NewMessageSchema, example={"body": "Can she visit our branch on Monday?"})
@blp.response(201, schemas.MessageSchema)
@problems(400, 404, 409, 413, 415)
def post_message(payload: dict[str, Any], referral_id: int) -> Any:
    """Write to the organization in the referral's thread"""
    referral = current_referral()
    try:
        message = services.post_message(referral, Side.PARTNER, None, payload["body"])
    except ReferralError as exc:
        raise _refusal(exc) from exc
    data = _message(message)
    db.session.commit()
    return data


@blp.route(
    "/referrals/<int:referral_id>/transitions",
    tags=["Referrals"],
    endpoint="transition",
    methods=["POST"],
)
@blp.arguments(schemas.TransitionSchema, example={"action": "acknowledge"})
@blp.response(200, schemas.ReferralSchema)
@problems(400, 404, 409, 413, 415)
def transition(payload: dict[str, Any], referral_id: int) -> Any:
    """Move the referral on: acknowledge, start_review, request_info, approve, decline...

    A transition out of order answers 409 with the reason; a field the transition needs,
    missing or invalid, answers 422 naming it. `request_info` needs a `note`; `decline` a
    `reason`; `disburse` the `amount`, `date` and `term_months` (the `currency` and
    `product` default to the referral's).
    """
    referral = current_referral()
    name = payload["action"]
    disbursement = None
    if name == "disburse":
        amount = payload.get("amount")
        disbursement = Disbursement(
            amount=str(amount) if amount is not None else None,
            currency=payload.get("currency") or "",
            disbursed_on=payload.get("date"),
            product=payload.get("product") or "",
            term_months=payload.get("term_months"),
        )
    try:
        services.apply(
            referral,
            name,
            Side.PARTNER,
            None,
            note=payload.get("note") or "",
            reason=payload.get("reason"),
            disbursement=disbursement,
            via=_via(),
        )
    except ReferralError as exc:
        raise _refusal(exc, more=disbursement.errors if disbursement else None) from exc
    db.session.commit()
    return _detail(_referral_or_404(referral_id))


# The webhook ---------------------------------------------------------------------------------


def _webhook(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "url": endpoint.url,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason or "",
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "previous_secret_valid_until": endpoints.previous_secret_valid_until(endpoint),
    }
    if secret is not None:
        data["secret"] = secret
    return data


def _endpoint_or_404() -> WebhookEndpoint:
    endpoint = endpoints.endpoint_of(current_partner())
    if endpoint is None:
        raise Problem(404, _("No webhook is set: PUT /api/v1/webhook sets one."))
    return endpoint


@blp.route("/webhook", tags=["Webhook"], endpoint="get_webhook")
@blp.response(200, schemas.WebhookSchema)
@problems(404)
def get_webhook() -> Any:
    """The partner's webhook endpoint (its secret is never shown again)"""
    return _webhook(_endpoint_or_404())


@blp.route("/webhook", tags=["Webhook"], endpoint="put_webhook", methods=["PUT"])
@blp.arguments(schemas.WebhookInSchema, example={"url": "https://mfi.example/hooks/inclusive"})
@blp.response(200, schemas.WebhookSchema, description="Updated: the secret stays the same.")
@blp.alt_response(
    201, schema=schemas.WebhookSchema, description="Created, with its secret (shown once)."
)
@problems(400, 413, 415)
def put_webhook(payload: dict[str, Any]) -> Any:
    """Set the webhook address; create the endpoint and its secret if there is none

    The address must be public (no private, loopback or link-local address) and must not
    hold credentials. Setting it again turns back on an endpoint the receiver disabled
    with `410 Gone`.
    """
    try:
        endpoint, secret = endpoints.set_endpoint(current_partner(), payload["url"])
    except EndpointError as exc:
        raise _refusal(exc, conflict=False) from exc
    data = _webhook(endpoint, secret)
    db.session.commit()
    return data, 201 if secret else 200


@blp.route("/webhook", tags=["Webhook"], endpoint="delete_webhook", methods=["DELETE"])
@blp.response(204)
@problems(404)
def delete_webhook() -> Any:
    """Remove the webhook: no more deliveries to it"""
    if not endpoints.remove_endpoint(current_partner()):
        raise Problem(404, _("No webhook is set: PUT /api/v1/webhook sets one."))
    db.session.commit()
    return None


@blp.route("/webhook/rotate", tags=["Webhook"], endpoint="rotate_webhook_secret", methods=["POST"])
@blp.response(200, schemas.WebhookSchema)
@problems(400, 404, 413, 415)
def rotate_webhook_secret() -> Any:
    """Give the webhook a new secret, shown once; the previous one signs too for a while

    For `WEBHOOK_ROTATION_HOURS` (24 by default) every delivery carries two signatures,
    one per secret, so the receiver can switch secrets without losing a delivery.
    """
    _endpoint_or_404()
    endpoint, secret = endpoints.rotate_secret(current_partner())
    data = _webhook(endpoint, secret)
    db.session.commit()
    return data


# The partner ---------------------------------------------------------------------------------


@blp.route("/me", tags=["Partner"], endpoint="me")
@blp.response(200, schemas.PartnerSchema)
@problems()
def me() -> Any:
    """The capital partner this token acts for, and the token itself"""
    partner = current_partner()
    token = current_token()
    return {
        "slug": partner.slug,
        "name": partner.name,
        "kind": partner.kind,
        "country": partner.country or "",
        "products": list(partner.products or []),
        "token": {
            "name": token.name,
            "prefix": token.prefix,
            "created_at": token.created_at,
            "last_used_at": token.last_used_at,
        },
    }
