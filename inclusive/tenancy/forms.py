"""Forms for organizations, members and invitations."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, SelectChoice, SelectField, StringField
from wtforms.validators import Email, InputRequired, Length, Optional

from inclusive.auth.forms import AccountMixin, NewPasswordMixin, PersonMixin
from inclusive.babelcache import lazy_gettext as _l
from inclusive.choices import country_choices, currency_choices, language_choices
from inclusive.tenancy.roles import ROLE_LABELS


def role_choices() -> list[SelectChoice]:
    return [SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()]


class OrganizationFieldsMixin:
    org_name = StringField(_l("Organization name"), validators=[InputRequired(), Length(max=120)])
    country = SelectField(_l("Country"), validators=[InputRequired()])
    language = SelectField(_l("Default language"), choices=language_choices())
    currency = SelectField(_l("Currency"), validators=[InputRequired()])

    def fill_choices(self) -> None:
        self.country.choices = [SelectChoice("", "—"), *country_choices()]
        self.currency.choices = [SelectChoice("", "—"), *currency_choices()]


class NewOrganizationForm(OrganizationFieldsMixin, FlaskForm):
    slug = StringField(
        _l("Web address"),
        validators=[Optional(), Length(max=40)],
        description=_l(
            "Lowercase letters, digits and hyphens; left empty, it comes from the name."
        ),
    )


class SignUpForm(AccountMixin, NewOrganizationForm):
    pass


class OrganizationSettingsForm(FlaskForm):
    name = StringField(_l("Organization name"), validators=[InputRequired(), Length(max=120)])
    country = SelectField(_l("Country"), validators=[InputRequired()])
    language = SelectField(_l("Default language"), choices=language_choices())
    currency = SelectField(_l("Currency"), validators=[InputRequired()])

    def fill_choices(self) -> None:
        self.country.choices = country_choices()
        self.currency.choices = currency_choices()


class InviteForm(FlaskForm):
    email = EmailField(
        _l("E-mail"),
        validators=[InputRequired(), Email(check_deliverability=False), Length(max=254)],
    )
    role = SelectField(_l("Role"), choices=role_choices(), default="viewer")


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=role_choices())


class ActionForm(FlaskForm):
    """A button that changes state: only the CSRF token travels with it."""


class AcceptInvitationForm(PersonMixin, NewPasswordMixin, FlaskForm):
    pass
