"""Evidence files uploaded on the milestone page: checked by content, served to members."""

from __future__ import annotations

import hashlib
import html
import io

import pytest

from inclusive.milestones.models import Evidence, Milestone
from inclusive.milestones.models import MilestoneStatus as M
from inclusive.tenancy.scope import tenant_scope
from tests.programs.support import (
    JPEG,
    PDF,
    PNG,
    count,
    detach,
    enroll,
    events,
    fresh,
    milestones_of,
    new_producer,
    new_program,
    stored_files,
)


@pytest.fixture
def milestone_id(org, program):
    """The first milestone of a live plan (its step requires evidence)."""
    [enrollment] = enroll(program, [new_producer(org.id)])
    first = milestones_of(org.id, enrollment.id)[0]
    assert first.evidence_required
    return first.id


def _upload(client, milestone_id: int, *files: tuple[bytes, str], status: str = "achieved"):
    return client.post(
        f"/o/acme/milestones/{milestone_id}",
        data={
            "status": status,
            "note": "Signed today",
            "files": [(io.BytesIO(data), name) for data, name in files],
        },
        content_type="multipart/form-data",
    )


def _evidence(org_id: int, milestone_id: int) -> list[Evidence]:
    with tenant_scope(org_id):
        items = list(fresh(org_id, Milestone, milestone_id).evidence)
        detach()
    return items


class TestAccepted:
    def test_the_form_opens_the_phone_camera(self, client, login_as, org, milestone_id):
        login_as("admin")
        page = client.get(f"/o/acme/milestones/{milestone_id}").text
        field = (
            page.split('type="file"', 1)[0].rsplit("<input", 1)[1]
            + page.split('type="file"', 1)[1].split(">", 1)[0]
        )
        assert 'capture="environment"' in field
        assert 'accept="application/pdf,image/jpeg,image/png"' in field
        assert 'enctype="multipart/form-data"' in page

    def test_a_png_photo_is_kept_with_its_checksum(self, client, login_as, org, milestone_id):
        user = login_as("program_manager")
        response = _upload(client, milestone_id, (PNG, "photo.png"))
        assert response.status_code == 302
        [item] = _evidence(org.id, milestone_id)
        assert (item.filename, item.content_type, item.size) == ("photo.png", "image/png", len(PNG))
        assert item.sha256 == hashlib.sha256(PNG).hexdigest()
        assert item.uploaded_by_id == user.id
        assert fresh(org.id, Milestone, milestone_id).status == M.ACHIEVED
        [event] = events(org.id, "milestone.evidence")
        assert event.details["file"] == "photo.png"

    def test_members_of_the_organization_get_the_photo_back(
        self, client, login_as, org, milestone_id
    ):
        login_as("admin")
        _upload(client, milestone_id, (PNG, "photo.png"))
        [item] = _evidence(org.id, milestone_id)
        login_as("viewer")
        response = client.get(f"/o/acme/evidence/{item.id}")
        assert response.status_code == 200
        assert response.data == PNG
        assert response.mimetype == "image/png"
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert "no-store" in response.headers["Cache-Control"]

    def test_a_pdf_is_accepted_and_served_as_a_download(self, client, login_as, org, milestone_id):
        login_as("admin")
        assert _upload(client, milestone_id, (PDF, "contract.pdf")).status_code == 302
        [item] = _evidence(org.id, milestone_id)
        assert item.content_type == "application/pdf"
        response = client.get(f"/o/acme/evidence/{item.id}")
        assert response.data == PDF
        assert response.headers["Content-Disposition"].startswith("attachment")

    def test_the_content_decides_the_type_not_the_name(self, client, login_as, org, milestone_id):
        login_as("admin")
        _upload(client, milestone_id, (JPEG, "scan.pdf"))
        [item] = _evidence(org.id, milestone_id)
        assert (item.filename, item.content_type) == ("scan.jpg", "image/jpeg")

    def test_file_names_cannot_climb_out(self, client, login_as, org, milestone_id):
        login_as("admin")
        _upload(client, milestone_id, (PNG, "../../etc/pass wd.png"))
        [item] = _evidence(org.id, milestone_id)
        assert "/" not in item.filename and ".." not in item.filename
        assert item.filename.endswith(".png")

    def test_the_milestone_page_lists_the_files(self, client, login_as, org, milestone_id):
        login_as("admin")
        _upload(client, milestone_id, (PNG, "photo.png"), (PDF, "contract.pdf"))
        page = client.get(f"/o/acme/milestones/{milestone_id}").text
        for item in _evidence(org.id, milestone_id):
            assert f"/o/acme/evidence/{item.id}" in page and item.filename in page

    def test_with_evidence_a_manager_can_verify(self, client, login_as, org, milestone_id):
        login_as("program_manager")
        _upload(client, milestone_id, (PNG, "photo.png"))
        response = client.post(f"/o/acme/milestones/{milestone_id}/verify")
        assert response.status_code == 302
        assert fresh(org.id, Milestone, milestone_id).status == M.VERIFIED


