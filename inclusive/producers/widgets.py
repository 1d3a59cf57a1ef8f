"""A faster select widget: the very HTML of WTForms' ``Select``, without its per-option cost.

WTForms builds every ``<option>`` through ``html_params`` (a sorted dict, ``Markup.format``
and an escape per attribute) and inspects ``render_option``'s signature at every render. The
producer list and the program page print about fifty options per request; this widget prints
them with one escape of the value and one of the label. Anything unusual (option attributes,
groups, multiple selection) is left to WTForms.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape
from wtforms.widgets import Select, html_params


class FastSelect(Select):
    """``wtforms.widgets.Select`` with the same output, for plain single selects."""

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        if self.multiple or field.has_groups():
            return super().__call__(field, **kwargs)
        choices = list(field._iter_choices_normalized())
        if any(choice.render_kw for choice in choices):
            return super().__call__(field, **kwargs)
        kwargs.setdefault("id", field.id)
        flags = getattr(getattr(field, "flags", None), "__dict__", {})
        for key in self.validation_attrs:
            if key in flags and key not in kwargs:
                kwargs[key] = flags[key]
        html = [f"<select {html_params(name=field.name, **kwargs)}>"]
        for choice in choices:
            value = choice.value
            if isinstance(value, bool):
                value = str(value)
            value = escape(value)
            if '"' in value:  # a Markup value keeps its quotes: html_params replaces them
                value = value.replace('"', "&quot;")
            label = escape(choice.label or choice.value)
            selected = "selected " if choice.selected else ""
            html.append(f'<option {selected}value="{value}">{label}</option>')
        html.append("</select>")
        return Markup("".join(html))  # noqa: S704 (every value and label is escaped above)


_WTFORMS_CATALOGS: dict[str, Any] = {}


class _CachedWtformsTranslations:
    """WTForms' own messages ("Not a valid choice.") in the reader's language, each catalog
    read once per process: Flask-WTF reads the file again in every request that needs it."""

    def _catalog(self) -> Any:
        from babel import support
        from flask_babel import get_locale
        from wtforms.i18n import messages_path

        from inclusive.presentation import _locale_name

        name = _locale_name()
        catalog = _WTFORMS_CATALOGS.get(name)
        if catalog is None:
            catalog = support.Translations.load(messages_path(), [get_locale()], domain="wtforms")
            _WTFORMS_CATALOGS[name] = catalog
        return catalog

    def gettext(self, string: str) -> str:
        return self._catalog().ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._catalog().ungettext(singular, plural, n)


cached_wtforms_translations = _CachedWtformsTranslations()


class CachedTranslationsMeta:
    """A form's ``Meta`` mixin: WTForms' messages from :data:`cached_wtforms_translations`
    (when Flask-WTF's i18n is on, as it is by default)."""

    def get_translations(self, form: Any) -> Any:
        from flask import current_app, has_request_context

        if has_request_context() and current_app.config.get("WTF_I18N_ENABLED", True):
            return cached_wtforms_translations
        return super().get_translations(form)  # type: ignore[misc]
