"""Forms of the consent pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    DateField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from inclusive.babelcache import lazy_gettext as _l
from inclusive.consents.models import ConsentMethod, ConsentScope
from inclusive.consents.services import METHOD_LABELS, SCOPE_LABELS, TEXT_VERSIONS


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ConsentForm(FlaskForm):
    """Record a consent. Choices are checked by the service, which says why it refuses."""

    partner_id = SelectField(_l("Capital partner"), validate_choice=False)
    purpose = StringField(
        _l("Purpose"),
        validators=[InputRequired(), Length(max=200)],
        description=_l("What the data is shared for, e.g. a working-capital loan application."),
    )
    scopes = CheckboxesField(
        _l("Data that may be shared"),
        choices=[SelectChoice(s.value, SCOPE_LABELS[s]) for s in ConsentScope],
        validate_choice=False,
    )
    text_version = SelectField(
        _l("Consent text"),
        choices=[SelectChoice(v, v) for v in TEXT_VERSIONS],
        validate_choice=False,
    )
    method = RadioField(
        _l("How it was given"),
        choices=[SelectChoice(m.value, METHOD_LABELS[m]) for m in ConsentMethod],
        validate_choice=False,
        default=ConsentMethod.SIGNED_PAPER.value,
    )
    paper = FileField(
        _l("Signed paper (PDF, JPEG or PNG)"),
        description=_l("A photo from the phone's camera works. Up to 10 MB."),
    )
    witness_id = SelectField(_l("Staff witness"), validate_choice=False)
    given_on = DateField(_l("Given on"), validators=[InputRequired()])
    valid_until = DateField(
        _l("Valid until"),
        validators=[Optional()],
        description=_l("Leave empty for one year after it was given."),
    )


class RevokeForm(FlaskForm):
    reason = StringField(_l("Why it is revoked"), validators=[InputRequired(), Length(max=500)])
