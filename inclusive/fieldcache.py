"""Form fields rendered once per distinct input: the ``field()`` macro, memoized.

A staff page prints the same filter and action fields on every visit (a select of the
organization's programs, the enrollment states, a search box), and the macro that prints
one (label, hint, control, errors: ``templates/macros/forms.html``) cost the producer list
a fifth of its time. :func:`field_html` renders a field through that macro once per
distinct *input*: the language, the widget, the field's name, id, label, hint, errors,
flags and attributes, and what the control shows (the value; a select's choices and the
data that picks the selected one). The same input always gives the same markup, so the
cache never serves anything stale; it is bounded, per app.

Only plain text-like inputs, checkboxes and the single :class:`FastSelect` (its choices
plain pairs, or ``SelectChoice`` without attributes or group) are memoized.
Anything else (passwords, files, hidden fields such as the CSRF token, text areas, selects
with groups or option attributes, unhashable values) is rendered by the macro every time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import current_app
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from wtforms import SelectChoice, widgets

from inclusive.presentation import _locale_name
from inclusive.producers.widgets import FastSelect

#: Distinct fields kept per app.
CACHE_SIZE = 4096

_INPUTS = (
    widgets.TextInput,
    widgets.SearchInput,
    widgets.EmailInput,
    widgets.TelInput,
    widgets.NumberInput,
    widgets.DateInput,
    widgets.MonthInput,
    widgets.URLInput,
    widgets.CheckboxInput,
)
_NEVER = (widgets.PasswordInput, widgets.HiddenInput, widgets.FileInput)


def field_html(field: Any, attrs: Mapping[str, Any]) -> Markup:
    """The markup of ``field()`` in ``macros/forms.html`` for this field and attributes."""
    key = _key(field, attrs)
    if key is None:
        return _macro()(field, **attrs)
    cached = _cache().get(key)
    if cached is None:
        cached = _cache()[key] = _macro()(field, **attrs)
        _trim()
    return cached


def csrf_field() -> Markup:
    """What ``hidden_tag()`` prints for a form whose only hidden field is the CSRF token,
    without building the form: building one (its fields, their labels and choices) to print
    one hidden input cost a staff page more than the input itself, once per form shown.
    Tests compare it with ``hidden_tag()`` of every form it stands for."""
    config = current_app.config
    if not config.get("WTF_CSRF_ENABLED", True):
        return Markup("")  # as hidden_tag(): such a form has no CSRF field
    name = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    return Markup('<input id="{0}" name="{0}" type="hidden" value="{1}">').format(
        name, generate_csrf()
    )


F = TypeVar("F", bound=FlaskForm)


def shown_form(form_class: type[F], **kwargs: Any) -> F:
    """A form built only to be shown (its fields printed by ``field()``, its token by
    :func:`csrf_field`), without a CSRF field of its own: making that field (generating and
    signing a token) is most of what building a small form costs. A form that takes a
    submission is built as usual, and checks its token."""
    return form_class(meta={"csrf": False}, **kwargs)


def _key(field: Any, attrs: Mapping[str, Any]) -> tuple[Any, ...] | None:
    widget = field.widget
    if isinstance(widget, _NEVER) or field.render_kw or getattr(field, "_datalist", None):
        return None
    if isinstance(widget, FastSelect):
        if widget.multiple:
            return None
        # Groups come as a dict, or as SelectChoice objects with an optgroup: both refused
        # below (has_groups() would turn every choice into a SelectChoice first).
        choices = field.choices or ()
        if not isinstance(choices, list | tuple):
            return None
        pairs = []
        for choice in choices:
            if type(choice) is tuple and len(choice) == 2:
                pairs.append((choice[0], str(choice[1])))
            elif type(choice) is SelectChoice and not choice.render_kw and choice.optgroup is None:
                # What such a choice shows is its value and label, as a pair's.
                label = choice.label
                pairs.append((choice.value, None if label is None else str(label)))
            else:
                return None  # option attributes, groups: not plain pairs
        shown: Any = (tuple(pairs), field.data, field.coerce)
    elif type(widget) in _INPUTS:
        shown = (field._value(), bool(getattr(field, "checked", field.data)))
    else:
        return None
    key = (
        _locale_name(),
        type(widget),
        field.name,
        field.id,
        str(field.label.text),
        field.label.field_id,
        str(field.description or ""),
        tuple(map(str, field.errors)),
        tuple(sorted(vars(field.flags).items())),
        tuple(sorted(attrs.items())),
        shown,
    )
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _cache() -> dict[tuple[Any, ...], Markup]:
    return current_app.extensions.setdefault("inclusive.field_html", {})


def _trim() -> None:
    cache = _cache()
    if len(cache) > CACHE_SIZE:  # drop the oldest half (dicts keep insertion order)
        for key in list(cache)[: len(cache) // 2]:
            cache.pop(key, None)


def _macro() -> Callable[..., Markup]:
    """The macro that prints a field, from the template of the request's language."""
    env = current_app.jinja_env
    return env.get_template("macros/forms.html").module.field_markup  # type: ignore[attr-defined]
