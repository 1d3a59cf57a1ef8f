"""Registering and changing producers: messages per field, a national id per organization."""

from __future__ import annotations

import html

import pytest

from inclusive.producers import services as registry
from inclusive.producers.models import Producer
from inclusive.tenancy.scope import tenant_scope
from tests.programs.support import count, done, events, fresh, new_producer

VALID = {
    "kind": "family_business",
    "name": "  Rosa   Huamán ",
    "national_id": "ab 1234",
    "representative": "Rosa",
    "owner_gender": "female",
    "phone": "+51 987-654-321",
    "email": "Rosa@Example.PE",
    "region": " Cusco ",
    "municipality": "Urubamba",
    "sectors": "agriculture; crafts;agriculture",
    "employees": "3",
    "formally_registered": "sí",
    "notes": "Weaves alpaca wool",
}


def _clean(**changes):
    return registry.clean_producer({**VALID, **changes})


class TestCleanProducer:
    def test_valid_fields_are_normalised(self):
        clean, errors = _clean()
        assert errors == {}
        values = clean.values
        assert (values["name"], values["name_key"]) == ("Rosa Huamán", "rosa huaman")
        assert values["national_id"] == "AB1234"
        assert values["phone"] == "+51987654321"
        assert values["email"] == "rosa@example.pe"
        assert values["region"] == "Cusco"
        assert (values["employees"], values["formally_registered"]) == (3, True)
        assert clean.sectors == ["agriculture", "crafts"]

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            (
                "kind",
                "",
                "Choose one of: individual, family_business, micro_enterprise, "
                "cooperative, association.",
            ),
            ("kind", "corporation", "Choose one of:"),
            ("name", "   ", "A name is required."),
            ("name", "x" * 161, "At most 160 characters."),
            ("national_id", "9" * 41, "At most 40 characters."),
            ("owner_gender", "unknown", "Choose one of: female, male, mixed, other, undisclosed."),
            ("phone", "call me", "Use digits, spaces and an optional leading +."),
            ("phone", "12345", "Use digits, spaces and an optional leading +."),
            ("email", "rosa@", "This is not an e-mail address."),
            ("email", "rosa at example.pe", "This is not an e-mail address."),
            ("sectors", "agriculture;mining", "Unknown sector mining."),
            ("employees", "251", "A whole number from 0 to 250."),
            ("employees", "-1", "A whole number from 0 to 250."),
            ("employees", "three", "A whole number from 0 to 250."),
            ("formally_registered", "maybe", "Use yes or no."),
            ("notes", "n" * 4001, "At most 4000 characters."),
        ],
    )
    def test_each_field_says_what_is_wrong(self, field, value, message):
        clean, errors = _clean(**{field: value})
        assert clean is None
        assert list(errors) == [field]
        assert errors[field].startswith(message)

    def test_every_wrong_field_is_reported_at_once(self):
        errors = _clean(name="", phone="x", email="y", employees="z")[1]
        assert set(errors) == {"name", "phone", "email", "employees"}

    @pytest.mark.parametrize(
        ("raw", "kind"),
        [
            ("Cooperative", "cooperative"),
            ("micro-enterprise", "micro_enterprise"),
            ("Family business", "family_business"),
        ],
    )
    def test_kinds_by_value_or_label(self, raw, kind):
        clean, _errors = _clean(kind=raw)
        assert clean.values["kind"] == kind

    @pytest.mark.parametrize(
        ("raw", "value"),
        [("", False), ("no", False), ("não", False), ("yes", True), ("X", True), ("sim", True)],
    )
    def test_formal_registration_in_several_languages(self, raw, value):
        clean, _errors = _clean(formally_registered=raw)
        assert clean.values["formally_registered"] is value

    def test_optional_fields_may_be_left_empty(self):
        clean, errors = registry.clean_producer({"kind": "individual", "name": "Ana"})
        assert errors == {}
        assert clean.values["national_id"] is None
        assert clean.values["owner_gender"] == "undisclosed"
        assert (clean.values["employees"], clean.sectors) == (0, [])

    def test_sectors_may_come_as_a_list(self):
        clean, _errors = _clean(sectors=["textiles", "crafts", "textiles"])
        assert clean.sectors == ["textiles", "crafts"]


