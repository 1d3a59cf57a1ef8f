"""The partner API's request and response bodies (marshmallow), as the OpenAPI shows them.

Amounts are decimal strings in the currency's units (``"1500.00"``); times are UTC in
ISO 8601 with ``Z``; dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask_babel import gettext as _
from marshmallow import fields, validate

from inclusive.partners.models import PartnerKind, Product
from inclusive.referrals.models import DeclineReason, ReferralState, Side
from inclusive.referrals.services import ACTIONS

PARTNER_ACTIONS = sorted(name for name, a in ACTIONS.items() if a.side == Side.PARTNER)
VISIBLE_STATES = [s.value for s in ReferralState if s != ReferralState.DRAFT]
PRODUCTS = [p.value for p in Product]


class UtcDateTime(fields.DateTime):
    """A stored (naive UTC) time written as ISO 8601 with its offset."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


def printable(value: str) -> None:
    """Refuse text a database cannot store: NUL characters, lone surrogates."""
    if "\x00" in value:
        raise ma.ValidationError(_("Must not contain NUL characters."))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ma.ValidationError(_("Must be valid Unicode text.")) from exc


def _text(description: str, **kw: Any) -> fields.String:
    return fields.String(metadata={"description": description}, **kw)


class ProblemSchema(ma.Schema):
    """An error, as ``application/problem+json`` (RFC 9457)."""

    type = _text("A stable URN naming the kind of problem.", required=True)
    title = _text("A short summary, in the client's language.", required=True)
    status = fields.Integer(required=True, metadata={"description": "The HTTP status."})
    detail = _text("What happened and what to do, in the client's language.", required=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Messages by field, when fields are at fault."},
    )


class PaginationSchema(ma.Schema):
    page = fields.Integer(required=True, metadata={"description": "This page's number."})
    per_page = fields.Integer(required=True, metadata={"description": "Items per page."})
    total = fields.Integer(required=True, metadata={"description": "Items on every page."})
    total_pages = fields.Integer(required=True)
    previous_page = fields.Integer(allow_none=True, required=True)
    next_page = fields.Integer(allow_none=True, required=True)


class OrganizationSchema(ma.Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)


class ActionSchema(ma.Schema):
    name = fields.String(required=True, validate=validate.OneOf(PARTNER_ACTIONS))
    label = fields.String(required=True)
    needs_note = fields.Boolean(required=True)
    needs = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Fields the transition requires besides the action."},
    )


class DisbursementSchema(ma.Schema):
    amount = fields.String(required=True)
    currency = fields.String(required=True)
    date = fields.Date(required=True)
    product = fields.String(required=True)
    term_months = fields.Integer(required=True, allow_none=True)


class ReferralSummarySchema(ma.Schema):
    id = fields.Integer(required=True)
    organization = fields.Nested(OrganizationSchema, required=True)
    producer_name = _text("From the frozen profile.", required=True)
    state = fields.String(required=True, validate=validate.OneOf(VISIBLE_STATES))
    state_label = fields.String(required=True)
    product = fields.String(required=True)
    amount_requested = fields.String(required=True, allow_none=True)
    currency = fields.String(required=True)
    sent_at = UtcDateTime(required=True, allow_none=True)
    updated_at = UtcDateTime(required=True)
    url = fields.String(required=True)


class ReferralSchema(ReferralSummarySchema):
    purpose = fields.String(required=True)
    profile = fields.Dict(
        required=True,
        metadata={
            "description": "The credit-readiness profile frozen when the referral was sent: "
            "only the scopes the producer consented to share."
        },
    )
    profile_version = fields.String(required=True)
    profile_sha256 = fields.String(required=True)
    acknowledged_at = UtcDateTime(required=True, allow_none=True)
    answered_at = UtcDateTime(required=True, allow_none=True)
    closed_at = UtcDateTime(required=True, allow_none=True)
    decline_reason = fields.String(required=True, allow_none=True)
    decline_note = fields.String(required=True)
    disbursement = fields.Nested(DisbursementSchema, required=True, allow_none=True)
    actions = fields.List(
        fields.Nested(ActionSchema),
        required=True,
        metadata={"description": "The transitions the partner can take now."},
    )


