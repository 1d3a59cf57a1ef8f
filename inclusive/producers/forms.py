"""Forms for the producer registry."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from inclusive.babelcache import lazy_gettext as _l
from inclusive.choices import enum_options
from inclusive.producers.services import GENDER_LABELS, KIND_LABELS, SECTOR_LABELS
from inclusive.producers.widgets import CachedTranslationsMeta, FastSelect


class ProducerForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=enum_options(KIND_LABELS))
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=160)])
    national_id = StringField(
        _l("National or tax id"),
        validators=[Optional(), Length(max=40)],
        description=_l("Optional; unique in your organization."),
    )
    representative = StringField(_l("Representative"), validators=[Optional(), Length(max=160)])
    owner_gender = SelectField(
        _l("Owner's gender"),
        choices=enum_options(GENDER_LABELS),
        description=_l("For results disaggregated by gender."),
    )
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    email = EmailField(_l("E-mail"), validators=[Optional(), Length(max=254)])
    region = StringField(_l("Region"), validators=[Optional(), Length(max=120)])
    municipality = StringField(_l("Municipality"), validators=[Optional(), Length(max=120)])
    sectors = SelectMultipleField(
        _l("Sectors"), choices=enum_options(SECTOR_LABELS), validators=[Optional()]
    )
    employees = IntegerField(
        _l("Employees"), default=0, validators=[Optional(), NumberRange(0, 250)]
    )
    formally_registered = BooleanField(_l("Formally registered"))
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=4000)])

    def raw(self) -> dict:
        """The typed values, for the service to validate."""
        data = {name: field.data for name, field in self._fields.items() if name != "csrf_token"}
        data["formally_registered"] = "yes" if self.formally_registered.data else "no"
        data["employees"] = "" if data["employees"] is None else str(data["employees"])
        return data


class FilterForm(FlaskForm):
    """The producer list's filters: a GET form, so no CSRF token."""

    class Meta(CachedTranslationsMeta):
        csrf = False

    q = StringField(
        _l("Search"), validators=[Optional(), Length(max=100)], description=_l("Name, id or phone")
    )
    program = SelectField(
        _l("Program"), coerce=str, choices=[], validators=[Optional()], widget=FastSelect()
    )
    state = SelectField(_l("Enrollment"), choices=[], validators=[Optional()], widget=FastSelect())
    region = StringField(_l("Region"), validators=[Optional(), Length(max=120)])
    sector = SelectField(_l("Sector"), choices=[], validators=[Optional()], widget=FastSelect())
    at_risk = BooleanField(_l("At risk only"))
