"""Forms of the partner's API access page (CSRF-protected, like every form of the site)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from inclusive.babelcache import lazy_gettext as _l
from inclusive.referrals.endpoints import MAX_TOKEN_NAME


class NewTokenForm(FlaskForm):
    name = StringField(
        _l("Token name"),
        validators=[InputRequired(), Length(max=MAX_TOKEN_NAME)],
        description=_l("What will use it, such as “Core banking, production”."),
    )


class WebhookForm(FlaskForm):
    url = StringField(
        _l("Webhook address"),
        validators=[InputRequired(), Length(max=2000)],
        description=_l("A public https:// address that receives each referral event."),
    )
