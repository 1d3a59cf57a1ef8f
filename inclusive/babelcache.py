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

from collections.abc import Callable
from typing import Any, TypeVar

from flask.globals import _cv_app
from flask_babel import get_locale, get_translations
from flask_babel.speaklater import LazyString

T = TypeVar("T")


def translations() -> Any:
    """Flask-Babel's translations of the current locale, looked up once per request.

    ``flask_babel.get_translations`` walks the ``g`` proxy a dozen times at every call (a
    page calls it a hundred times)."""
    return request_cached("_inclusive_translations", get_translations, _locale_and_domain)


def _locale_name() -> str:
    """The current locale's name, found once per request (and again under force_locale)."""
    return request_cached("_inclusive_locale_name", _current_locale_name, _locale)


def _current_locale_name() -> str:
    return str(get_locale())


def request_cached(name: str, compute: Callable[[], T], key_of: Callable[[Any], tuple]) -> T:
    """``compute()``, kept beside Flask-Babel's request state under ``name`` with the key
    it was found for (``key_of(state)``: the locale object, and the domain where it
    matters). ``force_locale`` and ``refresh`` replace those objects, so a forced or
    refreshed locale is looked up again. Outside a request, computed at each call."""
    state = _babel_state()
    if state is not None:
        cached = state.__dict__.get(name)
        # (a tuple compares its items by identity first: the same objects match at once)
        if cached is not None and cached[0] == key_of(state):
            return cached[1]
    found = compute()
    state = _babel_state()  # (the lookup may have created Flask-Babel's state)
    if state is not None:
        setattr(state, name, (key_of(state), found))
    return found


def _babel_state() -> Any:
    ctx = _cv_app.get(None)
    return ctx.g.__dict__.get("_flask_babel") if ctx is not None else None


def _locale(state: Any) -> tuple:
    return (state.__dict__.get("babel_locale"),)


def _locale_and_domain(state: Any) -> tuple:
    return (state.__dict__.get("babel_locale"), state.__dict__.get("babel_domain"))


def gettext(string: str, /, **variables: Any) -> str:
    """``flask_babel.gettext``: the translation, formatted with the variables if any."""
    text = translations().ugettext(string)
    return text % variables if variables else text


def lazy_gettext(string: str, /, **variables: Any) -> LazyString:
    """``flask_babel.lazy_gettext`` (a string translated when it is used), through
    :func:`gettext`."""
    return LazyString(gettext, string, **variables)
