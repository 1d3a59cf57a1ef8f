"""Forms of the partner pages, on both sides."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from inclusive.babelcache import lazy_gettext as _l
from inclusive.choices import country_choices
from inclusive.partners.services import KIND_LABELS


class PartnerSearchForm(FlaskForm):
    """The partner list's search: a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Optional(), Length(max=100)])
    kind = SelectField(_l("Kind"), validators=[Optional()])
    country = SelectField(_l("Country"), validators=[Optional()])

    def fill_choices(self) -> None:
        any_ = SelectChoice("", str(_l("Any")))
        self.kind.choices = [any_] + [SelectChoice(k.value, str(v)) for k, v in KIND_LABELS.items()]
        self.country.choices = [any_, *country_choices()]


class EndPartnershipForm(FlaskForm):
    """End a partnership, saying why if one wishes."""

    reason = TextAreaField(_l("Why it ends (optional)"), validators=[Optional(), Length(max=500)])
