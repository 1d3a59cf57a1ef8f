"""The offtake ledger: purchases by a supplier program's or rural network's counterpart."""

from __future__ import annotations

import html
from datetime import date, timedelta

import pytest

from inclusive.impact import services as impact
from inclusive.impact.models import OfftakePurchase
from inclusive.milestones import services as plans
from inclusive.milestones.models import EnrollmentState
from inclusive.programs.models import Program
from inclusive.tenancy.scope import tenant_scope
from tests.programs.support import (
    assign,
    count,
    detach,
    done,
    enroll,
    events,
    fresh,
    new_producer,
    new_program,
    today,
)

PURCHASE = {
    "purchased_on": date(2025, 3, 10),
    "product": "Quinoa",
    "quantity": "12,5",
    "unit": "kg",
    "unit_price": "3.40",
    "on_time": True,
    "quality_accepted": True,
}


@pytest.fixture
def supplier(org):
    """A producer enrolled in a supplier program (whose lead corporation buys from them)."""
    program = new_program(org, "supplier_program")
    producer = new_producer(org.id)
    enroll(program, [producer])
    return program, producer


def _record(org_id, producer_id, program_id, actor_id=None, **fields):
    with tenant_scope(org_id):
        program = fresh(org_id, Program, program_id)
        try:
            return impact.record_purchase(producer_id, program, {**PURCHASE, **fields}, actor_id)
        finally:
            done()


def _ledger(org_id, producer_id):
    with tenant_scope(org_id):
        rows, totals = impact.offtake(producer_id)
        detach()
    return rows, totals


class TestRecordPurchase:
    def test_the_amount_is_quantity_times_unit_price(self, org, supplier, make_member):
        officer = make_member("field_officer")
        program, producer = supplier
        _record(org.id, producer.id, program.id, officer.id)
        [row], _ = _ledger(org.id, producer.id)
        assert (row.quantity, row.unit_price, row.amount) == (12.5, 340, 4250)
        assert (row.product, row.unit, row.recorded_by_id) == ("Quinoa", "kg", officer.id)
        [event] = events(org.id, "offtake.recorded", producer_id=producer.id)
        assert event.details["amount"] == 42.5

    @pytest.mark.parametrize(
        ("quantity", "price", "amount"),
        [("1", "0", 0), ("0.333", "3", 100), ("1000", "1.234,56", 123456000), ("2.5", "0,99", 248)],
    )
    def test_amounts_round_to_the_hundredth(self, org, supplier, quantity, price, amount):
        program, producer = supplier
        row = _record(org.id, producer.id, program.id, quantity=quantity, unit_price=price)
        assert row.amount == amount

    def test_a_rural_network_keeps_a_ledger_too(self, org):
        program = new_program(org, "rural_network", name="Cacao")
        producer = new_producer(org.id)
        enroll(program, [producer])
        _record(org.id, producer.id, program.id)
        assert count(org.id, OfftakePurchase) == 1

    @pytest.mark.parametrize(
        "kind", ["franchise_system", "service_center", "export_consortium", "technology_linkage"]
    )
    def test_other_kinds_of_program_keep_none(self, org, kind):
        program = new_program(org, kind, name="No ledger")
        producer = new_producer(org.id)
        enroll(program, [producer])
        with pytest.raises(impact.FiguresError) as refused:
            _record(org.id, producer.id, program.id)
        assert refused.value.errors == {
            "program_id": "Only supplier programs and rural networks keep a ledger."
        }
        assert count(org.id, OfftakePurchase) == 0

    def test_an_applicant_is_not_enrolled_yet(self, org, supplier):
        program, _producer = supplier
        applicant = new_producer(org.id, name="Applicant")
        with tenant_scope(org.id):
            plans.enroll(
                fresh(org.id, Program, program.id), [applicant.id], state=EnrollmentState.APPLIED
            )
            done()
        with pytest.raises(impact.FiguresError):
            _record(org.id, applicant.id, program.id)

    def test_only_for_producers_enrolled_in_the_program(self, org, supplier):
        program, _producer = supplier
        outsider = new_producer(org.id, name="Outsider")
        with pytest.raises(impact.FiguresError) as refused:
            _record(org.id, outsider.id, program.id)
        assert refused.value.errors == {
            "program_id": "The producer is not enrolled in this program."
        }

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"purchased_on": None}, "purchased_on", "Enter a date."),
            (
                {"purchased_on": today() + timedelta(days=1)},
                "purchased_on",
                "The date cannot be in the future.",
            ),
            ({"product": "  "}, "product", "Name the product."),
            ({"quantity": "0"}, "quantity", "A quantity above zero."),
            ({"quantity": "-3"}, "quantity", "A quantity above zero."),
            ({"quantity": "nan"}, "quantity", "A quantity above zero."),
            ({"quantity": "inf"}, "quantity", "A quantity above zero."),
            ({"quantity": "lots"}, "quantity", "A quantity above zero."),
            ({"unit_price": "-1"}, "unit_price", "Amounts cannot be negative."),
            ({"unit_price": "cheap"}, "unit_price", "Enter an amount, such as 1250.50."),
        ],
    )
    def test_bad_purchases_are_refused_per_field(self, org, supplier, fields, field, message):
        program, producer = supplier
        with pytest.raises(impact.FiguresError) as refused:
            _record(org.id, producer.id, program.id, **fields)
        assert refused.value.errors == {field: message}
        assert count(org.id, OfftakePurchase) == 0


