"""The producer list: search, filters, pages of 50 and the CSV export of what is filtered."""

from __future__ import annotations

import csv
import io
import re

import pytest

from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones.models import EnrollmentState
from inclusive.producers import services as registry
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.programs.support import (
    days_ago,
    detach,
    done,
    enroll,
    main_of,
    new_producer,
    new_program,
)


def _found(org_id: int, **filters) -> list[str]:
    with tenant_scope(org_id):
        query = registry.filtered_producers(registry.ProducerFilters(**filters))
        names = [p.name for p in db.session.scalars(query)]
        detach()
    return names


def _listed(html: str) -> list[str]:
    """The producer names in the list page's table, in order."""
    return re.findall(r'<td data-label="Name"><a href="[^"]+">([^<]+)</a>', html)


@pytest.fixture
def people(org, other_org):
    """Producers of org (and one of another organization, who must never show)."""
    made = {
        "rosa": new_producer(
            org.id,
            name="Rosa Huamán",
            national_id="DNI-4455",
            phone="+51 987 654 321",
            region="Cusco",
            sectors="crafts",
        ),
        "jose": new_producer(
            org.id,
            name="José Quispe",
            phone="+51 911 222 333",
            region="Puno",
            sectors="agriculture;livestock",
        ),
        "ana": new_producer(org.id, name="Ana Mamani", region="Cusco", sectors="agriculture"),
    }
    new_producer(
        other_org.id,
        name="Rosa Huamán Outsider",
        national_id="DNI-4455",
        phone="+51 987 654 321",
        region="Cusco",
        sectors="crafts",
    )
    return made


class TestSearch:
    @pytest.mark.parametrize("q", ["huaman", "HUAMÁN", "Huamán", "rosa hua", "uam"])
    def test_by_name_whatever_the_accents_and_case(self, org, people, q):
        assert _found(org.id, q=q) == ["Rosa Huamán"]

    def test_accented_query_finds_plain_name(self, org):
        new_producer(org.id, name="Jose Perez")
        assert _found(org.id, q="josé pérez") == ["Jose Perez"]

    @pytest.mark.parametrize("q", ["DNI-4455", "dni-4455", " dni-4455 "])
    def test_by_national_id(self, org, people, q):
        assert _found(org.id, q=q) == ["Rosa Huamán"]

    @pytest.mark.parametrize("q", ["654321", "987 654 321", "987-654-321", "+51987654321"])
    def test_by_the_last_digits_of_a_phone(self, org, people, q):
        assert _found(org.id, q=q) == ["Rosa Huamán"]

    def test_fewer_than_six_digits_do_not_search_phones(self, org, people):
        assert _found(org.id, q="4321") == []

    @pytest.mark.parametrize("q", ["%", "_", "'; --"])
    def test_wildcards_are_searched_literally(self, org, people, q):
        assert _found(org.id, q=q) == []

    def test_results_are_sorted_by_name_ignoring_accents(self, org, people):
        new_producer(org.id, name="Álvaro Ruiz")
        assert _found(org.id) == ["Álvaro Ruiz", "Ana Mamani", "José Quispe", "Rosa Huamán"]

    def test_the_list_page_searches(self, client, login_as, org, people):
        login_as("viewer")
        page = client.get("/o/acme/producers/", query_string={"q": "huaman"}).text
        assert _listed(page) == ["Rosa Huamán"]
        assert "Outsider" not in page


