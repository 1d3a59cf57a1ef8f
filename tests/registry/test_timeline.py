"""The producer timeline: every event that lands on it reads as a sentence."""

from __future__ import annotations

import pytest
from flask_babel import force_locale

from inclusive.audit.models import AuditEvent
from inclusive.presentation import describe_event, next_states

#: Every action written with a producer_id, with the details its writer gives it.
TIMELINE = {
    "producer.registered": ({"name": "Rosa"}, "Registered."),
    "producer.imported": ({}, "Registered by a CSV import."),
    "producer.updated": (
        {"changes": {"region": ["A", "B"], "phone": ["1", "2"]}},
        "Details changed: Region, Phone.",
    ),
    "enrollment.created": ({"program": "Quinoa", "state": "applied"}, "Joined Quinoa (Applied)."),
    "enrollment.state": (
        {"program": "Quinoa", "old": "active", "new": "withdrawn", "reason": "Moved"},
        "Quinoa: Active → Withdrawn. Moved",
    ),
    "milestone.recorded": (
        {"milestone": "Visit", "old": "planned", "new": "achieved", "note": "Done"},
        "“Visit”: Achieved. Done",
    ),
    "milestone.verified": ({"milestone": "Visit"}, "“Visit” verified."),
    "milestone.waived": ({"milestone": "Visit", "reason": "n/a"}, "“Visit” waived: n/a"),
    "milestone.missed": ({"milestone": "Visit", "reason": ""}, "“Visit” missed."),
    "milestone.sent_back": (
        {"milestone": "Visit", "reason": "Blurry"},
        "“Visit” sent back: Blurry",
    ),
    "milestone.evidence": ({"milestone": "Visit", "file": "a.png"}, "Evidence for “Visit”: a.png."),
    "snapshot.recorded": ({"month": "2025-03-01"}, "Figures for 2025-03-01 recorded."),
    "snapshot.corrected": ({"month": "2025-03-01"}, "Figures for 2025-03-01 corrected."),
    "assessment.recorded": ({"total": 14}, "Viability diagnostic: 14 of 24."),
    "offtake.recorded": (
        {"quantity": 12.5, "product": "Quinoa"},
        "Purchase recorded: 12.5 of Quinoa.",
    ),
}


@pytest.mark.parametrize("action", sorted(TIMELINE))
def test_each_timeline_event_reads_as_a_sentence(app, action):
    details, expected = TIMELINE[action]
    with force_locale("en"):
        assert describe_event(AuditEvent(action=action, details=details)) == expected


def test_unknown_states_in_old_events_are_shown_as_they_are(app):
    event = AuditEvent(
        action="enrollment.state", details={"program": "Quinoa", "old": "archived", "new": "active"}
    )
    with force_locale("en"):
        assert describe_event(event) == "Quinoa: archived → Active."


def test_events_without_details_do_not_break_the_page(app):
    for action in TIMELINE:
        assert describe_event(AuditEvent(action=action, details=None))


def test_imported_purchases_read_as_a_sentence(app):
    event = AuditEvent(action="offtake.imported", details={"file": "sales.csv", "rows": 3})
    assert describe_event(event) != "offtake.imported"


def test_the_state_menu_offers_only_allowed_moves(app):
    assert next_states("applied") == ["enrolled", "waitlisted", "withdrawn"]
    assert next_states("graduated") == [] and next_states("withdrawn") == []
