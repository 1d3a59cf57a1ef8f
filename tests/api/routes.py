"""Route-matrix entries of the partner API and its pages (merged into tests/test_route_matrix.py).

The API's routes have their own audience, ``api``: a bearer token of the partner, never a
session; tests/api/test_routes.py checks them (401 without a token). The API access pages
are partner pages for partner administrators.
"""

from __future__ import annotations

from typing import Any

from inclusive.referrals import endpoints
from tests.partners.routes import PARTNER_ADMIN, partner
from tests.routes import Rule


def api(method: str = "GET", **kw: Any) -> Rule:
    return Rule("api", frozenset(), method, **kw)


def _referral(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"referral_id": ctx.get("referral_id", 1)}


def _token(ctx: dict[str, Any]) -> dict[str, Any]:
    """A token of the matrix's partner, made on first use (revoking it is the test)."""
    if "api_token_id" not in ctx:
        token, _plain = endpoints.create_token(ctx["partner"], "Matrix token", None)
        ctx["api_token_id"] = token.id
    return {"token_id": ctx["api_token_id"]}


API_ROUTES: dict[str, Rule] = {
    "api-docs.openapi_json": Rule("public"),
    "api.list_referrals": api(),
    "api.get_referral": api(args=_referral),
    "api.referral_events": api(args=_referral),
    "api.list_messages": api(args=_referral),
    "api.post_message": api("POST", args=_referral),
    "api.transition": api("POST", args=_referral),
    "api.get_webhook": api(),
    "api.put_webhook": api("PUT"),
    "api.delete_webhook": api("DELETE"),
    "api.rotate_webhook_secret": api("POST"),
    "api.me": api(),
    "partner_api.index": partner(PARTNER_ADMIN),
    "partner_api.create_token": partner(PARTNER_ADMIN, "POST", data={"name": "Matrix"}),
    "partner_api.revoke_token": partner(PARTNER_ADMIN, "POST", args=_token),
    "partner_api.set_webhook": partner(
        PARTNER_ADMIN, "POST", data={"url": "http://127.0.0.1:9/matrix"}
    ),
    "partner_api.rotate_secret": partner(PARTNER_ADMIN, "POST"),
    "partner_api.delete_webhook": partner(PARTNER_ADMIN, "POST"),
}
