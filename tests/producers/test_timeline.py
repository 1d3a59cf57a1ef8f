"""The producer page's timeline: items built by the view, each value escaped once, printed
byte for byte as the template's loop printed them (kept here as the reference)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import render_template_string
from flask_babel import force_locale, format_datetime

from inclusive.presentation import datetime_formatter, describe_event
from inclusive.producers import page
from inclusive.producers.views import _timeline_items

FORMER_LOOP = """{% for ev in events %}
      <li><time datetime="{{ ev.at.isoformat() }}">{{ ev.at|datetimeformat('short') }}</time>
        <span>{{ describe_event(ev) }}</span>
        <small>{{ ev.actor.name if ev.actor else _('the platform') }}</small></li>
    {% endfor %}"""

MARKUP = '<b>"x" & y\'s</b>'


def _events() -> list[page.TimelineEvent]:
    at = datetime(2026, 3, 7, 15, 4, 5)
    actor = page._Named(f"Rosa {MARKUP}")
    return [
        page.TimelineEvent(at, "producer.registered", {}, actor),
        page.TimelineEvent(
            at - timedelta(days=40, minutes=7),
            "enrollment.created",
            {"program": f"Café {MARKUP}", "state": "enrolled"},
            None,
        ),
        page.TimelineEvent(
            at - timedelta(days=400),
            "milestone.recorded",
            {"milestone": MARKUP, "old": "planned", "new": "achieved", "note": MARKUP},
            actor,
        ),
        page.TimelineEvent(at.replace(tzinfo=UTC), "odd.action", {}, None),
    ]


@pytest.mark.parametrize("locale", ["en", "es", "pt"])
def test_the_items_are_printed_as_the_former_loop(app, locale):
    events = _events()
    with app.test_request_context("/"), force_locale(locale):
        former = render_template_string(FORMER_LOOP, events=events, describe_event=describe_event)
        assert str(_timeline_items(events)) == former
        assert MARKUP not in former and "&lt;b&gt;" in former
        assert str(_timeline_items([])) == ""


@pytest.mark.parametrize("locale", ["en", "es", "pt"])
@pytest.mark.parametrize("zone", ["UTC", "America/Lima", "Asia/Kolkata"])
def test_the_formatter_prints_as_the_datetimeformat_filter(app, monkeypatch, locale, zone):
    monkeypatch.setattr(app.extensions["babel"], "default_timezone", zone)
    values = [datetime(2026, 1, 1, 0, 30), datetime(2025, 12, 31, 23, 59, tzinfo=UTC)]
    with app.test_request_context("/"), force_locale(locale):
        formatted = datetime_formatter("short")
        for value in values:
            assert formatted(value) == format_datetime(value, "short")
        assert datetime_formatter("medium")(values[0]) == format_datetime(values[0], "medium")
        if zone == "America/Lima" and locale == "en":
            assert formatted(values[0]) == "12/31/25, 7:30\u202fPM"  # rebased to the zone