class TestNotServedToOthers:
    def test_another_organizations_member_gets_404(
        self, client, login, login_as, make_member, org, other_org, milestone_id
    ):
        login_as("admin")
        _upload(client, milestone_id, (PNG, "photo.png"))
        [item] = _evidence(org.id, milestone_id)
        login(make_member("admin", organization=other_org))
        assert client.get(f"/o/acme/evidence/{item.id}").status_code == 404
        assert client.get(f"/o/{other_org.slug}/evidence/{item.id}").status_code == 404

    def test_anonymous_visitors_are_sent_to_log_in(self, client, login_as, org, milestone_id):
        login_as("admin")
        _upload(client, milestone_id, (PNG, "photo.png"))
        [item] = _evidence(org.id, milestone_id)
        client.post("/logout")
        response = client.get(f"/o/acme/evidence/{item.id}")
        assert response.status_code == 302 and "/login" in response.headers["Location"]


class TestRefused:
    @pytest.mark.parametrize(
        "data",
        [b"GIF89a\x01\x00\x01\x00", b"<script>alert(1)</script>", b"PK\x03\x04 zip", b"\x89PNX"],
    )
    def test_a_png_name_on_other_content_is_refused(
        self, app, client, login_as, org, milestone_id, data
    ):
        login_as("admin")
        before = stored_files(app)
        response = _upload(client, milestone_id, (data, "photo.png"))
        assert response.status_code == 400
        assert "photo.png is not a PDF, JPEG or PNG file." in html.unescape(response.text)
        assert count(org.id, Evidence) == 0
        assert fresh(org.id, Milestone, milestone_id).status == M.PLANNED
        assert stored_files(app) == before

    def test_an_oversize_file_is_refused(
        self, app, client, login_as, org, milestone_id, monkeypatch
    ):
        monkeypatch.setitem(app.config, "EVIDENCE_MAX_BYTES", 64)
        login_as("admin")
        before = stored_files(app)
        response = _upload(client, milestone_id, (PNG + b"\0" * 64, "big.png"))
        assert response.status_code == 400
        assert "big.png is larger than" in response.text
        assert count(org.id, Evidence) == 0
        assert fresh(org.id, Milestone, milestone_id).status == M.PLANNED
        assert stored_files(app) == before

    def test_a_file_exactly_at_the_limit_is_accepted(
        self, app, client, login_as, org, milestone_id, monkeypatch
    ):
        monkeypatch.setitem(app.config, "EVIDENCE_MAX_BYTES", len(PNG))
        login_as("admin")
        assert _upload(client, milestone_id, (PNG, "photo.png")).status_code == 302
        assert count(org.id, Evidence) == 1

    def test_an_empty_file_is_refused(self, client, login_as, org, milestone_id):
        login_as("admin")
        response = _upload(client, milestone_id, (b"", "empty.pdf"))
        assert response.status_code == 400
        assert "empty.pdf is empty." in response.text
        assert count(org.id, Evidence) == 0

    def test_one_bad_file_among_good_ones_writes_no_row(self, client, login_as, org, milestone_id):
        login_as("admin")
        response = _upload(client, milestone_id, (PNG, "good.png"), (b"text", "bad.png"))
        assert response.status_code == 400
        assert count(org.id, Evidence) == 0
        assert events(org.id, "milestone.evidence") == []
        assert fresh(org.id, Milestone, milestone_id).status == M.PLANNED

    def test_one_bad_file_among_good_ones_leaves_no_stored_file(
        self, app, client, login_as, org, milestone_id
    ):
        login_as("admin")
        before = stored_files(app)
        _upload(client, milestone_id, (PNG, "good.png"), (b"text", "bad.png"))
        assert stored_files(app) == before

    def test_typed_note_is_kept_when_a_file_is_refused(self, client, login_as, org, milestone_id):
        login_as("admin")
        response = _upload(client, milestone_id, (b"text", "bad.png"))
        assert "Signed today" in response.text

    def test_an_unassigned_field_officer_cannot_upload(
        self, app, client, login_as, org, milestone_id
    ):
        login_as("field_officer")
        before = stored_files(app)
        response = _upload(client, milestone_id, (PNG, "photo.png"))
        assert response.status_code == 403
        assert count(org.id, Evidence) == 0
        assert stored_files(app) == before

    def test_another_organizations_milestone_takes_no_file(self, app, client, login_as, other_org):
        login_as("admin")
        [foreign] = enroll(new_program(other_org), [new_producer(other_org.id)])
        milestone_id = milestones_of(other_org.id, foreign.id)[0].id
        response = _upload(client, milestone_id, (PNG, "photo.png"))
        assert response.status_code == 404
        assert count(other_org.id, Evidence) == 0
