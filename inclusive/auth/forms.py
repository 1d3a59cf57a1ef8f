"""Forms for logging in, signing up and managing one's account."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import Email, EqualTo, InputRequired, Length, Optional

from inclusive.babelcache import lazy_gettext as _l
from inclusive.choices import language_choices


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[InputRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=256)])


class NewPasswordMixin:
    password = PasswordField(
        _l("New password"),
        validators=[InputRequired(), Length(max=256)],
        description=_l("At least 10 characters. A few unrelated words make a good password."),
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[InputRequired(), EqualTo("password", message=_l("The two passwords differ."))],
    )


class PersonMixin:
    name = StringField(_l("Your name"), validators=[InputRequired(), Length(max=120)])


class AccountMixin(PersonMixin):
    email = EmailField(
        _l("E-mail"),
        validators=[InputRequired(), Email(check_deliverability=False), Length(max=254)],
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(), Length(max=256)],
        description=_l("At least 10 characters. A few unrelated words make a good password."),
    )


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        _l("E-mail"),
        validators=[InputRequired(), Email(check_deliverability=False), Length(max=254)],
    )


class ResetPasswordForm(NewPasswordMixin, FlaskForm):
    pass


class ChangePasswordForm(NewPasswordMixin, FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[InputRequired()])


class ProfileForm(PersonMixin, FlaskForm):
    locale = SelectField(
        _l("Language"),
        choices=[SelectChoice("", _l("As my browser prefers")), *language_choices()],
        validators=[Optional()],
    )