class TestTotals:
    def test_count_amount_and_shares(self, org, supplier):
        program, producer = supplier
        _record(org.id, producer.id, program.id, quantity="10", unit_price="10")
        _record(org.id, producer.id, program.id, quantity="5", unit_price="2", on_time=False)
        _record(
            org.id,
            producer.id,
            program.id,
            quantity="1",
            unit_price="0.5",
            quality_accepted=False,
            on_time=False,
        )
        rows, totals = _ledger(org.id, producer.id)
        assert len(rows) == 3
        assert (totals.purchases, totals.amount) == (3, 10000 + 1000 + 50)
        assert totals.on_time_share == pytest.approx(1 / 3)
        assert totals.quality_share == pytest.approx(2 / 3)

    def test_no_purchases_no_division_by_zero(self, org, supplier):
        _program, producer = supplier
        rows, totals = _ledger(org.id, producer.id)
        assert rows == [] and totals == impact.OfftakeTotals(0, 0, 0.0, 0.0)

    def test_latest_purchases_first(self, org, supplier):
        program, producer = supplier
        for day in (5, 20, 1):
            _record(org.id, producer.id, program.id, purchased_on=date(2025, 3, day))
        rows, _ = _ledger(org.id, producer.id)
        assert [r.purchased_on.day for r in rows] == [20, 5, 1]


class TestLedgerForm:
    def _post(self, client, producer_id, program_id, **fields):
        data = {
            "program_id": program_id,
            "purchased_on": "2025-03-10",
            "product": "Quinoa",
            "quantity": "12,5",
            "unit": "kg",
            "unit_price": "3.40",
            "on_time": "y",
            "quality_accepted": "y",
            **fields,
        }
        return client.post(f"/o/acme/producers/{producer_id}/offtake", data=data)

    def test_a_purchase_is_recorded_and_the_totals_shown(self, client, login_as, org, supplier):
        user = login_as("program_manager")
        program, producer = supplier
        response = self._post(client, producer.id, program.id)
        assert response.status_code == 302 and response.headers["Location"].endswith("#offtake")
        self._post(
            client,
            producer.id,
            program.id,
            quantity="10",
            unit_price="1",
            on_time="",
            quality_accepted="",
        )
        rows, _ = _ledger(org.id, producer.id)
        assert {r.recorded_by_id for r in rows} == {user.id}
        page = html.unescape(client.get(f"/o/acme/producers/{producer.id}").text)
        assert "2 purchases, 52.50 in all; 50% on time, 50% quality accepted." in page

    def test_an_assigned_field_officer_records_purchases(self, client, login_as, org, supplier):
        program, producer = supplier
        assign(program, login_as("field_officer"))
        assert self._post(client, producer.id, program.id).status_code == 302
        assert count(org.id, OfftakePurchase) == 1

    @pytest.mark.parametrize("role", ["field_officer", "viewer"])
    def test_others_get_403(self, client, login_as, org, supplier, role):
        login_as(role)
        program, producer = supplier
        assert self._post(client, producer.id, program.id).status_code == 403
        assert count(org.id, OfftakePurchase) == 0

    def test_another_organizations_program_id_is_refused_without_a_500(
        self, client, login_as, org, other_org, supplier
    ):
        login_as("admin")
        _program, producer = supplier
        foreign = new_program(other_org, "supplier_program")
        response = self._post(client, producer.id, foreign.id)
        assert response.status_code == 400
        assert "Not a valid choice." in response.text
        assert count(org.id, OfftakePurchase) == 0
        assert count(other_org.id, OfftakePurchase) == 0

    def test_a_program_without_a_ledger_is_not_offered(self, client, login_as, org, supplier):
        login_as("admin")
        _program, producer = supplier
        center = new_program(org, "service_center", name="Center")
        enroll(center, [producer])
        response = self._post(client, producer.id, center.id)
        assert response.status_code == 400
        assert count(org.id, OfftakePurchase) == 0
        options = response.text.split('name="program_id"', 1)[1].split("</select>", 1)[0]
        assert "Center" not in options and "Quinoa suppliers" in options

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"unit_price": "-2"}, "Amounts cannot be negative."),
            ({"quantity": "0"}, "A quantity above zero."),
            ({"purchased_on": "2025-02-30"}, "Not a valid date value."),
            ({"product": ""}, "This field is required."),
        ],
    )
    def test_bad_input_is_explained_and_kept(
        self, client, login_as, org, supplier, fields, message
    ):
        login_as("admin")
        program, producer = supplier
        response = self._post(client, producer.id, program.id, **fields)
        assert response.status_code == 400
        page = html.unescape(response.text)
        assert message in page
        _field, typed = next(iter(fields.items()))
        if typed:
            assert f'value="{typed}"' in page
        assert count(org.id, OfftakePurchase) == 0

    def test_an_implausible_price_is_a_field_error(self, client, login_as, org, supplier):
        login_as("admin")
        program, producer = supplier
        response = self._post(
            client, producer.id, program.id, quantity="1000", unit_price="9999999999999999"
        )
        assert response.status_code == 400
        assert count(org.id, OfftakePurchase) == 0

    def test_producers_outside_ledger_programs_have_no_ledger_section(self, client, login_as, org):
        login_as("admin")
        producer = new_producer(org.id)
        enroll(new_program(org, "service_center"), [producer])
        page = client.get(f"/o/acme/producers/{producer.id}").text
        assert 'id="offtake"' not in page
