"""Organizations and their members: every change to them goes through here."""

from __future__ import annotations

import re
import secrets

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from inclusive.auth.models import User
from inclusive.auth.services import AccountError, create_user, normalize_email
from inclusive.extensions import db
from inclusive.jobs import enqueue, job
from inclusive.jobs.mail import render_mail, send_mail
from inclusive.refusals import Refused
from inclusive.tenancy.models import Invitation, Membership, Organization
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import ALL_TENANTS, require_org_id, tenant_scope
from inclusive.timeutil import utcnow
from inclusive.tokens import InvalidToken, make_token, read_token
from inclusive.urls import external_url

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
RESERVED_SLUGS = frozenset({"admin", "api", "new", "static", "login", "signup", "www", "dev"})
INVITATION_PURPOSE = "invitation"


class MembershipError(Refused):
    """A change to an organization or its members that is refused; the message says why."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SignUpError(MembershipError):
    """Sign-up refused; ``errors`` maps each refused field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()), next(iter(errors)))
        self.errors = errors


def slugify(name: str) -> str:
    """Suggest a URL slug for an organization name."""
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:40].strip("-")


def check_slug(slug: str) -> None:
    """Refuse a malformed, reserved or taken slug."""
    if not SLUG_RE.match(slug) or slug in RESERVED_SLUGS:
        raise MembershipError(
            _("Use 1 to 40 lowercase letters, digits and hyphens (not at either end)."), "slug"
        )
    taken = db.session.scalar(select(func.count()).select_from(Organization).filter_by(slug=slug))
    if taken:
        raise MembershipError(_("This address is already taken; choose another."), "slug")


def create_organization(
    *, name: str, slug: str, country: str, language: str, currency: str, admin: User
) -> Organization:
    """Create an organization with its first administrator."""
    slug = slug.strip().lower()
    check_slug(slug)
    org = Organization(
        name=name.strip(),
        slug=slug,
        country=country.upper(),
        default_language=language,
        currency=currency.upper(),
    )
    db.session.add(org)
    db.session.flush()
    with tenant_scope(org.id):
        db.session.add(Membership(org_id=org.id, user_id=admin.id, role=Role.ADMIN))
        db.session.flush()
    return org


def sign_up(
    *,
    name: str,
    email: str,
    password: str,
    locale: str | None,
    org_name: str,
    slug: str,
    country: str,
    language: str,
    currency: str,
) -> tuple[User, Organization]:
    """Create a user and their organization together, or neither (every problem at once)."""
    from inclusive.auth.passwords import password_problem
    from inclusive.auth.services import find_user

    errors: dict[str, str] = {}
    try:
        check_slug(slug.strip().lower())
    except MembershipError as exc:
        errors["slug"] = str(exc)
    if find_user(email) is not None:
        errors["email"] = _("An account with this e-mail address already exists.")
    problem = password_problem(password, [email, name])
    if problem:
        errors["password"] = problem
    if errors:
        raise SignUpError(errors)
    user = create_user(email, name, password, locale)
    org = create_organization(
        name=org_name, slug=slug, country=country, language=language, currency=currency, admin=user
    )
    return user, org


def update_organization(
    org: Organization, *, name: str, language: str, country: str, currency: str
) -> None:
    """Change an organization's name, language, country or currency (not its slug)."""
    org.name = name.strip()
    org.default_language = language
    org.country = country.upper()
    org.currency = currency.upper()


def memberships_of(user: User) -> list[Membership]:
    """Every organization the user belongs to, by name (this spans tenants by design)."""
    query = (
        select(Membership)
        .join(Membership.organization)
        .where(Membership.user_id == user.id)
        .order_by(Organization.name)
        .execution_options(**ALL_TENANTS)
    )
    return list(db.session.scalars(query))


def members() -> list[Membership]:
    """The members of the organization in scope, by name."""
    return list(db.session.scalars(select(Membership).join(Membership.user).order_by(User.name)))


def open_invitations() -> list[Invitation]:
    """Invitations of the organization in scope that are neither accepted nor revoked."""
    query = (
        select(Invitation)
        .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .order_by(Invitation.created_at.desc())
    )
    return list(db.session.scalars(query))


def _admin_count(lock: bool = False) -> int:
    query = select(Membership.id).where(Membership.role == Role.ADMIN)
    if lock:  # serialize concurrent demotions so two admins cannot remove each other
        query = query.with_for_update()
    return len(db.session.scalars(query).all())


def _ensure_not_last_admin(membership: Membership) -> None:
    if membership.role == Role.ADMIN and _admin_count(lock=True) <= 1:
        raise MembershipError(
            _(
                "An organization needs at least one administrator. Make someone else an "
                "administrator first."
            )
        )


