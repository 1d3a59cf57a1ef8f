"""Viability diagnostics: six factors scored 0 to 4, repeated over time, drawn as SVG."""

from __future__ import annotations

import html
from datetime import date, timedelta

import pytest

from inclusive.impact import services as impact
from inclusive.impact.models import VIABILITY_FACTORS, ViabilityAssessment
from inclusive.tenancy.scope import tenant_scope
from tests.programs.support import count, detach, done, events, new_producer, today

MIDDLE = dict.fromkeys(VIABILITY_FACTORS, 2)


def _save(org_id, producer_id, on=date(2025, 3, 1), notes="", actor_id=None, **scores):
    with tenant_scope(org_id):
        try:
            return impact.save_assessment(producer_id, on, {**MIDDLE, **scores}, notes, actor_id)
        finally:
            done()


def _listed(org_id, producer_id) -> list[ViabilityAssessment]:
    with tenant_scope(org_id):
        rows = impact.assessments(producer_id)
        detach()
    return rows


class TestScores:
    @pytest.mark.parametrize("score", [0, 4, "0", "4"])
    def test_scores_from_0_to_4_are_kept(self, org, score):
        producer = new_producer(org.id)
        _save(org.id, producer.id, **dict.fromkeys(VIABILITY_FACTORS, score))
        [row] = _listed(org.id, producer.id)
        assert set(row.scores.values()) == {int(score)}
        assert row.total == 6 * int(score)

    @pytest.mark.parametrize(
        ("factor", "score"),
        [(factor, 5) for factor in VIABILITY_FACTORS]
        + [("contacts", score) for score in (-1, "x", None, "2.5")],
    )
    def test_other_scores_are_refused_per_factor(self, org, factor, score):
        producer = new_producer(org.id)
        with pytest.raises(impact.FiguresError) as refused:
            _save(org.id, producer.id, **{factor: score})
        assert refused.value.errors == {factor: "Choose a score from 0 to 4."}
        assert count(org.id, ViabilityAssessment) == 0

    def test_a_future_date_is_refused(self, org):
        producer = new_producer(org.id)
        with pytest.raises(impact.FiguresError) as refused:
            _save(org.id, producer.id, on=today() + timedelta(days=1))
        assert refused.value.errors == {"assessed_on": "The date cannot be in the future."}

    def test_the_assessor_notes_and_total_are_kept_and_audited(self, org, make_member):
        officer = make_member("field_officer")
        producer = new_producer(org.id)
        _save(org.id, producer.id, notes="  Keeps books  ", actor_id=officer.id, knowledge=4)
        [row] = _listed(org.id, producer.id)
        assert (row.notes, row.assessed_by_id, row.total) == ("Keeps books", officer.id, 14)
        [event] = events(org.id, "assessment.recorded", producer_id=producer.id)
        assert event.details["total"] == 14 and event.details["knowledge"] == 4


class TestHistory:
    def test_repeated_assessments_are_listed_oldest_first(self, org):
        producer = new_producer(org.id)
        _save(org.id, producer.id, on=date(2025, 5, 1), knowledge=3)
        _save(org.id, producer.id, on=date(2025, 1, 1), knowledge=1)
        _save(org.id, producer.id, on=date(2025, 5, 1), knowledge=4)  # same day, later
        _save(org.id, producer.id, on=date(2025, 3, 1), knowledge=2)
        rows = _listed(org.id, producer.id)
        assert [(r.assessed_on.month, r.knowledge) for r in rows] == [
            (1, 1),
            (3, 2),
            (5, 3),
            (5, 4),
        ]

    def test_the_list_keeps_the_twelve_latest(self, org):
        producer = new_producer(org.id)
        for month in range(1, 14):
            _save(org.id, producer.id, on=date(2024, 1, 1) + timedelta(days=30 * month))
        rows = _listed(org.id, producer.id)
        assert len(rows) == 12
        assert rows[0].assessed_on == date(2024, 1, 1) + timedelta(days=60)
        assert rows == sorted(rows, key=lambda r: r.assessed_on)

    def test_another_producers_assessments_are_not_listed(self, org):
        mine, theirs = new_producer(org.id, name="Mine"), new_producer(org.id, name="Theirs")
        _save(org.id, theirs.id)
        assert _listed(org.id, mine.id) == []


class TestDiagnosticForm:
    def _post(self, client, producer_id, **fields):
        data = {
            "assessed_on": "2025-03-01",
            **{f: "2" for f in VIABILITY_FACTORS},
            "notes": "Good start",
            **fields,
        }
        return client.post(f"/o/acme/producers/{producer_id}/assessments", data=data)

    def test_a_diagnostic_is_saved(self, client, login_as, org):
        user = login_as("program_manager")
        producer = new_producer(org.id)
        response = self._post(client, producer.id, contacts="4")
        assert response.status_code == 302
        assert response.headers["Location"].endswith("#diagnostic")
        [row] = _listed(org.id, producer.id)
        assert (row.contacts, row.total, row.assessed_by_id) == (4, 14, user.id)

    @pytest.mark.parametrize("score", ["5", "-1", "four", ""])
    def test_a_forged_score_is_refused_and_nothing_written(self, client, login_as, org, score):
        login_as("admin")
        producer = new_producer(org.id)
        response = self._post(client, producer.id, knowledge=score)
        assert response.status_code == 400
        assert "Not a valid choice." in response.text
        assert "Good start" in response.text  # the typed notes are kept
        assert count(org.id, ViabilityAssessment) == 0

    @pytest.mark.parametrize("day", ["2025-02-30", "tomorrow", ""])
    def test_an_impossible_date_is_a_field_error(self, client, login_as, org, day):
        login_as("admin")
        producer = new_producer(org.id)
        response = self._post(client, producer.id, assessed_on=day)
        assert response.status_code == 400
        assert count(org.id, ViabilityAssessment) == 0

    def test_a_future_date_is_refused(self, client, login_as, org):
        login_as("admin")
        producer = new_producer(org.id)
        tomorrow = (today() + timedelta(days=1)).isoformat()
        response = self._post(client, producer.id, assessed_on=tomorrow)
        assert response.status_code == 400
        assert "The date cannot be in the future." in response.text

    def test_the_producer_page_draws_the_scores_as_svg(self, client, login_as, org):
        login_as("viewer")
        producer = new_producer(org.id)
        _save(org.id, producer.id, on=date(2025, 1, 10), knowledge=1)
        _save(org.id, producer.id, on=date(2025, 4, 10), notes="Better", knowledge=4, contacts=3)
        page = html.unescape(client.get(f"/o/acme/producers/{producer.id}").text)
        diagnostic = page.split('id="diagnostic"', 1)[1].split("</section>", 1)[0]
        assert "<svg" in diagnostic and "Viability scores by factor, 0 to 4" in diagnostic
        for label in impact.FACTOR_LABELS.values():
            assert str(label) in diagnostic
        assert "2025-01-10: 1" in diagnostic and "2025-04-10: 4" in diagnostic
        assert 'width="390.0"' in diagnostic  # a full bar: score 4 of 4
        assert "Latest: 2025-04-10, total 15 of 24. Better" in diagnostic
        assert diagnostic.index("2025-01-10") < diagnostic.index("2025-04-10")
        assert "<script" not in diagnostic

    def test_a_viewer_sees_no_diagnostic_form(self, client, login_as, org):
        login_as("viewer")
        producer = new_producer(org.id)
        page = client.get(f"/o/acme/producers/{producer.id}").text
        assert "/assessments" not in page and "Record a diagnostic" not in page
