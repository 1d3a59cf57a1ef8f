"""Monthly economic figures: validation, amounts as people type them, corrections."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest

from inclusive.impact import services as impact
from inclusive.impact.models import EconomicSnapshot
from inclusive.tenancy.scope import tenant_scope
from tests.programs.support import (
    assign,
    count,
    detach,
    done,
    enroll,
    events,
    new_producer,
    new_program,
    today,
)

GOOD = {
    "sales": "1500",
    "costs": "900",
    "household_withdrawals": "300",
    "reinvestment": "100",
    "assets": "5000",
    "debt": "0",
    "employees": "2",
}


def _this_month() -> str:
    return today().strftime("%Y-%m")


def _save(org_id: int, producer_id: int, month: date, actor_id=None, **figures):
    with tenant_scope(org_id):
        try:
            return impact.save_snapshot(producer_id, month, {**GOOD, **figures}, actor_id)
        finally:
            done()


def _snapshots(org_id: int, producer_id: int) -> list[EconomicSnapshot]:
    detach()
    with tenant_scope(org_id):
        return impact.snapshots(producer_id)


class TestAmounts:
    @pytest.mark.parametrize(
        ("typed", "hundredths"),
        [
            ("1.234,50", 123450),
            ("1,234.50", 123450),
            ("1234.5", 123450),
            ("1234,50", 123450),
            (" 1 234,50 ", 123450),
            ("1,234", 123400),
            ("0,05", 5),
            ("12", 1200),
            ("0.005", 1),  # half a cent rounds up
        ],
    )
    def test_amounts_typed_in_any_convention(self, typed, hundredths):
        assert impact.to_hundredths(typed) == hundredths

    def test_a_dot_before_three_digits_is_a_thousands_separator(self):
        assert impact.to_hundredths("1.234") == impact.to_hundredths("1,234") == 123400

    @pytest.mark.parametrize("typed", ["", "abc", "12a", "1.2.3,4,5", "NaN", "Infinity", "--5"])
    def test_garbage_is_not_a_number(self, typed):
        with pytest.raises(ValueError):
            impact.to_hundredths(typed)

    def test_an_absurd_exponent_is_not_a_number(self):
        with pytest.raises(ValueError):
            impact.to_hundredths("1e999999999")


class TestSaveSnapshot:
    def test_the_figures_and_who_entered_them_are_kept(self, org, make_member):
        officer = make_member("field_officer")
        producer = new_producer(org.id)
        _save(org.id, producer.id, date(2025, 3, 17), officer.id, sales="1.234,50")
        [row] = _snapshots(org.id, producer.id)
        assert row.month == date(2025, 3, 1)  # the first day of the month
        assert (row.sales, row.costs, row.employees) == (123450, 90000, 2)
        assert row.entered_by_id == officer.id and row.entered_at is not None

    def test_the_audit_event_names_the_entering_user(self, org, make_member):
        officer = make_member("field_officer")
        producer = new_producer(org.id)
        _save(org.id, producer.id, date(2025, 3, 1), officer.id)
        [event] = events(org.id, "snapshot.recorded")
        assert event.actor_id == officer.id

    def test_a_month_recorded_twice_is_corrected_not_duplicated(self, org):
        producer = new_producer(org.id)
        _save(org.id, producer.id, date(2025, 3, 1), sales="1000")
        _save(org.id, producer.id, date(2025, 3, 28), sales="1100")
        [row] = _snapshots(org.id, producer.id)
        assert row.sales == 110000
        assert len(events(org.id, "snapshot.recorded")) == 1
        [corrected] = events(org.id, "snapshot.corrected")
        assert corrected.details["month"] == "2025-03-01"
        assert corrected.details["sales"] == 1100

    @pytest.mark.parametrize("field", impact.MONEY_FIELDS)
    def test_negative_amounts_are_refused_per_field(self, org, field):
        producer = new_producer(org.id)
        with pytest.raises(impact.FiguresError) as refused:
            _save(org.id, producer.id, date(2025, 3, 1), **{field: "-1"})
        assert refused.value.errors == {field: "Amounts cannot be negative."}
        assert count(org.id, EconomicSnapshot) == 0

    @pytest.mark.parametrize("field", impact.MONEY_FIELDS)
    def test_garbage_amounts_are_refused_per_field(self, org, field):
        producer = new_producer(org.id)
        with pytest.raises(impact.FiguresError) as refused:
            _save(org.id, producer.id, date(2025, 3, 1), **{field: "twelve"})
        assert refused.value.errors == {field: "Enter an amount, such as 1250.50."}
        assert count(org.id, EconomicSnapshot) == 0

    def test_implausible_amounts_are_refused(self, org):
        producer = new_producer(org.id)
        with pytest.raises(impact.FiguresError) as refused:
            _save(org.id, producer.id, date(2025, 3, 1), assets="100000000001")
        assert "not plausible" in refused.value.errors["assets"]

    def test_sales_fifty_times_the_costs_are_questioned(self, org):
        producer = new_producer(org.id)
        with pytest.raises(impact.FiguresError) as refused:
            _save(org.id, producer.id, date(2025, 3, 1), sales="5001", costs="100")
        assert "50 times" in refused.value.errors["sales"]
        _save(org.id, producer.id, date(2025, 3, 1), sales="5000", costs="100")
        assert count(org.id, EconomicSnapshot) == 1

    @pytest.mark.parametrize("employees", ["-1", "251", "2.5", "many"])
    def test_employees_are_a_whole_number_up_to_250(self, org, employees):
        producer = new_producer(org.id)
        with pytest.raises(impact.FiguresError) as refused:
            _save(org.id, producer.id, date(2025, 3, 1), employees=employees)
        assert refused.value.errors == {"employees": "A whole number from 0 to 250."}

    def test_future_months_are_refused_and_this_month_is_fine(self, org):
        producer = new_producer(org.id)
        first = today().replace(day=1)
        next_month = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        with pytest.raises(impact.FiguresError) as refused:
            _save(org.id, producer.id, next_month)
        assert refused.value.errors == {
            "month": "Figures are recorded for past or current months only."
        }
        _save(org.id, producer.id, today())
        assert count(org.id, EconomicSnapshot) == 1

    def test_every_bad_field_is_reported_at_once(self, org):
        producer = new_producer(org.id)
        with pytest.raises(impact.FiguresError) as refused:
            _save(org.id, producer.id, date(2025, 3, 1), sales="-5", costs="x", employees="-2")
        assert set(refused.value.errors) == {"sales", "costs", "employees"}


class TestFiguresForm:
    def _post(self, client, producer_id: int, **fields):
        data = {"month": "2025-03", **GOOD, **fields}
        return client.post(f"/o/acme/producers/{producer_id}/snapshots", data=data)

    def test_a_month_is_saved_from_the_producer_page(self, client, login_as, org):
        user = login_as("program_manager")
        producer = new_producer(org.id)
        response = self._post(client, producer.id, sales="1.234,50")
        assert response.status_code == 302
        assert response.headers["Location"].endswith("#figures")
        [row] = _snapshots(org.id, producer.id)
        assert (row.sales, row.entered_by_id) == (123450, user.id)

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"costs": "-900"}, "Amounts cannot be negative."),
            ({"debt": "lots"}, "Enter an amount, such as 1250.50."),
            ({"sales": ""}, "This field is required."),
            ({"month": "2025-13"}, "Not a valid date value."),
            ({"month": "March"}, "Not a valid date value."),
            ({"employees": "-3"}, "Number must be between 0 and 250."),
        ],
    )
    def test_bad_figures_are_explained_next_to_the_field_and_kept(
        self, client, login_as, org, fields, message
    ):
        login_as("admin")
        producer = new_producer(org.id)
        response = self._post(client, producer.id, **fields)
        assert response.status_code == 400
        page = html.unescape(response.text)
        assert message in page
        field, typed = next(iter(fields.items()))
        assert re.search(
            rf'name="{field}"[^>]*aria-invalid="true"|aria-invalid="true"'
            rf'[^>]*name="{field}"',
            page,
        )
        if typed:
            assert f'value="{typed}"' in page  # what was typed is still there
        assert count(org.id, EconomicSnapshot) == 0

    def test_a_future_month_is_refused(self, client, login_as, org):
        login_as("admin")
        producer = new_producer(org.id)
        response = self._post(client, producer.id, month=f"{today().year + 1}-01")
        assert response.status_code == 400
        assert "Figures are recorded for past or current months only." in response.text
        assert count(org.id, EconomicSnapshot) == 0

    def test_an_absurd_exponent_is_a_field_error(self, client, login_as, org):
        login_as("admin")
        producer = new_producer(org.id)
        response = self._post(client, producer.id, sales="1e999999999")
        assert response.status_code == 400
        assert count(org.id, EconomicSnapshot) == 0

    def test_an_assigned_field_officer_records_figures(self, client, login_as, org):
        officer = login_as("field_officer")
        program = new_program(org)
        producer = new_producer(org.id)
        enroll(program, [producer])
        assign(program, officer)
        assert self._post(client, producer.id).status_code == 302
        assert _snapshots(org.id, producer.id)[0].entered_by_id == officer.id

    @pytest.mark.parametrize("role", ["field_officer", "viewer"])
    def test_others_get_403(self, client, login_as, org, role):
        login_as(role)
        producer = new_producer(org.id)
        enroll(new_program(org), [producer])
        assert self._post(client, producer.id).status_code == 403
        assert count(org.id, EconomicSnapshot) == 0

    def test_the_form_is_made_for_a_phone(self, client, login_as, org):
        login_as("admin")
        producer = new_producer(org.id)
        page = client.get(f"/o/acme/producers/{producer.id}").text
        assert f"/o/acme/producers/{producer.id}/snapshots" in page  # the page links to the form
        page = client.get(f"/o/acme/producers/{producer.id}/snapshots").text
        form = page.split('action="/o/acme/producers/', 1)[1].split("</form>", 1)[0]
        assert re.search(r'<input[^>]*type="month"', form)
        for name in impact.MONEY_FIELDS:
            assert re.search(rf'<input[^>]*inputmode="decimal"[^>]*name="{name}"', form), name
        assert re.search(r'<input[^>]*inputmode="numeric"[^>]*name="employees"', form)

    def test_the_page_shows_the_month_with_who_entered_it(self, client, login_as, org):
        login_as("admin", name="Ada Admin")
        producer = new_producer(org.id)
        self._post(client, producer.id, month=_this_month())
        page = client.get(f"/o/acme/producers/{producer.id}").text
        figures = page.split('id="figures"', 1)[1].split('id="diagnostic"', 1)[0]
        assert _this_month() in figures and "1,500.00" in figures and "Ada Admin" in figures
        assert "No figures yet." not in figures