class TestFilters:
    @pytest.fixture
    def enrolled(self, org, people):
        quinoa = new_program(org, name="Quinoa")
        cacao = new_program(org, "rural_network", name="Cacao")
        enroll(quinoa, [people["rosa"]], on=days_ago(30))  # overdue: at risk
        enroll(cacao, [people["jose"]])
        with tenant_scope(org.id):
            plans.enroll(quinoa, [people["ana"].id], state=EnrollmentState.APPLIED)
            done()
        return quinoa, cacao

    def test_by_program(self, org, enrolled):
        quinoa, cacao = enrolled
        assert _found(org.id, program_id=quinoa.id) == ["Ana Mamani", "Rosa Huamán"]
        assert _found(org.id, program_id=cacao.id) == ["José Quispe"]

    def test_by_enrollment_state(self, org, enrolled):
        assert _found(org.id, state="applied") == ["Ana Mamani"]
        assert _found(org.id, state="enrolled") == ["José Quispe", "Rosa Huamán"]

    def test_program_and_state_must_hold_for_the_same_enrollment(self, org, enrolled):
        _quinoa, cacao = enrolled
        assert _found(org.id, program_id=cacao.id, state="applied") == []

    def test_by_region_and_sector(self, org, enrolled):
        assert _found(org.id, region="Cusco") == ["Ana Mamani", "Rosa Huamán"]
        assert _found(org.id, sector="agriculture") == ["Ana Mamani", "José Quispe"]
        assert _found(org.id, region="Cusco", sector="crafts") == ["Rosa Huamán"]

    def test_at_risk_only(self, org, enrolled):
        assert _found(org.id, at_risk=True) == ["Rosa Huamán"]

    def test_another_organizations_program_id_finds_nothing(self, org, other_org, enrolled):
        foreign = new_program(other_org)
        assert _found(org.id, program_id=foreign.id) == []

    def test_the_list_page_applies_every_filter(self, client, login_as, org, enrolled):
        login_as("viewer")
        quinoa, _cacao = enrolled
        page = client.get(
            "/o/acme/producers/",
            query_string={
                "program": quinoa.id,
                "state": "enrolled",
                "region": "Cusco",
                "sector": "crafts",
                "at_risk": "y",
            },
        ).text
        assert _listed(page) == ["Rosa Huamán"]
        assert "Clear filters" in page

    @pytest.mark.parametrize(
        "args",
        [
            {"program": "abc"},
            {"state": "sleeping"},
            {"sector": "mining"},
            {"page": "-3"},
            {"page": "x"},
            {"q": "x" * 500},
        ],
    )
    def test_nonsense_filters_are_ignored_not_500(self, client, login_as, org, enrolled, args):
        login_as("viewer")
        response = client.get("/o/acme/producers/", query_string=args)
        assert response.status_code == 200

    def test_a_page_number_beyond_reason_is_not_a_500(self, client, login_as, org, people):
        login_as("viewer")
        response = client.get("/o/acme/producers/?page=99999999999999999999")
        assert response.status_code in (200, 404)


class TestRoles:
    def test_a_viewer_gets_no_register_link(self, client, login_as, org, people):
        login_as("viewer")
        page = client.get("/o/acme/producers/").text
        assert "/o/acme/producers/new" not in page
        assert "Enroll the selected producers" not in page

    def test_a_viewer_gets_no_enroll_form(self, client, login_as, org, people):
        login_as("viewer")
        page = main_of(client.get("/o/acme/producers/").text)
        assert 'method="post"' not in page and 'name="producer_ids"' not in page

    def test_a_manager_gets_the_enroll_form(self, client, login_as, org, people):
        login_as("program_manager")
        new_program(org)
        page = client.get("/o/acme/producers/").text
        assert "Enroll the selected producers" in page
        assert page.count('name="producer_ids"') == 3


class TestPages:
    @pytest.fixture
    def many(self, org):
        with tenant_scope(org.id):
            for n in range(51):
                factories.ProducerFactory(
                    name=f"Producer {n:02d}", name_key=f"producer {n:02d}", region="Puno"
                )
            done()

    def test_fifty_per_page_with_a_next_link(self, client, login_as, org, many):
        login_as("viewer")
        page = client.get("/o/acme/producers/").text
        names = _listed(page)
        assert len(names) == 50 and names[0] == "Producer 00" and names[-1] == "Producer 49"
        assert re.search(r'href="/o/acme/producers/\?page=2"[^>]*>Next', page)
        assert "Previous" not in page

    def test_the_last_page_has_the_rest_and_no_next_link(self, client, login_as, org, many):
        login_as("viewer")
        page = client.get("/o/acme/producers/?page=2").text
        assert _listed(page) == ["Producer 50"]
        assert "Next" not in page and "Previous" in page

    def test_the_next_link_keeps_the_filters(self, client, login_as, org, many):
        login_as("viewer")
        page = client.get("/o/acme/producers/", query_string={"region": "Puno"}).text
        next_link = re.search(r'href="([^"]+)"[^>]*>Next', page).group(1)
        assert "region=Puno" in next_link and "page=2" in next_link


