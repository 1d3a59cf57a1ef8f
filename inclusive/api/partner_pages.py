"""A partner administrator's API access page: tokens and the webhook.

``/p/<partner_slug>/api-access/``. A new token, and a new webhook secret, are shown once,
in the answer to the form that made them (never put in the session or a redirect); only
the token's hash and the secret itself are kept.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from inclusive.api.forms import NewTokenForm, WebhookForm
from inclusive.auth.sessions import acting_user
from inclusive.extensions import db
from inclusive.partners.models import PartnerRole
from inclusive.partners.web import current_partner, partner_blueprint, requires_partner_role
from inclusive.referrals import endpoints
from inclusive.referrals.endpoints import EndpointError
from inclusive.tenancy.forms import ActionForm

bp = partner_blueprint("partner_api", __name__, "/api-access")

ADMIN = PartnerRole.PARTNER_ADMIN


def _page(status: int = 200, **extra: Any) -> Any:
    partner = current_partner()
    endpoint = endpoints.endpoint_of(partner)
    webhook_form = extra.pop("webhook_form", None) or WebhookForm(
        data={"url": endpoint.url if endpoint else ""}
    )
    context = {
        "partner": partner,
        "tokens": endpoints.tokens_of(partner),
        "endpoint": endpoint,
        "rotation_until": endpoints.previous_secret_valid_until(endpoint) if endpoint else None,
        "token_form": extra.pop("token_form", None) or NewTokenForm(formdata=None),
        "webhook_form": webhook_form,
        "action_form": ActionForm(),
        "new_token": None,
        "new_secret": None,
    }
    context.update(extra)
    return render_template("api/access.html", **context), status


@bp.route("/")
@requires_partner_role(ADMIN)
def index() -> Any:
    """The partner's API tokens and webhook."""
    return _page()


@bp.route("/tokens", methods=["POST"])
@requires_partner_role(ADMIN)
def create_token() -> Any:
    """Create a token and show it, this once."""
    form = NewTokenForm()
    if not form.validate_on_submit():
        return _page(400, token_form=form)
    try:
        token, plain = endpoints.create_token(
            current_partner(), form.name.data or "", acting_user()
        )
    except EndpointError as exc:
        db.session.rollback()
        form.name.errors = [str(exc)]
        return _page(400, token_form=form)
    name = token.name
    db.session.commit()
    flash(
        _("Token “%(name)s” created. Copy it now: it will not be shown again.", name=name),
        "success",
    )
    return _page(new_token=plain, new_token_name=name)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@requires_partner_role(ADMIN)
def revoke_token(token_id: int) -> Any:
    """Revoke a token at once: requests with it are refused from now on."""
    token = endpoints.token_of(current_partner(), token_id)
    if token is None:
        abort(404)
    if ActionForm().validate_on_submit():
        name = token.name
        if endpoints.revoke_token(token):
            db.session.commit()
            flash(_("Token “%(name)s” revoked.", name=name), "success")
    return redirect(url_for("partner_api.index"))


@bp.route("/webhook", methods=["POST"])
@requires_partner_role(ADMIN)
def set_webhook() -> Any:
    """Set the webhook address; a new endpoint's secret is shown this once."""
    form = WebhookForm()
    if not form.validate_on_submit():
        return _page(400, webhook_form=form)
    try:
        _endpoint, secret = endpoints.set_endpoint(current_partner(), form.url.data or "")
    except EndpointError as exc:
        db.session.rollback()
        form.url.errors = [str(exc)]
        return _page(400, webhook_form=form)
    db.session.commit()
    if secret is None:
        flash(_("Webhook address saved."), "success")
        return redirect(url_for("partner_api.index"))
    flash(_("Webhook created. Copy its secret now: it will not be shown again."), "success")
    return _page(new_secret=secret)


@bp.route("/webhook/rotate", methods=["POST"])
@requires_partner_role(ADMIN)
def rotate_secret() -> Any:
    """A new secret, shown once; the previous one keeps signing for a while."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for("partner_api.index"))
    try:
        _endpoint, secret = endpoints.rotate_secret(current_partner())
    except EndpointError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("partner_api.index"))
    db.session.commit()
    flash(_("New secret made. Copy it now: it will not be shown again."), "success")
    return _page(new_secret=secret)


@bp.route("/webhook/delete", methods=["POST"])
@requires_partner_role(ADMIN)
def delete_webhook() -> Any:
    """Remove the webhook: events are no longer posted to it."""
    if ActionForm().validate_on_submit() and endpoints.remove_endpoint(current_partner()):
        db.session.commit()
        flash(_("Webhook removed."), "success")
    return redirect(url_for("partner_api.index"))
