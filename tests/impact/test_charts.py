"""The producer page's charts: SVG built on the server, each value escaped once, printed
byte for byte as the template macros that drew them before (kept here as the reference)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import NamedTuple

import pytest
from flask_babel import force_locale

from inclusive.impact.models import VIABILITY_FACTORS
from inclusive.presentation import (
    chart_geometry,
    figure_series,
    line_chart,
    score_chart,
    score_geometry,
)

#: The macros of templates/macros/charts.html as they were when the charts moved to Python.
FORMER_MACROS = (Path(__file__).parent / "former_charts.html").read_text()


class _Month(NamedTuple):
    month: date
    sales: int
    costs: int
    household_withdrawals: int


class _Assessment(NamedTuple):
    assessed_on: date
    knowledge: int
    commercial_information: int
    contacts: int
    business_engineering: int
    network_articulation: int
    sustainable_practices: int


def _months(n: int, base: int = 120_000, dip: int = 0) -> list[_Month]:
    return [
        _Month(date(2025 + (i // 12), i % 12 + 1, 1), base + 7_919 * i, 90_000 + 3_331 * i, dip * i)
        for i in range(n)
    ]


def _former(app, name: str, *args):
    module = app.jinja_env.from_string(FORMER_MACROS).make_module(
        {"chart_geometry": chart_geometry, "score_geometry": score_geometry}
    )
    return str(getattr(module, name)(*args))


@pytest.mark.parametrize("locale", ["en", "es", "pt"])
@pytest.mark.parametrize(
    "rows",
    [[], _months(1), _months(3), _months(8), _months(13, base=5, dip=40_000), _months(24)],
    ids=["none", "one", "three", "eight", "negative", "two-years"],
)
def test_the_line_chart_is_printed_as_the_macro_printed_it(app, locale, rows):
    with app.test_request_context("/"), force_locale(locale):
        for title in ("Monthly sales, costs and surplus", '<b>"Sales" & co\'s</b>'):
            series = figure_series(rows)
            printed = str(line_chart(series, title))
            assert printed == _former(app, "line_chart", series, title)
        assert "<b>" not in printed and "&lt;b&gt;" in printed


@pytest.mark.parametrize("locale", ["en", "es", "pt"])
@pytest.mark.parametrize("count", [0, 1, 4, 6])
def test_the_score_chart_is_printed_as_the_macro_printed_it(app, locale, count):
    assessments = [
        _Assessment(date(2025, 1 + i, 15), *((i + j) % 5 for j in range(len(VIABILITY_FACTORS))))
        for i in range(count)
    ]
    with app.test_request_context("/"), force_locale(locale):
        printed = str(score_chart(assessments))
        assert printed == _former(app, "score_chart", assessments)
        assert printed.count("<rect") == min(count, 4) * len(VIABILITY_FACTORS)