def change_role(membership: Membership, role: Role) -> None:
    """Give a member another role; the last administrator keeps theirs."""
    if membership.role == role:
        return
    if role != Role.ADMIN:
        _ensure_not_last_admin(membership)
    membership.role = role


def remove_member(membership: Membership) -> None:
    """Remove a member from the organization in scope; never its last administrator."""
    _ensure_not_last_admin(membership)
    db.session.delete(membership)


def invite(org: Organization, inviter: User, email: str, role: Role) -> Invitation:
    """Invite an e-mail address with a role; a repeated invitation replaces the open one."""
    email = normalize_email(email)
    already = db.session.scalar(
        select(func.count())
        .select_from(Membership)
        .join(Membership.user)
        .where(User.email == email)
    )
    if already:
        raise MembershipError(_("%(email)s is already a member.", email=email), "email")
    invitation = db.session.scalar(
        select(Invitation).where(
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    )
    if invitation is None:
        invitation = Invitation(email=email, language=org.default_language)
        db.session.add(invitation)
    invitation.role = role
    invitation.invited_by_id = inviter.id
    invitation.nonce = secrets.token_urlsafe(16)  # links sent before stop working
    invitation.created_at = utcnow()
    db.session.flush()
    enqueue("tenancy.invitation_email", invitation_id=invitation.id)
    return invitation


def resend_invitation(invitation: Invitation) -> None:
    """Send an open invitation again with a fresh link that expires later."""
    if not invitation.is_open:
        raise MembershipError(_("This invitation is no longer open."))
    invitation.nonce = secrets.token_urlsafe(16)
    invitation.created_at = utcnow()
    enqueue("tenancy.invitation_email", invitation_id=invitation.id)


def revoke_invitation(invitation: Invitation) -> None:
    """Revoke an open invitation; its link stops working."""
    if invitation.is_open:
        invitation.revoked_at = utcnow()


def invitation_token(invitation: Invitation) -> str:
    """The signed token in an invitation link."""
    return make_token(
        INVITATION_PURPOSE, {"o": invitation.org_id, "i": invitation.id, "n": invitation.nonce}
    )


def org_id_of_invitation_token(token: str) -> int:
    """Read which organization an invitation link is for, or raise InvalidToken.

    The invitation page is an entry point: it enters this organization's tenant scope.
    """
    payload = read_token(INVITATION_PURPOSE, token, current_app.config["INVITATION_MAX_AGE"])
    org_id = payload.get("o")
    if not isinstance(org_id, int) or not isinstance(payload.get("i"), int):
        raise InvalidToken("malformed")
    return org_id


def open_invitation_for_token(token: str) -> Invitation:
    """Return the open invitation of a link (inside its organization's scope) or raise."""
    payload = read_token(INVITATION_PURPOSE, token, current_app.config["INVITATION_MAX_AGE"])
    invitation = db.session.get(Invitation, payload.get("i"))
    if (
        invitation is None
        or invitation.org_id != require_org_id()
        or invitation.nonce != payload.get("n")
        or not invitation.is_open
    ):
        raise InvalidToken("used")
    return invitation


def accept_invitation(invitation: Invitation, user: User) -> Membership:
    """Make the invited user a member with the invited role."""
    if normalize_email(user.email) != invitation.email:
        raise MembershipError(
            _(
                "This invitation was sent to %(email)s. Log in with that address to accept it.",
                email=invitation.email,
            )
        )
    invitation.accepted_at = utcnow()
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
    if membership is None:
        membership = Membership(user_id=user.id, role=invitation.role)
        db.session.add(membership)
    db.session.flush()
    return membership


def accept_invitation_as_new_user(
    invitation: Invitation, name: str, password: str, locale: str | None
) -> User:
    """Create the invited person's account and make them a member."""
    try:
        user = create_user(invitation.email, name, password, locale or invitation.language)
    except AccountError as exc:
        raise MembershipError(str(exc), exc.field) from exc
    accept_invitation(invitation, user)
    return user


@job("tenancy.invitation_email")
def send_invitation_email(invitation_id: int) -> None:
    """E-mail an invitation link in the organization's language."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or not invitation.is_open:
        return
    existing = db.session.scalar(select(User).where(User.email == invitation.email))
    locale = (existing.locale if existing else None) or invitation.language
    link = external_url("invitations.accept", token=invitation_token(invitation))
    send_mail(
        render_mail(
            "invitation",
            to=invitation.email,
            locale=locale,
            invitation=invitation,
            organization=invitation.organization,
            inviter=invitation.invited_by,
            role=invitation.role,
            link=link,
            days=current_app.config["INVITATION_MAX_AGE"] // 86400,
        )
    )
    invitation.sent_at = utcnow()
