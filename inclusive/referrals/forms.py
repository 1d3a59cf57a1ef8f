"""Forms of the referral pages, on the organization's side and on the partner's.

Choices are filled by the views and checked by the services, which say why they refuse.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from inclusive.babelcache import lazy_gettext as _l
from inclusive.partners.models import Product


class ReferralForm(FlaskForm):
    """Prepare a draft referral of a producer to a capital partner."""

    partnership_id = SelectField(_l("Capital partner"), validate_choice=False)
    product = SelectField(_l("Product"), validate_choice=False)
    amount = StringField(
        _l("Amount requested"),
        validators=[Optional(), Length(max=20)],
        description=_l("Optional. Such as 1500 or 1500.50."),
    )
    purpose = TextAreaField(
        _l("Purpose"),
        validators=[Optional(), Length(max=2000)],
        description=_l("What the money is for, in the producer's words."),
    )


class NoteActionForm(FlaskForm):
    """A transition of the organization's (provide_info, withdraw), with a note.

    Made with the action's name as prefix: several stand on one page. The action itself is
    posted as ``action``, outside the prefix.
    """

    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


class MessageForm(FlaskForm):
    """A message in a referral's thread."""

    body = TextAreaField(_l("Message"), validators=[InputRequired(), Length(max=4000)])


class PartnerActionForm(FlaskForm):
    """Any transition of the partner's; the fields a transition does not use are ignored.

    Prefixed with the action's name, like :class:`NoteActionForm`.
    """

    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])
    reason = SelectField(_l("Reason"), validate_choice=False)
    amount = StringField(_l("Amount disbursed"), validators=[Optional(), Length(max=20)])
    currency = StringField(_l("Currency"), validators=[Optional(), Length(max=3)])
    disbursed_on = DateField(_l("Disbursed on"), validators=[Optional()])
    disbursed_product = SelectField(_l("Product"), validate_choice=False)
    term_months = StringField(_l("Term (months)"), validators=[Optional(), Length(max=4)])


def product_filter_choices() -> list[SelectChoice]:
    """ "All products", then each product in the reader's language (both inboxes' filter)."""
    from inclusive.partners.services import PRODUCT_LABELS

    return [SelectChoice("", _("All products"))] + [
        SelectChoice(p.value, str(PRODUCT_LABELS[p])) for p in Product
    ]


class ReferralFilterForm(FlaskForm):
    """The referral lists' filters: a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    state = SelectField(_l("State"), choices=[], validators=[Optional()], validate_choice=False)
    partner = SelectField(
        _l("Capital partner"), choices=[], validators=[Optional()], validate_choice=False
    )
    organization = SelectField(
        _l("Organization"), choices=[], validators=[Optional()], validate_choice=False
    )
    product = SelectField(_l("Product"), choices=[], validators=[Optional()], validate_choice=False)
