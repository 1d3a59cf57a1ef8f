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
