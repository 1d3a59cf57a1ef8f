"""Choices shown in forms: languages, countries and currencies, named in the reader's language."""

from __future__ import annotations

from babel import Locale
from babel.numbers import list_currencies
from flask_babel import get_locale
from wtforms import SelectChoice

LANGUAGE_NAMES = {"en": "English", "es": "Español", "pt": "Português"}


def options(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    """Turn (value, label) pairs into the options of a select field."""
    return [SelectChoice(value, label) for value, label in pairs]


def language_choices() -> list[SelectChoice]:
    """Languages of the platform, each named in itself."""
    return options(list(LANGUAGE_NAMES.items()))


def _locale() -> Locale:
    return get_locale() or Locale("en")


def country_choices() -> list[SelectChoice]:
    """ISO 3166 countries, named in the current language and sorted by that name."""
    territories = _locale().territories
    countries = [
        (code, name) for code, name in territories.items() if len(code) == 2 and code.isalpha()
    ]
    return options(sorted(countries, key=lambda item: item[1]))


def currency_choices() -> list[SelectChoice]:
    """ISO 4217 currencies in use, named in the current language."""
    names = _locale().currencies
    codes = sorted(code for code in list_currencies() if code in names)
    return options([(code, f"{code} - {names[code]}") for code in codes])


def enum_options(labels: dict) -> list[SelectChoice]:
    """The options of a select field from a {member: label} mapping of an enum."""
    return [SelectChoice(member.value, label) for member, label in labels.items()]
