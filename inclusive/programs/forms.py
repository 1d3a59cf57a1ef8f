"""Forms for programs, their template steps and enrollments."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Email, InputRequired, Length, NumberRange, Optional

from inclusive.babelcache import lazy_gettext as _l
from inclusive.choices import enum_options
from inclusive.producers.widgets import FastSelect
from inclusive.programs.catalog import KIND_LABELS
from inclusive.programs.services import COUNTERPART_LABELS, STATUS_LABELS


class ProgramForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=160)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=4000)])
    region = StringField(_l("Region"), validators=[Optional(), Length(max=120)])
    start_date = DateField(_l("Start date"), validators=[Optional()])
    end_date = DateField(_l("End date"), validators=[Optional()])
    counterpart_kind = SelectField(_l("Counterpart"), choices=enum_options(COUNTERPART_LABELS))
    counterpart_name = StringField(
        _l("Counterpart's name"), validators=[Optional(), Length(max=160)]
    )
    counterpart_contact = StringField(
        _l("Contact person"), validators=[Optional(), Length(max=160)]
    )
    counterpart_email = EmailField(
        _l("Contact e-mail"), validators=[Optional(), Email(check_deliverability=False)]
    )
    counterpart_phone = StringField(_l("Contact phone"), validators=[Optional(), Length(max=40)])


class NewProgramForm(ProgramForm):
    kind = SelectField(
        _l("Kind of program"),
        choices=enum_options(KIND_LABELS),
        description=_l("It sets the default milestone plan, which you can edit afterwards."),
    )


class StatusForm(FlaskForm):
    status = SelectField(_l("Status"), choices=enum_options(STATUS_LABELS), widget=FastSelect())


class OfficerForm(FlaskForm):
    user_id = SelectField(_l("Field officer"), coerce=int, choices=[], widget=FastSelect())


class StepForm(FlaskForm):
    name = StringField(_l("Step"), validators=[InputRequired(), Length(max=160)])
    offset_days = IntegerField(
        _l("Days from enrollment"), validators=[InputRequired(), NumberRange(0, 3650)]
    )
    weight = IntegerField(
        _l("Weight"), default=1, validators=[InputRequired(), NumberRange(1, 100)]
    )
    evidence_required = BooleanField(_l("Evidence required"))
    apply_to_existing = BooleanField(
        _l("Also change the plans of producers already enrolled"),
        description=_l("Milestones already started or achieved are never changed."),
    )


class TemplateActionForm(FlaskForm):
    apply_to_existing = BooleanField(_l("Also change the plans of producers already enrolled"))


class EnrollForm(FlaskForm):
    program_id = SelectField(_l("Program"), coerce=int, choices=[], widget=FastSelect())
    state = SelectField(
        _l("As"),
        widget=FastSelect(),
        choices=[
            SelectChoice("enrolled", _l("Enrolled (the plan starts today)")),
            SelectChoice("applied", _l("Applicants")),
        ],
    )


class BulkAchieveForm(FlaskForm):
    step_id = SelectField(_l("Milestone"), coerce=int, choices=[], widget=FastSelect())
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])
