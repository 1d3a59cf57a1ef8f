"""The reproduction rule 'reproduction-v1': deficit, simple or amplified, at its thresholds."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from inclusive.impact import services as impact
from inclusive.impact.models import EconomicSnapshot
from inclusive.tenancy.scope import tenant_scope
from tests.programs.support import done, new_producer, today

ROOT = Path(__file__).resolve().parents[2]
AT = date(2025, 6, 1)


def _month(back: int, at: date = AT) -> date:
    """The first day of the month ``back`` months before ``at``."""
    index = at.year * 12 + at.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def _row(month: date, sales: int, costs: int, withdrawals: int = 0, reinvestment: int = 0):
    return EconomicSnapshot(
        month=month,
        sales=sales,
        costs=costs,
        household_withdrawals=withdrawals,
        reinvestment=reinvestment,
        assets=0,
        debt=0,
        employees=0,
    )


def _window(
    surplus: int, reinvestment: int = 0, months: int = 3, sales: int = 100_000, costs: int = 60_000
) -> list[EconomicSnapshot]:
    """``months`` months ending at AT whose sums give sales, costs and a given surplus."""
    withdrawals = sales - costs - surplus
    rows = [_row(_month(i), 0, 0) for i in range(months)]
    rows[0] = _row(_month(0), sales, costs, withdrawals, reinvestment)
    return rows


def _status(rows, at: date = AT) -> str:
    return impact.reproduction_status(rows, at).status


class TestUnknown:
    @pytest.mark.parametrize("months", [0, 1, 2])
    def test_fewer_than_three_months_is_unknown(self, months):
        rows = [_row(_month(i), 100_000, 10_000, 0, 50_000) for i in range(months)]
        assert _status(rows) == "unknown"

    def test_three_months_are_enough(self):
        rows = [_row(_month(i), 100_000, 10_000, 0, 50_000) for i in range(3)]
        assert _status(rows) == "amplified"

    def test_months_older_than_six_do_not_count_toward_the_three(self):
        rows = [_row(_month(i), 100_000, 10_000) for i in (0, 1, 6)]
        result = impact.reproduction_status(rows, AT)
        assert (result.status, result.months) == ("unknown", 2)


class TestThresholds:
    # sales 100,000 hundredths: 2% is a surplus of 2,000; costs 60,000: 5% is 3,000.
    @pytest.mark.parametrize(
        ("surplus", "status"),
        [(-2_001, "deficit"), (-2_000, "simple"), (-1_999, "simple"), (0, "simple")],
    )
    def test_deficit_below_minus_two_percent_of_sales(self, surplus, status):
        assert _status(_window(surplus, reinvestment=50_000)) == status

    @pytest.mark.parametrize(
        ("surplus", "status"),
        [(1_999, "simple"), (2_000, "simple"), (2_001, "amplified"), (30_000, "amplified")],
    )
    def test_amplified_above_plus_two_percent_when_reinvested(self, surplus, status):
        assert _status(_window(surplus, reinvestment=3_000)) == status

    @pytest.mark.parametrize(
        ("reinvestment", "status"),
        [(0, "simple"), (2_999, "simple"), (3_000, "amplified"), (3_001, "amplified")],
    )
    def test_reinvestment_of_at_least_five_percent_of_costs(self, reinvestment, status):
        assert _status(_window(20_000, reinvestment=reinvestment)) == status

    def test_no_sales_and_a_loss_is_deficit(self):
        assert _status(_window(-1, sales=0, costs=0)) == "deficit"

    def test_no_sales_no_costs_is_simple(self):
        assert _status(_window(0, sales=0, costs=0)) == "simple"

    def test_the_surplus_is_sales_minus_costs_minus_withdrawals_over_the_window(self):
        rows = [
            _row(_month(0), 50_000, 20_000, 10_000, 1_000),
            _row(_month(1), 40_000, 30_000, 5_000, 2_000),
            _row(_month(2), 10_000, 10_000, 0, 0),
        ]
        result = impact.reproduction_status(rows, AT)
        assert (result.sales, result.costs, result.household_withdrawals) == (
            100_000,
            60_000,
            15_000,
        )
        assert (result.surplus, result.reinvestment, result.months) == (25_000, 3_000, 3)
        assert (result.status, result.rule, result.month) == ("amplified", "reproduction-v1", AT)

    def test_the_constants_are_the_documented_ones(self):
        assert impact.RULE_VERSION == "reproduction-v1"
        assert (impact.WINDOW_MONTHS, impact.MIN_MONTHS) == (6, 3)
        assert Decimal("0.02") == impact.TOLERANCE
        assert Decimal("0.05") == impact.REINVESTMENT_SHARE
        doc = impact.reproduction_status.__doc__
        for words in (
            "reproduction-v1",
            "Fewer than 3 months",
            "-2% of sales",
            "+2% of sales",
            "5% of costs",
        ):
            assert words in doc

    def test_the_document_the_rule_points_to_describes_this_version(self):
        assert "docs/reproduction.md" in impact.reproduction_status.__doc__
        text = (ROOT / "docs" / "reproduction.md").read_text(encoding="utf-8")
        assert impact.RULE_VERSION in text


class TestWindow:
    def test_months_outside_the_six_month_window_are_ignored(self):
        good = [_row(_month(i), 100_000, 60_000, 20_000, 5_000) for i in range(3)]
        ruinous = _row(_month(6), 0, 10_000_000)  # seven months back
        assert _status([ruinous, *good]) == "amplified"
        at_edge = _row(_month(5), 0, 10_000_000)  # six months back: inside
        assert _status([at_edge, *good]) == "deficit"

    def test_months_after_the_date_are_ignored(self):
        rows = [_row(_month(i), 100_000, 60_000, 20_000, 5_000) for i in range(3)]
        later = _row(date(2025, 7, 1), 0, 10_000_000)
        assert _status([*rows, later]) == "amplified"

    def test_any_day_of_the_month_means_that_month(self):
        rows = [_row(_month(i), 100_000, 60_000, 20_000, 5_000) for i in range(3)]
        assert impact.reproduction_status(rows, date(2025, 6, 30)).month == AT

    def test_the_window_crosses_new_year(self):
        at = date(2025, 2, 1)
        rows = [_row(_month(i, at), 100_000, 120_000) for i in range(4)]  # Nov..Feb
        assert [r.month.month for r in rows] == [2, 1, 12, 11]
        assert _status(rows, at) == "deficit"


class TestHistory:
    def test_a_status_per_month_with_figures_oldest_first(self):
        months = [_month(i) for i in range(5, -1, -1)]  # Jan..Jun 2025
        rows = [_row(m, 100_000, 60_000, 20_000, 5_000) for m in months[:4]]
        rows += [_row(m, 10_000, 60_000) for m in months[4:]]
        history = impact.reproduction_history(rows)
        assert [h.month for h in history] == months
        assert [h.status for h in history] == [
            "unknown",
            "unknown",
            "amplified",
            "amplified",
            "amplified",
            "deficit",
        ]

    def test_history_of_stored_snapshots(self, org):
        producer = new_producer(org.id)
        figures = {
            "sales": "1000",
            "costs": "600",
            "household_withdrawals": "200",
            "reinvestment": "50",
            "assets": "0",
            "debt": "0",
            "employees": "1",
        }
        with tenant_scope(org.id):
            for month in (date(2025, 3, 1), date(2025, 1, 1), date(2025, 2, 1)):
                impact.save_snapshot(producer.id, month, figures, None)
            rows = impact.snapshots(producer.id)
            history = impact.reproduction_history(rows)
            done()
        assert [h.month for h in history] == [date(2025, m, 1) for m in (1, 2, 3)]
        assert [h.status for h in history] == ["unknown", "unknown", "amplified"]

    def test_the_producer_page_shows_the_status_and_the_rule(self, client, login_as, org):
        login_as("viewer")
        producer = new_producer(org.id)
        figures = {
            "sales": "1000",
            "costs": "1500",
            "household_withdrawals": "200",
            "reinvestment": "0",
            "assets": "0",
            "debt": "0",
            "employees": "1",
        }
        with tenant_scope(org.id):
            for back in range(3):
                impact.save_snapshot(producer.id, _month(back, today()), figures, None)
            done()
        page = client.get(f"/o/acme/producers/{producer.id}").text
        assert "Deficit reproduction" in page
        assert "reproduction-v1" in page
        assert page.count('class="badge repro-deficit"') >= 2  # header and the latest row

    def test_the_current_status_uses_the_last_six_months(self, client, login_as, org):
        login_as("viewer")
        producer = new_producer(org.id)
        figures = {
            "sales": "1000",
            "costs": "100",
            "household_withdrawals": "0",
            "reinvestment": "100",
            "assets": "0",
            "debt": "0",
            "employees": "1",
        }
        with tenant_scope(org.id):
            for back in range(24, 27):
                impact.save_snapshot(producer.id, _month(back, today()), figures, None)
            done()
        page = client.get(f"/o/acme/producers/{producer.id}").text
        header = page.split('class="lead"', 1)[1].split("</p>", 1)[0]
        assert "Unknown" in header
