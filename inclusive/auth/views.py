"""Log in and out, sign up, reset a forgotten password, and manage one's own account."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from inclusive.auth import throttle
from inclusive.auth.forms import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    ProfileForm,
    ResetPasswordForm,
)
from inclusive.auth.services import (
    AccountError,
    authenticate,
    change_password,
    request_password_reset,
    reset_password,
    user_for_reset_token,
)
from inclusive.auth.sessions import acting_user, log_in, log_out
from inclusive.extensions import db, limiter
from inclusive.tenancy.forms import NewOrganizationForm, SignUpForm
from inclusive.tenancy.services import MembershipError, create_organization, sign_up, slugify
from inclusive.tokens import InvalidToken

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str | None:
    """Return a same-site path to go to after logging in, or None."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(throttle.per_ip_limit, methods=["POST"], key_func=throttle.ip_key)
@limiter.limit(
    throttle.per_account_limit,
    methods=["POST"],
    key_func=throttle.account_key,
    deduct_when=throttle.login_failed,
)
def login() -> Any:
    """Log in with e-mail and password."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            log_in(user)
            db.session.commit()
            response = redirect(safe_next(request.args.get("next")) or url_for("main.home"))
            throttle.remember_device(response, user)
            return response
        g.login_failed = True
        form.password.errors = [_("The e-mail or password is not correct.")]
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """End this session, everywhere its cookie might have been copied to."""
    log_out()
    db.session.commit()
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def signup() -> Any:
    """Create an organization with its first administrator (or, logged in, another one)."""
    if not current_app.config["SIGNUP_ENABLED"]:
        abort(404)
    authenticated = current_user.is_authenticated
    form = NewOrganizationForm() if authenticated else SignUpForm()
    form.fill_choices()
    if request.method == "GET":
        form.language.data = str(get_locale() or "en")
    if form.validate_on_submit():
        slug = (form.slug.data or slugify(form.org_name.data)).strip().lower()
        org_fields = {
            "org_name": form.org_name.data,
            "slug": slug,
            "country": form.country.data,
            "language": form.language.data,
            "currency": form.currency.data,
        }
        try:
            if authenticated:
                org = create_organization(
                    name=org_fields.pop("org_name"), admin=acting_user(), **org_fields
                )
            else:
                user, org = sign_up(
                    name=form.name.data,
                    email=form.email.data,
                    password=form.password.data,
                    locale=str(get_locale() or "en"),
                    **org_fields,
                )
                log_in(user)
        except (AccountError, MembershipError) as exc:
            db.session.rollback()
            errors = getattr(exc, "errors", None) or {exc.field or "org_name": str(exc)}
            for name, message in errors.items():
                field = getattr(form, name, None) or form.org_name
                field.errors = [*field.errors, message]
            if "slug" in errors and not form.slug.data:
                form.slug.data = slug
        else:
            db.session.commit()
            flash(_("Welcome! %(org)s is ready.", org=org.name), "success")
            return redirect(url_for("org.home", org_slug=org.slug))
    return render_template("auth/signup.html", form=form, authenticated=authenticated)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def forgot_password() -> Any:
    """Ask for a password-reset link by e-mail."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        request_password_reset(form.email.data, str(get_locale() or "en"))
        db.session.commit()
        flash(
            _("If an account uses that address, a link to choose a new password is on its way."),
            "info",
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"], endpoint="reset_password")
def reset_password_view(token: str) -> Any:
    """Choose a new password through the link sent by e-mail."""
    try:
        user = user_for_reset_token(token)
    except InvalidToken:
        return render_template("auth/reset_invalid.html"), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            reset_password(token, form.password.data)
        except AccountError as exc:
            db.session.rollback()
            form.password.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Your password is changed. Log in with the new one."), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form, user=user)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Any:
    """Change one's name and language."""
    form = ProfileForm(obj=current_user)
    if request.method == "GET":
        form.locale.data = current_user.locale or ""
    if form.validate_on_submit():
        user = acting_user()
        user.name = form.name.data.strip()
        user.locale = form.locale.data or None
        db.session.commit()
        flash(_("Your account is updated."), "success")
        return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form, password_form=ChangePasswordForm())


@bp.route("/account/password", methods=["POST"], endpoint="change_password")
@login_required
def change_password_view() -> Any:
    """Change one's password; every other session ends."""
    password_form = ChangePasswordForm()
    if password_form.validate_on_submit():
        try:
            change_password(
                acting_user(), password_form.current_password.data, password_form.password.data
            )
        except AccountError as exc:
            db.session.rollback()
            field = getattr(password_form, exc.field or "password")
            field.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Your password is changed. You were logged out everywhere else."), "success")
            return redirect(url_for("auth.account"))
    form = ProfileForm(obj=current_user)
    return (
        render_template("auth/account.html", form=form, password_form=password_form),
        400,
    )


@bp.route("/language", methods=["POST"])
def set_language() -> Any:
    """Choose the language of the pages (kept in the session, or on the account)."""
    language = request.form.get("language", "")
    if language not in current_app.config["LANGUAGES"]:
        abort(400)
    session["lang"] = language
    if current_user.is_authenticated:
        acting_user().locale = language
        db.session.commit()
    return redirect(safe_next(request.form.get("next")) or url_for("main.home"))
