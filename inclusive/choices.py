"""Choices shown in forms: languages, countries and currencies, named in the reader's language."""

from __future__ import annotations

from babel import Locale
from babel.numbers import list_currencies
from flask_babel import get_locale

LANGUAGE_NAMES = {"en": "English", "es": "Español", "pt": "Português"}


def language_choices() -> list[tuple[str, str]]:
    """Languages of the platform, each named in itself."""
    return list(LANGUAGE_NAMES.items())


def _locale() -> Locale:
    return get_locale() or Locale("en")


def country_choices() -> list[tuple[str, str]]:
    """ISO 3166 countries, named in the current language and sorted by that name."""
    territories = _locale().territories
    countries = [
        (code, name) for code, name in territories.items() if len(code) == 2 and code.isalpha()
    ]
    return sorted(countries, key=lambda item: item[1])


def currency_choices() -> list[tuple[str, str]]:
    """ISO 4217 currencies in use, named in the current language."""
    names = _locale().currencies
    codes = sorted(code for code in list_currencies() if code in names)
    return [(code, f"{code} - {names[code]}") for code in codes]
