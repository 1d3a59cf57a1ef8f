"""The producer page's figures table: rows built by the view, each value escaped once,
printed byte for byte as the template's loop printed them (kept here as the reference)."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import pytest
from flask import render_template_string
from flask_babel import force_locale

from inclusive.impact import services as impact
from inclusive.producers.views import _figure_rows

FORMER_LOOP = """{% for s in snapshots|reverse %}
        {% set h = history[snapshots|length - loop.index] %}
        <tr><td>{{ s.month.strftime('%Y-%m') }}</td><td class="num">{{ money(s.sales) }}</td><td class="num">{{ money(s.costs) }}</td><td class="num">{{ money(s.household_withdrawals) }}</td><td class="num">{{ money(s.reinvestment) }}</td><td class="num">{{ money(s.assets) }}</td><td class="num">{{ money(s.debt) }}</td><td class="num">{{ s.employees }}</td><td><span class="badge repro-{{ h.status }}">{{ reproduction_label(h.status) }}</span></td><td><small>{{ s.entered_by.name if s.entered_by else '' }}</small></td></tr>
      {% endfor %}"""  # noqa: E501 (the template's line, as it was)


class _Named(NamedTuple):
    name: str


class _Month(NamedTuple):
    month: date
    sales: int
    costs: int
    household_withdrawals: int
    reinvestment: int
    assets: int | None
    debt: int | None
    employees: int
    entered_by: _Named | None


def _months(n: int) -> list[_Month]:
    return [
        _Month(
            date(2025 + i // 12, i % 12 + 1, 1),
            1_234_567 + 10_000 * i,
            900_000 - 5_000 * i,
            50_000 + 999 * i,
            i * 12_345,
            None if i % 3 == 0 else 5_000_000,
            0 if i % 2 else None,
            i,
            None if i % 4 == 0 else _Named('<b>"Rosa" & co\'s</b>'),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("locale", ["en", "es", "pt"])
@pytest.mark.parametrize("count", [0, 1, 2, 7])
def test_the_rows_are_printed_as_the_former_loop(app, locale, count):
    snapshots = _months(count)
    history = impact.reproduction_history(snapshots)
    with app.test_request_context("/"), force_locale(locale):
        former = render_template_string(FORMER_LOOP, snapshots=snapshots, history=history)
        assert str(_figure_rows(snapshots, history)) == former
        assert "<b>" not in former
        assert former.count("<tr>") == count
