"""Flask-Babel's translations and locale, looked up once per request, and the gettext and
lazy_gettext of Python code that use them.

A page translates a few hundred strings (labels, choices, messages). Flask-Babel's own
``gettext`` finds its domain, its translations and its locale through the application
context at every call; here they are kept beside Flask-Babel's request state, with the
locale and domain objects they were found for: ``force_locale`` and ``refresh`` replace
those objects, so a forced or refreshed locale is looked up again. This module imports
nothing of the platform's, so that forms and services can use it.
"""

from __future__ import annotations

from typing import Any

from flask.globals import _cv_app
from flask_babel import get_locale, get_translations
from flask_babel.speaklater import LazyString


def translations() -> Any:
    """Flask-Babel's translations of the current locale, looked up once per request.

    ``flask_babel.get_translations`` walks the ``g`` proxy a dozen times at every call (a
    page calls it a hundred times). The result is kept beside Flask-Babel's own state,
    with the locale object it was found for: ``force_locale`` and ``refresh`` replace that
    object, so a forced or refreshed locale is looked up again.
    """
    state = _babel_state()
    if state is not None:
        cached = state.__dict__.get("_inclusive_translations")
        if (
            cached is not None
            and cached[0] is state.__dict__.get("babel_locale")
            and cached[1] is state.__dict__.get("babel_domain")
        ):
            return cached[2]
    found = get_translations()
    state = _babel_state()
    if state is not None:
        key = (state.__dict__.get("babel_locale"), state.__dict__.get("babel_domain"))
        state._inclusive_translations = (*key, found)
    return found


def _babel_state() -> Any:
    ctx = _cv_app.get(None)
    return ctx.g.__dict__.get("_flask_babel") if ctx is not None else None


def _locale_name() -> str:
    """The current locale's name, found once per request (and again under force_locale)."""
    state = _babel_state()
    if state is not None:
        cached = state.__dict__.get("_inclusive_locale_name")
        if cached is not None and cached[0] is state.__dict__.get("babel_locale"):
            return cached[1]
    name = str(get_locale())
    state = _babel_state()
    if state is not None:
        state._inclusive_locale_name = (state.__dict__.get("babel_locale"), name)
    return name


def gettext(string: str, /, **variables: Any) -> str:
    """``flask_babel.gettext``: the translation, formatted with the variables if any."""
    text = translations().ugettext(string)
    return text % variables if variables else text


def lazy_gettext(string: str, /, **variables: Any) -> LazyString:
    """``flask_babel.lazy_gettext`` (a string translated when it is used), through
    :func:`gettext`."""
    return LazyString(gettext, string, **variables)