class ReferralPageSchema(ma.Schema):
    items = fields.List(fields.Nested(ReferralSummarySchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class ReferralQuerySchema(ma.Schema):
    state = fields.String(validate=validate.OneOf(VISIBLE_STATES))
    organization = fields.String(
        validate=[validate.Length(min=1, max=60), printable],
        metadata={"description": "The referring organization's slug."},
    )
    product = fields.String(validate=validate.OneOf(PRODUCTS))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class EventSchema(ma.Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    label = fields.String(required=True)
    side = fields.String(required=True, validate=validate.OneOf([s.value for s in Side]))
    from_state = fields.String(required=True, allow_none=True)
    to_state = fields.String(required=True, allow_none=True)
    note = fields.String(required=True)
    data = fields.Dict(required=True)
    at = UtcDateTime(required=True)


class EventListSchema(ma.Schema):
    items = fields.List(fields.Nested(EventSchema), required=True)


class MessageSchema(ma.Schema):
    id = fields.Integer(required=True)
    side = fields.String(required=True, validate=validate.OneOf([s.value for s in Side]))
    body = fields.String(required=True)
    at = UtcDateTime(required=True)


class MessageListSchema(ma.Schema):
    items = fields.List(fields.Nested(MessageSchema), required=True)


class NewMessageSchema(ma.Schema):
    body = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=4000), printable],
        metadata={"example": "Can she visit our branch on Monday?"},
    )


class TransitionSchema(ma.Schema):
    """A transition: ``action`` and the fields it needs (see each referral's ``actions``)."""

    action = fields.String(
        required=True,
        validate=validate.OneOf(PARTNER_ACTIONS),
        metadata={"example": "acknowledge"},
    )
    note = fields.String(
        load_default="",
        validate=[validate.Length(max=4000), printable],
        metadata={"description": "Required by request_info; shown to the organization."},
    )
    reason = fields.String(
        allow_none=True,
        validate=validate.OneOf([r.value for r in DeclineReason]),
        metadata={"description": "decline: why."},
    )
    amount = fields.Decimal(
        allow_none=True,
        metadata={"description": "disburse: the amount disbursed, such as 1500.50."},
    )
    currency = fields.String(
        allow_none=True,
        validate=[validate.Length(equal=3), printable],
        metadata={"description": "disburse: ISO 4217 code; the referral's by default."},
    )
    date = fields.Date(allow_none=True, metadata={"description": "disburse: when."})
    product = fields.String(
        allow_none=True,
        validate=validate.OneOf(PRODUCTS),
        metadata={"description": "disburse: the product; the referral's by default."},
    )
    term_months = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=1, max=360),
        metadata={"description": "disburse: the term in months."},
    )


class WebhookInSchema(ma.Schema):
    url = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=2000), printable],
        metadata={
            "description": "A public https:// (or http://) address.",
            "example": "https://mfi.example/hooks/inclusive",
        },
    )


class WebhookSchema(ma.Schema):
    url = fields.String(required=True)
    enabled = fields.Boolean(required=True)
    disabled_reason = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)
    previous_secret_valid_until = UtcDateTime(
        required=True,
        allow_none=True,
        metadata={"description": "During a rotation: until when the previous secret signs too."},
    )
    secret = fields.String(
        metadata={"description": "The signing secret (whsec_...), only when it is new."}
    )


class TokenSchema(ma.Schema):
    name = fields.String(required=True)
    prefix = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    last_used_at = UtcDateTime(required=True, allow_none=True)


class PartnerSchema(ma.Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in PartnerKind]))
    country = fields.String(required=True)
    products = fields.List(fields.String(), required=True)
    token = fields.Nested(TokenSchema, required=True)
