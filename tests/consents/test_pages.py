"""Consent pages: the producer page's section, recording, revoking, the signed paper."""

from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import func, inspect, select
from werkzeug.datastructures import FileStorage

from inclusive.consents import services
from inclusive.consents.models import Consent
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.programs.models import ProgramOfficer
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.consents.conftest import PDF


def _url(producer, tail: str = "new") -> str:
    # The identity key: no query (the login's commit expired the row, out of scope here).
    return f"/o/acme/producers/{inspect(producer).identity[0]}/consents/{tail}"


def _form(mfi, **changes):
    data = {
        "partner_id": str(mfi.id),
        "purpose": "Working-capital loan",
        "scopes": ["identity", "program_record"],
        "text_version": "consent-v1",
        "method": "signed_paper",
        "paper": (io.BytesIO(PDF), "scan.pdf"),
        "given_on": (today() - timedelta(days=1)).isoformat(),
        "valid_until": "",
        "witness_id": "",
    }
    data.update(changes)
    return data


def _consents(org) -> list[Consent]:
    with tenant_scope(org.id):
        return list(db.session.scalars(select(Consent)))


def test_form_shows_the_consent_text_in_the_readers_language(client, login_as, org, producer, mfi):
    login_as("program_manager")
    page = client.get(_url(producer)).get_data(as_text=True)
    assert "Record a consent" in page and "Microfinanciera Andina" in page
    assert "I authorise" in page and "consent-v1" in page


def test_record_signed_paper_then_see_it_on_the_producer_page(client, login_as, org, producer, mfi):
    login_as("program_manager")
    response = client.post(_url(producer), data=_form(mfi), content_type="multipart/form-data")
    assert response.status_code == 302
    (consent,) = _consents(org)
    assert consent.paper_content_type == "application/pdf"
    page = client.get(_url(producer, "").removesuffix("/consents/")).get_data(as_text=True)
    assert 'id="consents"' in page and "Valid" in page and "Identity, Program record" in page
    paper = client.get(_url(producer, f"{consent.id}/paper"))
    assert paper.status_code == 200 and paper.data == PDF
    assert paper.headers["Cache-Control"] == "private, no-store"


def test_refusals_say_why_and_write_nothing(client, login_as, org, producer, mfi, stranger_partner):
    login_as("admin")
    cases = [
        (_form(stranger_partner), "partnership"),
        (_form(mfi, paper=(io.BytesIO(b"<html>hi</html>"), "scan.pdf")), "not a PDF, JPEG or PNG"),
        (_form(mfi, method="portal"), "not available yet"),
        (_form(mfi, method="verbal", paper=(io.BytesIO(b""), "")), "needs a staff witness"),
        (_form(mfi, scopes=[]), "at least one"),
        (_form(mfi, given_on=(today() + timedelta(days=2)).isoformat()), "future"),
        (_form(mfi, partner_id="99999999999"), "partnership"),
    ]
    for data, words in cases:
        response = client.post(_url(producer), data=data, content_type="multipart/form-data")
        assert response.status_code == 400, words
        assert words in response.get_data(as_text=True), words
    assert _consents(org) == []


def test_verbal_consent_with_a_witness(client, login_as, make_member, org, producer, mfi):
    witness = make_member("viewer", name="Wanda Witness")
    login_as("program_manager")
    data = _form(mfi, method="verbal", witness_id=str(witness.id), paper=(io.BytesIO(b""), ""))
    response = client.post(_url(producer), data=data, content_type="multipart/form-data")
    assert response.status_code == 302
    (consent,) = _consents(org)
    assert consent.witness_id == witness.id and consent.paper_storage_key is None


def test_another_organizations_producer_is_404(client, login_as, other_org, mfi):
    with tenant_scope(other_org.id):
        foreign = factories.ProducerFactory()
    login_as("admin")
    response = client.post(_url(foreign), data=_form(mfi), content_type="multipart/form-data")
    assert response.status_code == 404
    with tenant_scope(other_org.id):
        assert db.session.scalar(select(func.count()).select_from(Consent)) == 0


def test_field_officer_records_for_producers_of_their_programs(
    client, login_as, org, producer, mfi
):
    officer = login_as("field_officer")
    assert client.get(_url(producer)).status_code == 403
    with tenant_scope(org.id):
        program = factories.make_program(org)
        factories.make_enrollment(program, producer)
        db.session.add(ProgramOfficer(program_id=program.id, user_id=officer.id))
        db.session.flush()
    assert client.get(_url(producer)).status_code == 200
    response = client.post(_url(producer), data=_form(mfi), content_type="multipart/form-data")
    assert response.status_code == 302


def _recorded(org, producer, mfi, recorder) -> int:
    with tenant_scope(org.id):
        consent = services.record_consent(
            producer,
            partner_id=mfi.id,
            purpose="Asset loan",
            scopes=["identity"],
            method="signed_paper",
            given_on=today(),
            recorder=recorder,
            paper=FileStorage(stream=io.BytesIO(PDF), filename="p.pdf"),
        )
        db.session.flush()
        return consent.id


def test_revoke_needs_a_reason_and_a_manager(client, login_as, make_member, org, producer, mfi):
    consent_id = _recorded(org, producer, mfi, make_member("admin"))
    revoke = _url(producer, f"{consent_id}/revoke")
    login_as("field_officer")
    assert client.post(revoke, data={"reason": "x"}).status_code == 403
    login_as("program_manager")
    response = client.post(revoke, data={"reason": ""}, follow_redirects=True)
    assert "Say why the consent is revoked" in response.get_data(as_text=True)
    with tenant_scope(org.id):
        assert db.session.get(Consent, consent_id).revoked_at is None
    response = client.post(revoke, data={"reason": "Asked by phone"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "is revoked" in page and "Revoked" in page and "Asked by phone" in page
    with tenant_scope(org.id):
        assert db.session.get(Consent, consent_id).revoked_at is not None


def test_consent_under_another_producer_is_404(client, login_as, make_member, org, producer, mfi):
    consent_id = _recorded(org, producer, mfi, make_member("admin"))
    with tenant_scope(org.id):
        other = factories.ProducerFactory()
    login_as("admin")
    assert client.get(_url(other, f"{consent_id}/paper")).status_code == 404
    assert client.post(_url(other, f"{consent_id}/revoke"), data={"reason": "x"}).status_code == 404
    with tenant_scope(org.id):
        assert db.session.get(Consent, consent_id).revoked_at is None


def test_spanish_form_shows_the_spanish_text(client, login_as, org, producer, mfi):
    login_as("admin", locale="es")
    page = client.get(_url(producer)).get_data(as_text=True)
    assert "Autorizo a" in page