class TestExport:
    def _rows(self, response) -> list[dict[str, str]]:
        body = response.data.decode("utf-8")
        assert body.startswith("\ufeff")
        return list(csv.DictReader(io.StringIO(body[1:])))

    def test_the_export_has_a_bom_a_header_and_utf8(self, client, login_as, org, people):
        login_as("viewer")
        response = client.get("/o/acme/producers/export.csv")
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"].startswith("attachment; filename=")
        rows = self._rows(response)
        assert list(rows[0]) == [*registry.FIELDS, "id", "created_at"]
        assert [r["name"] for r in rows] == ["Ana Mamani", "José Quispe", "Rosa Huamán"]
        jose = rows[1]
        assert (jose["sectors"], jose["formally_registered"], jose["region"]) == (
            "agriculture;livestock",
            "no",
            "Puno",
        )

    def test_only_what_is_filtered_is_exported(self, client, login_as, org, people):
        login_as("viewer")
        response = client.get("/o/acme/producers/export.csv", query_string={"region": "Cusco"})
        assert [r["name"] for r in self._rows(response)] == ["Ana Mamani", "Rosa Huamán"]
        searched = client.get("/o/acme/producers/export.csv", query_string={"q": "huaman"})
        assert [r["name"] for r in self._rows(searched)] == ["Rosa Huamán"]

    @pytest.mark.parametrize("start", ["=", "+", "-", "@"])
    def test_cells_that_spreadsheets_would_run_are_escaped(self, client, login_as, org, start):
        login_as("viewer")
        formula = f'{start}HYPERLINK("http://evil.example","x")'
        new_producer(org.id, name=formula, notes=f"{start}1+1", representative="Plain")
        [row] = self._rows(client.get("/o/acme/producers/export.csv"))
        assert row["name"] == "'" + formula
        assert row["notes"] == f"'{start}1+1"
        assert row["representative"] == "Plain"

    def test_phone_numbers_with_a_plus_are_escaped_too(self, client, login_as, org, people):
        login_as("viewer")
        rows = self._rows(client.get("/o/acme/producers/export.csv", query_string={"q": "Rosa"}))
        assert rows[0]["phone"] == "'+51987654321"

    def test_the_link_on_the_list_exports_the_current_filters(self, client, login_as, org, people):
        login_as("viewer")
        page = client.get("/o/acme/producers/", query_string={"region": "Puno"}).text
        link = re.search(r'href="([^"]*export\.csv[^"]*)"', page).group(1)
        rows = self._rows(client.get(link.replace("&amp;", "&")))
        assert [r["name"] for r in rows] == ["José Quispe"]


#: The producer list's rows as its template printed them before the view built them
#: (``_list_rows``): the page must stay byte for byte what it was.
JINJA_ROWS = """\
{% set t_name, t_kind, t_region, t_phone, t_sectors = _('Name'), _('Kind'), _('Region'), _('Phone'), _('Sectors') %}
{%- for p in producers %}
        <tr>
          {% if enrolling %}<td><input type="checkbox" name="producer_ids" value="{{ p.id }}" aria-label="{{ p.select_label }}"></td>{% endif %}
          <td data-label="{{ t_name }}"><a href="{{ show_url }}{{ p.id }}">{{ p.name }}</a>{% if p.national_id %}<br><small>{{ p.national_id }}</small>{% endif %}</td>
          <td data-label="{{ t_kind }}">{{ p.kind_label }}</td>
          <td data-label="{{ t_region }}">{{ p.region }}{% if p.municipality %}, {{ p.municipality }}{% endif %}</td>
          <td data-label="{{ t_phone }}">{{ p.phone }}</td>
          <td data-label="{{ t_sectors }}">{{ p.sectors_label }}</td>
        </tr>
      {% endfor %}"""  # noqa: E501


@pytest.mark.parametrize("enrolling", [True, False])
@pytest.mark.parametrize("language", ["en", "es"])
def test_the_rows_are_what_the_template_printed(app, enrolling, language):
    from flask_babel import force_locale
    from markupsafe import Markup

    from inclusive.producers.views import _list_rows

    tricky = '<b>"Tom & Jerry\'s"</b>'
    producers = [
        registry.ListedProducer(
            id=7, name=tricky, national_id="A&B<1>", kind="cooperative", region="Cusco & <Sur>",
            municipality='"Calca"', phone="+51 <9>", sectors=["agriculture", "crafts"],
            kind_label="Cooperativa & <co>", sectors_label="A & B", select_label=Markup("Select ")
            + tricky,
        ),
        registry.ListedProducer(
            id=8, name="Plain", national_id=None, kind="individual", region="Puno",
            municipality="", phone="", kind_label="Individual", sectors_label="",
            select_label=Markup("Select Plain"),
        ),
    ]  # fmt: skip
    with app.test_request_context(), force_locale(language):
        template = app.jinja_env.from_string(JINJA_ROWS)
        context = {"producers": producers, "enrolling": enrolling, "show_url": "/o/a&b/p/"}
        assert str(_list_rows(producers, "/o/a&b/p/", enrolling)) == template.render(context)
