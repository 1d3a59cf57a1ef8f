"""Staff pages of an organization: its home, members, invitations and settings."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from inclusive.auth.services import find_user
from inclusive.auth.sessions import acting_user, log_in
from inclusive.extensions import db
from inclusive.refusals import act
from inclusive.tenancy import services
from inclusive.tenancy.forms import (
    AcceptInvitationForm,
    ActionForm,
    InviteForm,
    OrganizationSettingsForm,
    RoleForm,
)
from inclusive.tenancy.models import Invitation, Membership
from inclusive.tenancy.roles import Permission, Role
from inclusive.tenancy.scope import enter_tenant
from inclusive.tenancy.web import (
    current_org_entity,
    load_or_404,
    org_blueprint,
    requires,
)
from inclusive.tokens import InvalidToken

bp = org_blueprint("org", __name__)
public = Blueprint("invitations", __name__)


@bp.route("/")
def home() -> Any:
    """The organization's home: its programs and people at a glance."""
    return render_template("tenancy/home.html", members=services.members())


@bp.route("/members")
def members() -> Any:
    """Members and open invitations; administrators manage them here."""
    return render_template(
        "tenancy/members.html",
        members=services.members(),
        invitations=services.open_invitations(),
        invite_form=InviteForm(),
        role_form=RoleForm(),
        action_form=ActionForm(),
    )


def _members_page_with(invite_form: InviteForm, status: int) -> Any:
    page = render_template(
        "tenancy/members.html",
        members=services.members(),
        invitations=services.open_invitations(),
        invite_form=invite_form,
        role_form=RoleForm(),
        action_form=ActionForm(),
    )
    return page, status


@bp.route("/members/invite", methods=["POST"])
@requires(Permission.MANAGE_MEMBERS)
def invite() -> Any:
    """Invite someone by e-mail with a role."""
    form = InviteForm()
    if not form.validate_on_submit():
        return _members_page_with(form, 400)
    try:
        invitation = services.invite(
            current_org_entity(), acting_user(), form.email.data, Role(form.role.data)
        )
    except services.MembershipError as exc:
        db.session.rollback()
        form.email.errors = [str(exc)]
        return _members_page_with(form, 400)
    db.session.commit()
    flash(_("Invitation sent to %(email)s.", email=invitation.email), "success")
    return redirect(url_for("org.members"))


@bp.route("/members/<int:membership_id>/role", methods=["POST"])
@requires(Permission.MANAGE_MEMBERS)
def change_role(membership_id: int) -> Any:
    """Give a member another role."""
    membership = load_or_404(Membership, membership_id)
    form = RoleForm()
    if form.validate_on_submit():
        act(
            lambda: services.change_role(membership, Role(form.role.data)),
            lambda: _(
                "%(name)s is now %(role)s.",
                name=membership.user.name,
                role=Role(membership.role).label,
            ),
        )
    else:
        flash(_("Choose a role from the list."), "error")
    return redirect(url_for("org.members"))


@bp.route("/members/<int:membership_id>/remove", methods=["POST"])
@requires(Permission.MANAGE_MEMBERS)
def remove_member(membership_id: int) -> Any:
    """Remove a member from the organization."""
    membership = load_or_404(Membership, membership_id)
    if ActionForm().validate_on_submit():
        name = membership.user.name
        try:
            services.remove_member(membership)
        except services.MembershipError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(_("%(name)s no longer belongs to this organization.", name=name), "success")
            if membership.user_id == current_user.id:
                return redirect(url_for("main.home"))
    return redirect(url_for("org.members"))


@bp.route("/invitations/<int:invitation_id>/resend", methods=["POST"])
@requires(Permission.MANAGE_MEMBERS)
def resend_invitation(invitation_id: int) -> Any:
    """Send an open invitation again, with a fresh link."""
    invitation = load_or_404(Invitation, invitation_id)
    if ActionForm().validate_on_submit():
        act(
            lambda: services.resend_invitation(invitation),
            lambda: _("Invitation sent again to %(email)s.", email=invitation.email),
        )
    return redirect(url_for("org.members"))


@bp.route("/invitations/<int:invitation_id>/revoke", methods=["POST"])
@requires(Permission.MANAGE_MEMBERS)
def revoke_invitation(invitation_id: int) -> Any:
    """Revoke an open invitation."""
    invitation = load_or_404(Invitation, invitation_id)
    if ActionForm().validate_on_submit():
        services.revoke_invitation(invitation)
        db.session.commit()
        flash(_("The invitation to %(email)s is revoked.", email=invitation.email), "success")
    return redirect(url_for("org.members"))


@bp.route("/settings", methods=["GET", "POST"])
@requires(Permission.MANAGE_ORGANIZATION)
def settings() -> Any:
    """Change the organization's name, language, country and currency."""
    org = current_org_entity()
    form = OrganizationSettingsForm(obj=org)
    form.fill_choices()
    if request.method == "GET":
        form.language.data = org.default_language
    if form.validate_on_submit():
        services.update_organization(
            org,
            name=form.name.data,
            language=form.language.data,
            country=form.country.data,
            currency=form.currency.data,
        )
        db.session.commit()
        flash(_("The organization's settings are saved."), "success")
        return redirect(url_for("org.settings"))
    return render_template("tenancy/settings.html", form=form), 400 if form.errors else 200


@public.route("/orgs")
@login_required
def choose() -> Any:
    """The organizations the user belongs to."""
    return render_template("tenancy/choose.html", memberships=services.memberships_of(current_user))


@public.route("/invitations/<token>", methods=["GET", "POST"])
def accept(token: str) -> Any:
    """Accept an invitation: as the logged-in invitee, or by creating an account."""
    try:
        enter_tenant(services.org_id_of_invitation_token(token))  # entry point: the link
        invitation = services.open_invitation_for_token(token)
    except InvalidToken:
        return render_template("tenancy/invitation_invalid.html"), 400
    org = invitation.organization
    existing = find_user(invitation.email)
    form = AcceptInvitationForm()
    action = ActionForm()
    if current_user.is_authenticated:
        if request.method == "POST" and action.validate_on_submit():
            try:
                services.accept_invitation(invitation, acting_user())
            except services.MembershipError as exc:
                db.session.rollback()
                flash(str(exc), "error")
            else:
                db.session.commit()
                flash(_("You have joined %(org)s.", org=org.name), "success")
                return redirect(url_for("org.home", org_slug=org.slug))
    elif existing is None and form.validate_on_submit():
        try:
            user = services.accept_invitation_as_new_user(
                invitation, form.name.data, form.password.data, str(get_locale() or "en")
            )
        except services.MembershipError as exc:
            db.session.rollback()
            getattr(form, exc.field or "password").errors = [str(exc)]
        else:
            log_in(user)
            db.session.commit()
            flash(_("Welcome to %(org)s!", org=org.name), "success")
            return redirect(url_for("org.home", org_slug=org.slug))
    status = 400 if (form.errors and request.method == "POST") else 200
    return (
        render_template(
            "tenancy/accept_invitation.html",
            invitation=invitation,
            org=org,
            existing=existing,
            form=form,
            action=action,
            token=token,
        ),
        status,
    )
