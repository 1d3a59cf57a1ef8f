"""The front door: send each visitor where they belong, and a health check for operators."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, session, url_for
from flask_login import current_user
from sqlalchemy import text

from inclusive.extensions import db
from inclusive.partners.services import partner_memberships_of
from inclusive.tenancy.services import memberships_of

bp = Blueprint("main", __name__)


@bp.route("/")
def home() -> Any:
    """Go to the last organization used, the only one, a partner's pages, or the list."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    memberships = memberships_of(current_user)
    slugs = [m.organization.slug for m in memberships]
    last = session.get("last_org")
    if last in slugs:
        return redirect(url_for("org.home", org_slug=last))
    if len(slugs) == 1:
        return redirect(url_for("org.home", org_slug=slugs[0]))
    if not slugs:
        partners = partner_memberships_of(current_user)
        if partners:  # partner staff land on their partner's pages
            return redirect(url_for("partner.home", partner_slug=partners[0].partner.slug))
    return redirect(url_for("invitations.choose"))


@bp.route("/healthz")
def health() -> Any:
    """Answer whether the database answers (for load balancers and `make run`)."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")
