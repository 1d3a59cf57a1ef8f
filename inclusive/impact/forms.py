"""Forms for monthly figures, diagnostics and offtake purchases."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from inclusive.babelcache import lazy_gettext as _l
from inclusive.impact.services import FACTOR_GUIDANCE, FACTOR_LABELS, LEVEL_LABELS


class SnapshotForm(FlaskForm):
    month = DateField(
        _l("Month"), format="%Y-%m", validators=[InputRequired()], render_kw={"type": "month"}
    )
    sales = StringField(_l("Sales"), validators=[InputRequired(), Length(max=20)])
    costs = StringField(_l("Production costs"), validators=[InputRequired(), Length(max=20)])
    household_withdrawals = StringField(
        _l("Household withdrawals"),
        validators=[InputRequired(), Length(max=20)],
        description=_l("Money taken from the business for the family's living."),
    )
    reinvestment = StringField(_l("Reinvestment"), validators=[InputRequired(), Length(max=20)])
    assets = StringField(_l("Assets"), validators=[InputRequired(), Length(max=20)])
    debt = StringField(_l("Debt"), validators=[InputRequired(), Length(max=20)])
    employees = IntegerField(
        _l("Employees"), default=0, validators=[InputRequired(), NumberRange(0, 250)]
    )


def _score_field(factor: str) -> SelectField:
    return SelectField(
        FACTOR_LABELS[factor],
        choices=[SelectChoice(str(level), label) for level, label in LEVEL_LABELS.items()],
        description=FACTOR_GUIDANCE[factor],
        default="2",
    )


class AssessmentForm(FlaskForm):
    assessed_on = DateField(_l("Date"), validators=[InputRequired()])
    knowledge = _score_field("knowledge")
    commercial_information = _score_field("commercial_information")
    contacts = _score_field("contacts")
    business_engineering = _score_field("business_engineering")
    network_articulation = _score_field("network_articulation")
    sustainable_practices = _score_field("sustainable_practices")
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=2000)])


class OfftakeForm(FlaskForm):
    program_id = SelectField(_l("Program"), coerce=int, choices=[])
    purchased_on = DateField(_l("Date"), validators=[InputRequired()])
    product = StringField(_l("Product"), validators=[InputRequired(), Length(max=120)])
    quantity = StringField(_l("Quantity"), validators=[InputRequired(), Length(max=20)])
    unit = StringField(_l("Unit"), default="kg", validators=[Optional(), Length(max=20)])
    unit_price = StringField(_l("Unit price"), validators=[InputRequired(), Length(max=20)])
    on_time = BooleanField(_l("Delivered on time"), default=True)
    quality_accepted = BooleanField(_l("Quality accepted"), default=True)