class TestNationalId:
    def test_unique_within_the_organization(self, org):
        new_producer(org.id, national_id="AB1234")
        with tenant_scope(org.id), pytest.raises(registry.ProducerError) as refused:
            registry.create_producer({**VALID, "name": "Someone else"})  # "ab 1234"
        assert refused.value.errors == {"national_id": "Another producer already has this id."}
        assert count(org.id, Producer) == 1

    def test_the_same_id_is_allowed_in_another_organization(self, org, other_org):
        new_producer(org.id, national_id="AB1234")
        new_producer(other_org.id, national_id="AB1234")
        assert count(org.id, Producer) == 1 and count(other_org.id, Producer) == 1

    def test_producers_without_an_id_do_not_collide(self, org):
        new_producer(org.id, name="One")
        new_producer(org.id, name="Two")
        assert count(org.id, Producer, national_id=None) == 2

    def test_an_update_may_not_take_another_producers_id(self, org):
        new_producer(org.id, name="First", national_id="AB1234")
        second = new_producer(org.id, name="Second", national_id="CD5678")
        with tenant_scope(org.id):
            producer = fresh(org.id, Producer, second.id)
            with pytest.raises(registry.ProducerError) as refused:
                registry.update_producer(producer, {**VALID, "national_id": "ab1234"})
        assert "already has this id" in refused.value.errors["national_id"]
        assert fresh(org.id, Producer, second.id).national_id == "CD5678"

    def test_an_update_keeps_its_own_id_and_audits_what_changed(self, org):
        producer = new_producer(org.id, **VALID)
        with tenant_scope(org.id):
            row = fresh(org.id, Producer, producer.id)
            registry.update_producer(row, {**VALID, "region": "Puno", "sectors": "crafts"})
            done()
        saved = fresh(org.id, Producer, producer.id)
        assert (saved.region, saved.national_id) == ("Puno", "AB1234")
        with tenant_scope(org.id):
            assert saved.sectors == ["crafts"]
        [event] = events(org.id, "producer.updated", producer_id=producer.id)
        assert event.details["changes"]["region"] == ["Cusco", "Puno"]
        assert event.details["changes"]["sectors"] == [["agriculture", "crafts"], ["crafts"]]
        assert set(event.details["changes"]) == {"region", "sectors"}


class TestProducerForms:
    FORM = {
        "kind": "individual",
        "name": "Rosa Huamán",
        "national_id": "AB1234",
        "owner_gender": "female",
        "phone": "+51 987 654 321",
        "region": "Cusco",
        "sectors": ["agriculture", "crafts"],
        "employees": "2",
    }

    def test_a_manager_registers_a_producer(self, client, login_as, org):
        login_as("program_manager")
        response = client.post("/o/acme/producers/new", data=self.FORM)
        assert response.status_code == 302
        producer_id = int(response.headers["Location"].rsplit("/", 1)[1])
        saved = fresh(org.id, Producer, producer_id)
        assert (saved.name, saved.name_key, saved.phone) == (
            "Rosa Huamán",
            "rosa huaman",
            "+51987654321",
        )
        with tenant_scope(org.id):
            assert saved.sectors == ["agriculture", "crafts"]
        assert len(events(org.id, "producer.registered")) == 1

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"phone": "call me maybe"}, "Use digits, spaces and an optional leading +."),
            ({"name": ""}, "This field is required."),
            ({"employees": "900"}, "Number must be between 0 and 250."),
            ({"kind": "robot"}, "Not a valid choice."),
        ],
    )
    def test_errors_are_shown_by_the_field_and_typed_values_kept(
        self, client, login_as, org, changes, message
    ):
        login_as("admin")
        response = client.post("/o/acme/producers/new", data={**self.FORM, **changes})
        assert response.status_code == 400
        page = html.unescape(response.text)
        assert message in page
        assert 'value="AB1234"' in page and 'value="Cusco"' in page
        assert count(org.id, Producer) == 0

    def test_a_duplicate_id_is_explained_on_the_form(self, client, login_as, org):
        login_as("admin")
        new_producer(org.id, name="First", national_id="AB1234")
        response = client.post("/o/acme/producers/new", data=self.FORM)
        assert response.status_code == 400
        assert "Another producer already has this id." in response.text
        assert 'value="Rosa Huamán"' in html.unescape(response.text)
        assert count(org.id, Producer) == 1

    def test_editing_saves_the_changes(self, client, login_as, org):
        login_as("admin")
        producer = new_producer(org.id, **VALID)
        response = client.post(
            f"/o/acme/producers/{producer.id}/edit", data={**self.FORM, "region": "Puno"}
        )
        assert response.status_code == 302
        assert fresh(org.id, Producer, producer.id).region == "Puno"

    def test_the_edit_form_is_filled_with_the_producer(self, client, login_as, org):
        login_as("admin")
        producer = new_producer(org.id, **VALID)
        page = html.unescape(client.get(f"/o/acme/producers/{producer.id}/edit").text)
        assert 'value="Rosa Huamán"' in page and 'value="AB1234"' in page
        assert '<option selected value="crafts">' in page

    @pytest.mark.parametrize("role", ["field_officer", "viewer"])
    def test_only_managers_register_or_edit(self, client, login_as, org, role):
        login_as(role)
        producer = new_producer(org.id)
        assert client.get("/o/acme/producers/new").status_code == 403
        assert client.post("/o/acme/producers/new", data=self.FORM).status_code == 403
        assert (
            client.post(f"/o/acme/producers/{producer.id}/edit", data=self.FORM).status_code == 403
        )
        assert count(org.id, Producer) == 1
