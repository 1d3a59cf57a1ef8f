"""Forms for enrollments and milestones."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from wtforms import SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from inclusive.babelcache import lazy_gettext as _l
from inclusive.milestones.models import EnrollmentState, MilestoneStatus
from inclusive.milestones.services import MILESTONE_LABELS, STATE_LABELS
from inclusive.producers.widgets import FastSelect


class TransitionForm(FlaskForm):
    state = SelectField(
        _l("New state"),
        choices=[SelectChoice(s.value, STATE_LABELS[s]) for s in EnrollmentState],
        widget=FastSelect(),
    )
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=500)])


class RecordForm(FlaskForm):
    status = SelectField(
        _l("Status"),
        choices=[
            SelectChoice(s.value, MILESTONE_LABELS[s])
            for s in (
                MilestoneStatus.IN_PROGRESS,
                MilestoneStatus.ACHIEVED,
                MilestoneStatus.PLANNED,
            )
        ],
    )
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])
    files = MultipleFileField(
        _l("Evidence (PDF, JPEG or PNG)"),
        description=_l("Photos from the phone's camera work. Up to 10 MB each."),
    )


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[InputRequired(), Length(max=500)])


class OptionalReasonForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=500)])


__all__ = ["FileField", "OptionalReasonForm", "ReasonForm", "RecordForm", "TransitionForm"]
