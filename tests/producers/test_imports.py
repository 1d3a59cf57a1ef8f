"""CSV imports: reading, checking, previewing and importing producers and offtake purchases."""

from __future__ import annotations

import csv
import io
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from inclusive.audit.models import AuditEvent
from inclusive.extensions import db
from inclusive.impact.models import OfftakePurchase
from inclusive.jobs.models import JobRecord, JobStatus
from inclusive.milestones.models import Enrollment
from inclusive.producers import imports
from inclusive.producers.imports import ImportRefused
from inclusive.producers.models import ImportBatch, ImportStatus, Producer, ProducerSector
from inclusive.programs.models import Program, ProgramOfficer
from inclusive.tenancy.models import Organization
from inclusive.tenancy.scope import tenant_scope
from tests import factories

UPLOAD = "/o/acme/imports/producers/new"
OFFTAKE_UPLOAD = "/o/acme/imports/offtake/new"
POSTGRESQL = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql"))


# Helpers -------------------------------------------------------------------------------


def csv_bytes(
    rows: Sequence[Sequence[Any]],
    header: Sequence[str] = ("kind", "name", "national_id", "phone", "sectors"),
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> bytes:
    """A CSV file as a spreadsheet would write it."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def generated_producers(count: int, start: int = 0) -> bytes:
    """``count`` valid, distinct producer rows with every column filled."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(imports.PRODUCER_LAYOUT.columns)
    for n in range(start, start + count):
        writer.writerow([
            "individual", f"María Quispe {n}", f"DNI{n:09d}", "", "female",
            f"+51 9{n:08d}", f"maria{n}@example.org", "Cusco", "Urubamba",
            "agriculture|crafts", n % 20, "yes", "",
        ])  # fmt: skip
    return out.getvalue().encode()


def upload(
    client: FlaskClient, data: bytes, url: str = UPLOAD, name: str = "producers.csv", **fields: Any
) -> Any:
    """Post a file to an upload form, encoded in memory (the test client would spool large
    bodies to a temporary file it never closes)."""
    values = {"file": FileStorage(io.BytesIO(data), filename=name), **fields}
    boundary, body = encode_multipart(values)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def batch_id_of(response: Any) -> int:
    """The batch a successful upload redirected to."""
    assert response.status_code == 302, response.text[:2000]
    return int(re.search(r"/imports/(\d+)$", response.headers["Location"]).group(1))


def batch(batch_id: int) -> ImportBatch:
    """A batch read afresh, whatever organization it belongs to."""
    db.session.expire_all()
    return db.session.scalars(
        select(ImportBatch).where(ImportBatch.id == batch_id).execution_options(all_tenants=True)
    ).one()


def count(model: type, organization: Organization) -> int:
    with tenant_scope(organization.id):
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def producers_named(organization: Organization) -> list[str]:
    with tenant_scope(organization.id):
        return list(db.session.scalars(select(Producer.name).order_by(Producer.id)))


@pytest.fixture
def manager(login_as: Callable[..., Any]) -> Any:
    """A program manager of ``org``, logged in: they may import producers and purchases."""
    return login_as("program_manager")


@pytest.fixture
def uploaded(client: FlaskClient, manager: Any) -> Callable[[bytes], int]:
    """Upload a producers file and return its batch id."""
    return lambda data, **kw: batch_id_of(upload(client, data, **kw))


def confirm(client: FlaskClient, batch_id: int, include_likely: bool = False) -> Any:
    data = {"include_likely": "y"} if include_likely else {}
    return client.post(f"/o/acme/imports/{batch_id}/confirm", data=data)


# Reading files ---------------------------------------------------------------------------


def test_decode_knows_utf8_bom_utf16_cp1252_and_latin1():
    assert imports.decode("Peña".encode("utf-8-sig")) == ("Peña", "utf-8-sig")
    assert imports.decode("Peña".encode()) == ("Peña", "utf-8")
    assert imports.decode("Peña €".encode("cp1252")) == ("Peña €", "cp1252")
    assert imports.decode(b"Pe\xf1a \x81") == ("Peña \x81", "latin-1")
    assert imports.decode("kind\tname\n".encode("utf-16")) == ("kind\tname\n", "utf-16")


def test_delimiter_is_sniffed_from_the_header():
    assert imports.sniff_delimiter("kind;name;phone\nx,y;z") == ";"
    assert imports.sniff_delimiter("\n\nkind,name\n") == ","
    assert imports.sniff_delimiter("kind\tname\n") == "\t"
    assert imports.sniff_delimiter("kind\n") == ","


def test_formulas_are_told_from_numbers_and_phones():
    for cell in ("=cmd|' /C calc'!A0", "@SUM(A1)", "+A1", "-A1+B2", "  =1+1", "+", "-"):
        assert imports.is_formula(cell), cell
    for cell in ("+51 999 123 456", "-5", "+1", "", "María", "a=b"):
        assert not imports.is_formula(cell), cell


def test_header_is_case_accent_and_language_insensitive():
    header = imports.read_header(
        ["Tipo", " NOMBRE ", "Teléfono", "Razão"[:0] + "Região", "E-mail"], imports.PRODUCER_LAYOUT
    )
    assert header.fields == ["kind", "name", "phone", "region", "email"]
    assert header.label("phone") == "Teléfono"


def test_header_problems_are_all_reported_at_once():
    with pytest.raises(ImportRefused) as refused:
        imports.read_header(["kind", "colour", "phone", "Teléfono"], imports.PRODUCER_LAYOUT)
    text = " ".join(refused.value.messages)
    assert "Unknown column “colour”" in text
    assert "“phone” and “Teléfono” are the same column" in text
    assert "The column “name” is missing" in text
    assert "national_id" in text  # the list of the columns a file may have


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2024-02-29", date(2024, 2, 29)), ("29/02/2024", date(2024, 2, 29)),
     ("1.3.2024", date(2024, 3, 1))],
)  # fmt: skip
def test_dates_in_iso_and_day_first_forms(text, expected):
    assert imports.parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("2023-02-29", "does not exist"), ("31/04/2024", "does not exist"),
     ("2024-13-01", "does not exist"), ("03/15/2024", "does not exist"),
     ("yesterday", "YYYY-MM-DD"), ("", "required"),
     ((date.today() + timedelta(days=3)).isoformat(), "future")],
)  # fmt: skip
def test_impossible_dates_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        imports.parse_date(text)


def test_numbers_with_decimal_commas_and_thousands():
    assert imports.parse_decimal("12,5") == imports.parse_decimal("12.5")
    assert str(imports.parse_decimal("1.234,50")) == "1234.50"
    assert str(imports.parse_decimal("1,234.50")) == "1234.50"
    for bad in ("S/ 12", "1.2.3", "12kg", "NaN", ""):
        with pytest.raises(ValueError):
            imports.parse_decimal(bad)


# The template and the upload form --------------------------------------------------------


def test_templates_download_as_csv_and_import_as_they_are(client, manager):
    producers = client.get("/o/acme/imports/producers/template.csv")
    assert producers.status_code == 200
    assert producers.mimetype == "text/csv"
    assert "attachment" in producers.headers["Content-Disposition"]
    assert producers.text.strip().split(",") == list(imports.PRODUCER_LAYOUT.columns)
    offtake = client.get("/o/acme/imports/offtake/template.csv")
    assert offtake.text.strip().split(",") == list(imports.OFFTAKE_COLUMNS)

    filled = producers.data + b"individual,Ana Template,,,,,,,,,,,\r\n"
    batch_id = batch_id_of(upload(client, filled))
    assert batch(batch_id).valid_rows == 1


def test_upload_form_and_imports_index_render(client, manager, org):
    page = client.get(UPLOAD)
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    assert "<script>" not in page.text
    index = client.get("/o/acme/imports/")
    assert index.status_code == 200
    assert "Import producers" in index.text


def test_a_file_that_is_not_csv_by_name_is_refused(client, manager, org):
    response = upload(client, b"kind,name\nindividual,Ana\n", name="producers.xlsx")
    assert response.status_code == 400
    assert "Choose a .csv file." in response.text
    assert count(ImportBatch, org) == 0


def test_a_viewer_may_not_import(client, login_as):
    login_as("viewer")
    assert upload(client, b"kind,name\nindividual,Ana\n").status_code == 403


# Encodings and delimiters ----------------------------------------------------------------


def test_utf8_with_bom_imports_with_accents_sectors_and_audit(client, uploaded, org):
    data = b"\xef\xbb\xbf" + csv_bytes(
        [["individual", "José Peña", "dni 123", "+51 984 111 222", "agriculture|crafts"],
         ["cooperative", "Cooperativa Añaskay", "", "", "Textiles and clothing"]]
    )  # fmt: skip
    batch_id = uploaded(data)
    checked = batch(batch_id)
    assert (checked.encoding, checked.total_rows, checked.valid_rows) == ("utf-8-sig", 2, 2)
    preview = client.get(f"/o/acme/imports/{batch_id}")
    assert preview.status_code == 200 and "Rows ready to import" in preview.text

    response = confirm(client, batch_id)
    assert response.status_code == 302
    done = batch(batch_id)
    assert (done.status, done.imported_rows) == (ImportStatus.DONE, 2)
    assert producers_named(org) == ["José Peña", "Cooperativa Añaskay"]
    with tenant_scope(org.id):
        jose = db.session.scalars(select(Producer).filter_by(national_id="DNI123")).one()
        assert jose.phone == "+51984111222" and jose.sectors == ["agriculture", "crafts"]
        assert jose.name_key == "jose pena"
        events = db.session.scalars(select(AuditEvent).filter_by(action="producer.imported")).all()
    assert sorted(e.producer_id for e in events) == sorted([jose.id, jose.id + 1])
    assert all(e.details == {"batch_id": batch_id} and e.actor_id for e in events)
    assert count(ProducerSector, org) == 3


def test_latin1_spreadsheet_keeps_its_accents(uploaded, org, client):
    data = csv_bytes(
        [["individual", "Conceição Ávila", "", "", ""], ["individual", "Ñandú Muñoz", "", "", ""]],
        encoding="cp1252",
    )
    batch_id = uploaded(data)
    assert batch(batch_id).encoding == "cp1252"
    confirm(client, batch_id)
    assert producers_named(org) == ["Conceição Ávila", "Ñandú Muñoz"]


def test_excel_unicode_text_utf16_with_tabs(uploaded, org, client):
    data = csv_bytes([["individual", "Zoë Ñuñez", "", "", ""]], delimiter="\t", encoding="utf-16")
    batch_id = uploaded(data)
    assert batch(batch_id).encoding == "utf-16"
    confirm(client, batch_id)
    assert producers_named(org) == ["Zoë Ñuñez"]


def test_semicolons_and_spanish_column_names(uploaded, org, client):
    data = csv_bytes(
        [["Cooperative", "Asociación Sumaq", "20123456789", "", "Agriculture, crafts", "12"]],
        header=("Tipo", "Nombre", "RUC", "Teléfono", "Sectores", "Empleados"),
        delimiter=";",
    )
    assert b";" in data and b"Agriculture, crafts" in data
    batch_id = uploaded(data)
    confirm(client, batch_id)
    with tenant_scope(org.id):
        producer = db.session.scalars(select(Producer)).one()
    assert (producer.kind, producer.name, producer.employees) == (
        "cooperative",
        "Asociación Sumaq",
        12,
    )
    assert producer.sectors == ["agriculture", "crafts"]


# Bad input ---------------------------------------------------------------------------------


def test_wrong_columns_refuse_the_file_with_every_reason(client, manager, org):
    response = upload(client, csv_bytes([["individual", "Ana"]], header=("kind", "nombre_x")))
    assert response.status_code == 400
    assert "Unknown column “nombre_x”" in response.text
    assert "The column “name” is missing" in response.text
    missing = upload(client, csv_bytes([["Ana"]], header=("name",)))
    assert "The column “kind” is missing" in missing.text
    assert count(ImportBatch, org) == 0


def test_fifty_megabytes_of_junk_is_refused_before_it_is_read(client, manager, org):
    junk = os.urandom(50 * 1024 * 1024)
    started = time.perf_counter()
    response = upload(client, junk)
    elapsed = time.perf_counter() - started
    assert response.status_code == 413
    assert "larger than 20 MB" in response.text
    assert count(ImportBatch, org) == 0
    print(f"\n50 MB of junk refused in {elapsed:.2f} s")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (os.urandom(300_000), "not a CSV text file"),
        (b"PK\x03\x04" + os.urandom(1000), "spreadsheet workbook"),
        (b"\xd0\xcf\x11\xe0" + os.urandom(1000), "spreadsheet workbook"),
        (b"kind,name\n" + bytes(range(1, 32)) * 400, "not a CSV text file"),
        (b"", "empty"),
        (b"kind,name\n", "no rows"),
        (b'kind,name\nindividual,"' + b"x" * 200_000, "cannot be read as CSV"),
        ("\ufeffkind,name\n".encode("utf-8") + b"\xff\xfe\xfa", "says it is Unicode"),
    ],
    ids=["random", "xlsx", "xls", "control-chars", "empty", "header-only", "open-quote", "bad-bom"],
)
def test_junk_under_the_size_limit_gets_a_clear_message(client, manager, org, data, message):
    response = upload(client, data)
    assert response.status_code == 400
    assert message in response.text
    assert count(ImportBatch, org) == 0


def test_a_file_just_over_the_limit_is_refused_by_the_check(client, manager, app, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 1000)
    response = upload(client, b"kind,name\n" + b"individual,Ana\n" * 100)
    assert response.status_code == 400
    assert "larger than 0 MB" in response.text


def test_too_many_rows_are_refused(client, manager, app, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_MAX_ROWS", 10)
    response = upload(client, generated_producers(11))
    assert response.status_code == 400
    assert "more than 10 rows" in response.text


def test_invalid_rows_are_explained_by_line_column_and_message(uploaded, client, org):
    data = csv_bytes(
        [["individual", "Ana", "", "", ""],
         ["spaceship", "", "", "12", ""],
         ["individual", "Bea", "", "", "astrology"]],
    )  # fmt: skip
    batch_id = uploaded(data)
    checked = batch(batch_id)
    assert (checked.total_rows, checked.valid_rows) == (3, 1)
    problems = {(p["line"], p["column"]) for p in checked.problems}
    assert problems == {(3, "kind"), (3, "name"), (3, "phone"), (4, "sectors")}
    page = client.get(f"/o/acme/imports/{batch_id}").text
    assert "Unknown sector astrology." in page and "A name is required." in page
    confirm(client, batch_id)
    assert producers_named(org) == ["Ana"]


def test_formula_cells_are_flagged_and_never_imported(uploaded, client, org):
    data = csv_bytes(
        [["individual", "=cmd|' /C calc'!A0", "", "", ""],
         ["individual", "Ana", "@SUM(1+1)", "", ""],
         ["individual", "Bea", "", "-A1", ""],
         ["individual", "Carla", "", "+51 984 000 111", ""]],
    )  # fmt: skip
    batch_id = uploaded(data)
    checked = batch(batch_id)
    formulas = [p for p in checked.problems if "formula" in p["message"]]
    assert [(p["line"], p["column"]) for p in formulas] == [
        (2, "name"), (3, "national_id"), (4, "phone")
    ]  # fmt: skip
    confirm(client, batch_id)
    assert producers_named(org) == ["Carla"]


def test_problems_listed_are_capped_with_the_total_count(uploaded, client):
    rows = [["spaceship", f"P{n}", "", "", ""] for n in range(400)]
    batch_id = uploaded(csv_bytes(rows))
    checked = batch(batch_id)
    assert len(checked.problems) == imports.MAX_LISTED_PROBLEMS
    assert checked.total_rows - checked.valid_rows == 400
    page = client.get(f"/o/acme/imports/{batch_id}").text
    assert "Rows with problems: 400. Only the first 300 problems are listed." in page
    assert "No row of this file can be imported." in page


# Duplicates ---------------------------------------------------------------------------------


def test_duplicates_in_the_file_and_against_the_registry(uploaded, client, org):
    with tenant_scope(org.id):
        known = factories.ProducerFactory(
            name="Rosa Huamán", name_key="rosa huaman", national_id="DNI1", phone="+51984000001"
        ).id
    data = csv_bytes(
        [["individual", "Someone Else", "dni 1", "", ""],  # 2: same id as the registry
         ["individual", "Rosa  HUAMAN", "", "+51 984 000 001", ""],  # 3: name+phone of registry
         ["individual", "Luz", "DNI2", "+51 984 000 002", ""],  # 4: new
         ["individual", "Luz bis", "DNI2", "", ""],  # 5: same id as line 4
         ["individual", "Luz", "DNI3", "+51 984 000 002", ""],  # 6: name+phone of line 4
         ["individual", "Ana", "DNI4", "", ""]],  # 7: new
    )  # fmt: skip
    batch_id = uploaded(data)
    duplicates = {d["line"]: d for d in batch(batch_id).duplicates}
    assert duplicates[2]["reason"] == "national_id" and duplicates[2]["producer_id"] == known
    assert duplicates[3]["reason"] == "name_phone" and duplicates[3]["producer_id"] == known
    assert (duplicates[5]["reason"], duplicates[5]["first_line"]) == ("national_id", 4)
    assert (duplicates[6]["reason"], duplicates[6]["first_line"]) == ("name_phone", 4)
    assert sorted(duplicates) == [2, 3, 5, 6]
    facts = imports.facts(batch(batch_id))
    assert (facts.same_id, facts.likely_duplicates, facts.importable) == (2, 2, 2)
    page = client.get(f"/o/acme/imports/{batch_id}").text
    assert "Same national id as line 4: not imported." in page
    assert f"Same name and phone as producer #{known}." in page

    confirm(client, batch_id, include_likely=True)
    names = producers_named(org)
    assert names == ["Rosa Huamán", "Rosa HUAMAN", "Luz", "Luz", "Ana"]  # never a same-id row


def test_likely_duplicates_stay_out_unless_chosen(uploaded, client, org):
    data = csv_bytes(
        [
            ["individual", "Luz", "", "+51 984 000 002", ""],
            ["individual", "Luz", "", "+51 984 000 002", ""],
        ]
    )
    batch_id = uploaded(data)
    confirm(client, batch_id)
    assert producers_named(org) == ["Luz"]
    assert batch(batch_id).imported_rows == 1


def test_existing_producers_are_looked_up_in_batches_not_per_row(uploaded, monkeypatch):
    calls: list[int] = []
    original = imports._existing_national_ids
    monkeypatch.setattr(imports, "CHUNK_ROWS", 100)
    monkeypatch.setattr(
        imports, "_existing_national_ids", lambda ids: calls.append(len(ids)) or original(ids)
    )
    uploaded(generated_producers(450))
    assert calls == [100, 100, 100, 100, 50]


# The preview's clean rows ---------------------------------------------------------------------


def _imported(org: Organization) -> list[tuple]:
    with tenant_scope(org.id):
        producers = db.session.scalars(select(Producer).order_by(Producer.id)).all()
        return [(p.name, p.name_key, p.national_id, p.phone, p.kind, p.sectors) for p in producers]


MIXED = [
    ["individual", "José Peña", "dni 1", "+51 984 111 222", "agriculture|crafts"],
    ["nonsense", "Bad Kind", "", "", ""],
    ["cooperative", "Cooperativa Añaskay", "", "", "Textiles and clothing"],
    ["individual", "José Peña", "DNI1", "", ""],  # the same id as line 2: never imported
    ["individual", "Luz", "", "+51 984 000 002", "fishing"],
]


def test_the_import_writes_the_rows_the_preview_checked_without_checking_them_again(
    uploaded, client, org, monkeypatch
):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    batch_id = uploaded(csv_bytes(MIXED))
    assert batch(batch_id).checked_key

    def no_second_check(raw):
        raise AssertionError("the import checked a row again")

    monkeypatch.setattr(imports, "clean_producer", no_second_check)
    confirm(client, batch_id)
    done = batch(batch_id)
    assert (done.status, done.imported_rows, done.processed_rows) == (ImportStatus.DONE, 3, 5)
    assert _imported(org) == [
        ("José Peña", "jose pena", "DNI1", "+51984111222", "individual", ["agriculture", "crafts"]),
        ("Cooperativa Añaskay", "cooperativa anaskay", None, "", "cooperative", ["textiles"]),
        ("Luz", "luz", None, "+51984000002", "individual", ["fishing"]),
    ]
    assert count(AuditEvent, org) == 3


def test_without_the_previews_rows_the_file_is_checked_again(uploaded, client, org, app):
    from inclusive.storage import storage

    batch_id = uploaded(csv_bytes(MIXED))
    storage(app).delete(batch(batch_id).checked_key)
    confirm(client, batch_id)
    assert (batch(batch_id).status, batch(batch_id).imported_rows) == (ImportStatus.DONE, 3)
    assert [row[0] for row in _imported(org)] == ["José Peña", "Cooperativa Añaskay", "Luz"]


# One transaction, or none ---------------------------------------------------------------------


def fail_at_row(monkeypatch: pytest.MonkeyPatch, failing_row: int) -> list[int]:
    """Make the import fail while writing the n-th producer; return the rows written before."""
    original, written = imports._producer_row, []

    def producer_row(org_id, values, now):
        if len(written) + 1 == failing_row:
            raise RuntimeError("disk full")
        written.append(1)
        return original(org_id, values, now)

    monkeypatch.setattr(imports, "_producer_row", producer_row)
    return written


def test_a_failure_mid_import_leaves_nothing(uploaded, client, org, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 10)
    batch_id = uploaded(generated_producers(35))
    written = fail_at_row(monkeypatch, 26)
    response = confirm(client, batch_id)
    assert response.status_code == 302
    failed = batch(batch_id)
    assert (failed.status, failed.imported_rows) == (ImportStatus.FAILED, 0)
    assert "nothing was imported" in failed.error
    assert len(written) == 25  # 25 producers went to the database before the failure...
    assert count(Producer, org) == 0  # ...and were rolled back with it
    assert count(AuditEvent, org) == count(ProducerSector, org) == 0
    page = client.get(response.headers["Location"])
    assert "nothing was imported" in page.text and page.status_code == 200


def test_the_database_refusing_a_row_rolls_the_whole_import_back(uploaded, client, org):
    """A producer given a national id of the file after the preview: nothing is imported."""
    batch_id = uploaded(generated_producers(2_500))
    with tenant_scope(org.id):
        factories.ProducerFactory(national_id="DNI000002222")
    confirm(client, batch_id)
    failed = batch(batch_id)
    assert failed.status == ImportStatus.FAILED
    assert "registered after the check" in failed.error
    assert count(Producer, org) == 1


def test_a_batch_is_imported_once(uploaded, client, org):
    batch_id = uploaded(csv_bytes([["individual", "Ana", "", "", ""]]))
    confirm(client, batch_id)
    again = confirm(client, batch_id)
    assert again.status_code == 302
    assert "already been imported" in client.get(again.headers["Location"]).text
    assert count(Producer, org) == 1


def test_a_lost_file_fails_the_import_clearly(uploaded, client, app):
    from inclusive.storage import storage

    batch_id = uploaded(csv_bytes([["individual", "Ana", "", "", ""]]))
    storage(app).delete(batch(batch_id).storage_key)
    confirm(client, batch_id)
    assert "no longer available" in batch(batch_id).error


# Background imports -----------------------------------------------------------------------------


def test_a_large_file_is_imported_by_the_job_with_progress(uploaded, client, org, app, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_INLINE_ROWS", 100)
    monkeypatch.setattr(imports, "CHUNK_ROWS", 50)
    monkeypatch.setattr(imports, "PROGRESS_INTERVAL", 0)
    written: list[int] = []
    original = imports.ProgressWriter.__call__
    monkeypatch.setattr(
        imports.ProgressWriter, "__call__", lambda self, n: written.append(n) or original(self, n)
    )
    batch_id = uploaded(generated_producers(230))

    response = confirm(client, batch_id)  # the job runs inline, right after the commit

    assert response.status_code == 302
    done = batch(batch_id)
    assert (done.status, done.imported_rows) == (ImportStatus.DONE, 230)
    assert done.processed_rows == done.total_rows == 230
    assert written == [50, 100, 150, 200, 230]
    job = db.session.scalars(select(JobRecord).where(JobRecord.name == imports.IMPORT_JOB)).one()
    assert (job.status, job.args["batch_id"], job.org_id) == (JobStatus.FINISHED, batch_id, org.id)
    assert count(Producer, org) == count(AuditEvent, org) == 230
    progress = client.get(f"/o/acme/imports/{batch_id}/progress")
    assert "<progress" in progress.text and "Rows imported: 230 of 230." in progress.text
    assert client.get(f"/o/acme/imports/{batch_id}/progress.json").json == {
        "status": "done", "total_rows": 230, "processed_rows": 230, "imported_rows": 230,
        "error": None,
    }  # fmt: skip


def test_a_failing_background_import_leaves_nothing_and_says_why(
    uploaded, client, org, app, monkeypatch
):
    monkeypatch.setitem(app.config, "IMPORT_INLINE_ROWS", 10)
    monkeypatch.setattr(imports, "CHUNK_ROWS", 10)
    batch_id = uploaded(generated_producers(40))
    fail_at_row(monkeypatch, 26)
    confirm(client, batch_id)
    failed = batch(batch_id)
    assert failed.status == ImportStatus.FAILED and "nothing was imported" in failed.error
    assert count(Producer, org) == 0


def test_progress_page_reloads_itself_while_queued(uploaded, client):
    batch_id = uploaded(csv_bytes([["individual", "Ana", "", "", ""]]))
    with tenant_scope(batch(batch_id).org_id):
        queued = batch(batch_id)
        queued.status, queued.processed_rows = ImportStatus.IMPORTING, 0
        db.session.commit()
    page = client.get(f"/o/acme/imports/{batch_id}/progress")
    assert page.headers["Refresh"] == "2"
    assert 'value="0"' in page.text and "<script>" not in page.text


# Tenancy --------------------------------------------------------------------------------------


def test_another_organizations_batch_is_404(client, manager, other_org):
    with tenant_scope(other_org.id):
        foreign = imports.preview_upload("producers", b"kind,name\nindividual,Eve\n", "x.csv").id
    for path in ("", "/progress", "/progress.json"):
        assert client.get(f"/o/acme/imports/{foreign}{path}").status_code == 404
    assert confirm(client, foreign).status_code == 404
    assert batch(foreign).status == ImportStatus.PREVIEWED


# Offtake purchases ------------------------------------------------------------------------------

OFFTAKE_HEADER = ("producer_national_id", "date", "product", "quantity", "unit", "unit_price",
                  "amount", "on_time", "quality_accepted")  # fmt: skip


@pytest.fixture
def ledger(org: Organization) -> dict[str, int]:
    """Ids of a supplier program, two enrolled producers (and an applicant), a service center."""
    with tenant_scope(org.id):
        program = Program(kind="supplier_program", name="Quinoa suppliers")
        other = Program(kind="service_center", name="Advice center")
        db.session.add_all([program, other])
        ana = factories.ProducerFactory(national_id="DNI10")
        bea = factories.ProducerFactory(national_id="DNI20")
        applicant = factories.ProducerFactory(national_id="DNI30")
        db.session.flush()
        db.session.add_all([
            Enrollment(program_id=program.id, producer_id=ana.id, state="active"),
            Enrollment(program_id=program.id, producer_id=bea.id, state="enrolled"),
            Enrollment(program_id=program.id, producer_id=applicant.id, state="applied"),
        ])  # fmt: skip
        db.session.flush()
        return {"program": program.id, "service_center": other.id, "ana": ana.id, "bea": bea.id}


def offtake_upload(client: FlaskClient, program_id: int, data: bytes) -> Any:
    return upload(client, data, url=OFFTAKE_UPLOAD, name="purchases.csv", program=program_id)


def test_offtake_purchases_import_with_amounts_and_audit(client, manager, ledger, org):
    data = csv_bytes(
        [["DNI10", "2024-03-01", "Quinoa", "120,5", "kg", "4,20", "506,10", "sí", "no"],
         ["dni 20", "15/03/2024", "Quinoa", "80", "", "4.2", "", "", ""]],
        header=OFFTAKE_HEADER, delimiter=";", encoding="cp1252",
    )  # fmt: skip
    batch_id = batch_id_of(offtake_upload(client, ledger["program"], data))
    checked = batch(batch_id)
    assert (checked.kind, checked.program_id, checked.valid_rows) == (
        "offtake", ledger["program"], 2
    )  # fmt: skip
    assert checked.checked_key == ""  # its checks read the registry: done again at import
    preview = client.get(f"/o/acme/imports/{batch_id}").text
    assert "Quinoa suppliers" in preview
    confirm(client, batch_id)
    with tenant_scope(org.id):
        first, second = db.session.scalars(select(OfftakePurchase).order_by(OfftakePurchase.id))
        events = db.session.scalars(select(AuditEvent).filter_by(action="offtake.imported")).all()
    assert (first.producer_id, first.purchased_on, first.quantity) == (
        ledger["ana"], date(2024, 3, 1), 120.5
    )  # fmt: skip
    assert (first.unit_price, first.amount, first.on_time, first.quality_accepted) == (
        420, 50610, True, False
    )  # fmt: skip
    assert (second.unit, second.amount, second.on_time) == ("kg", 33600, True)
    assert {e.program_id for e in events} == {ledger["program"]}
    assert sorted(e.producer_id for e in events) == sorted([ledger["ana"], ledger["bea"]])


def test_offtake_impossible_dates_and_negative_amounts_are_refused(client, manager, ledger, org):
    future = (date.today() + timedelta(days=10)).isoformat()
    data = csv_bytes(
        [["DNI10", "2023-02-29", "Quinoa", "1", "kg", "4", "", "", ""],
         ["DNI10", "31/04/2024", "Quinoa", "1", "kg", "4", "", "", ""],
         ["DNI10", future, "Quinoa", "1", "kg", "4", "", "", ""],
         ["DNI10", "2024-03-01", "Quinoa", "-3", "kg", "4", "", "", ""],
         ["DNI10", "2024-03-01", "Quinoa", "3", "kg", "-4", "", "", ""],
         ["DNI10", "2024-03-01", "Quinoa", "3", "kg", "4", "-12", "", ""],
         ["DNI10", "2024-03-01", "Quinoa", "3", "kg", "4", "13", "", ""],
         ["DNI10", "2024-03-01", "Quinoa", "3", "kg", "4", "12", "maybe", ""],
         ["DNI10", "2024-03-01", "Quinoa", "3", "kg", "4", "12", "", ""]],
        header=OFFTAKE_HEADER,
    )  # fmt: skip
    batch_id = batch_id_of(offtake_upload(client, ledger["program"], data))
    checked = batch(batch_id)
    messages = {p["line"]: (p["column"], p["message"]) for p in checked.problems}
    assert messages == {
        2: ("date", "This date does not exist."),
        3: ("date", "This date does not exist."),
        4: ("date", "This date is in the future."),
        5: ("quantity", "The quantity must be more than zero."),
        6: ("unit_price", "An amount of money cannot be negative."),
        7: ("amount", "An amount of money cannot be negative."),
        8: ("amount", "This is not the quantity times the unit price (12.00)."),
        9: ("on_time", "Use yes or no."),
    }
    confirm(client, batch_id)
    assert count(OfftakePurchase, org) == 1


def test_offtake_refuses_foreign_unknown_and_unenrolled_producers(
    client, manager, ledger, org, other_org
):
    with tenant_scope(other_org.id):
        foreign = factories.ProducerFactory(national_id="DNI10-ELSEWHERE")
    data = csv_bytes(
        [["", str(foreign.id), "2024-03-01", "Quinoa", "1", "4"],  # another org's producer
         ["DNI10-ELSEWHERE", "", "2024-03-01", "Quinoa", "1", "4"],  # their national id
         ["DNI99", "", "2024-03-01", "Quinoa", "1", "4"],  # nobody
         ["DNI30", "", "2024-03-01", "Quinoa", "1", "4"],  # applied, not enrolled
         ["DNI10", str(ledger["bea"]), "2024-03-01", "Quinoa", "1", "4"],  # two producers
         ["", str(ledger["bea"]), "2024-03-01", "Quinoa", "1", "4"],  # fine
         ["", "12abc", "2024-03-01", "Quinoa", "1", "4"]],
        header=("producer_national_id", "producer_id", "date", "product", "quantity",
                "unit_price"),
    )  # fmt: skip
    batch_id = batch_id_of(offtake_upload(client, ledger["program"], data))
    messages = {p["line"]: p["message"] for p in batch(batch_id).problems}
    assert messages == {
        2: "No producer of this organization has this id.",
        3: "No producer of this organization has this id.",
        4: "No producer of this organization has this id.",
        5: "This producer is not enrolled in Quinoa suppliers.",
        6: "The id and the national id are of different producers.",
        8: "A producer id is a whole number.",
    }
    confirm(client, batch_id)
    with tenant_scope(org.id):
        assert db.session.scalars(select(OfftakePurchase.producer_id)).all() == [ledger["bea"]]
    assert count(OfftakePurchase, other_org) == 0


def test_offtake_repeated_purchases_are_likely_duplicates(client, manager, ledger, org):
    row = ["DNI10", "2024-03-01", "Quinoa", "3", "kg", "4", "", "", ""]
    data = csv_bytes([row, row], header=OFFTAKE_HEADER)
    first = batch_id_of(offtake_upload(client, ledger["program"], data))
    assert [d["first_line"] for d in batch(first).duplicates] == [2]
    confirm(client, first)
    second = batch_id_of(
        offtake_upload(client, ledger["program"], csv_bytes([row], header=OFFTAKE_HEADER))
    )
    assert [d["reason"] for d in batch(second).duplicates] == ["purchase"]
    assert "This purchase is already recorded." in client.get(f"/o/acme/imports/{second}").text
    confirm(client, second, include_likely=True)
    assert count(OfftakePurchase, org) == 2


def test_offtake_only_for_programs_the_member_records_for(client, login_as, ledger, org):
    officer = login_as("field_officer")
    page = client.get(OFFTAKE_UPLOAD)
    assert page.status_code == 200 and "There is no supplier program" in page.text
    data = csv_bytes([["DNI10", "2024-03-01", "Quinoa", "3", "kg", "4", "", "", ""]],
                     header=OFFTAKE_HEADER)  # fmt: skip
    assert offtake_upload(client, ledger["program"], data).status_code == 400
    assert offtake_upload(client, ledger["service_center"], data).status_code == 400
    with tenant_scope(org.id):
        db.session.add(ProgramOfficer(program_id=ledger["program"], user_id=officer.id))
        db.session.flush()
        db.session.commit()
    assert "Quinoa suppliers" in client.get(OFFTAKE_UPLOAD).text
    assert "Advice center" not in client.get(OFFTAKE_UPLOAD).text
    batch_id = batch_id_of(offtake_upload(client, ledger["program"], data))
    confirm(client, batch_id)
    assert count(OfftakePurchase, org) == 1
    assert client.get("/o/acme/imports/producers/new").status_code == 403


def test_an_officer_may_not_open_a_batch_of_a_program_not_theirs(client, login_as, ledger, org):
    with tenant_scope(org.id):
        data = csv_bytes([["DNI10", "2024-03-01", "Quinoa", "3", "kg", "4", "", "", ""]],
                         header=OFFTAKE_HEADER)  # fmt: skip
        foreign_batch = imports.preview_upload(
            "offtake", data, "p.csv", program_id=ledger["program"]
        ).id
    login_as("field_officer")
    assert client.get(f"/o/acme/imports/{foreign_batch}").status_code == 403
    assert confirm(client, foreign_batch).status_code == 403


# Speed ----------------------------------------------------------------------------------------


def _timed_import(
    organization: Organization, data: bytes, app: Flask
) -> tuple[float, float, ImportBatch]:
    """Preview then import inline; return the seconds each took."""
    app.config["IMPORT_INLINE_ROWS"] = 10**9
    try:
        with tenant_scope(organization.id):
            started = time.perf_counter()
            checked = imports.preview_upload("producers", data, "bench.csv")
            previewed = time.perf_counter()
            imports.confirm_import(checked, include_likely=False, actor_id=None)
            imported = time.perf_counter()
    finally:
        app.config.pop("IMPORT_INLINE_ROWS")
    return previewed - started, imported - previewed, checked


def test_import_of_20000_rows_prints_its_rate(org, app):
    rows = 20_000
    preview_s, import_s, checked = _timed_import(org, generated_producers(rows), app)
    assert (checked.status, checked.imported_rows) == (ImportStatus.DONE, rows)
    assert count(Producer, org) == count(AuditEvent, org) == rows
    dialect = db.engine.dialect.name
    print(
        f"\n{dialect}: 20,000 producers:"
        f" preview {preview_s:.2f} s ({rows / preview_s:,.0f} rows/s),"
        f" import {import_s:.2f} s ({rows / import_s:,.0f} rows/s),"
        f" both {rows / (preview_s + import_s):,.0f} rows/s"
    )


@pytest.mark.skipif(not POSTGRESQL, reason="the 100,000-row import is measured on PostgreSQL")
def test_import_of_100000_rows_on_postgresql(org, other_org, app):
    rows = 100_000
    data = generated_producers(rows)
    preview_s, import_s, checked = _timed_import(org, data, app)
    assert (checked.status, checked.imported_rows) == (ImportStatus.DONE, rows)
    assert count(Producer, org) == rows
    into_producers = _copy_into_producers_seconds(other_org, data)
    into_scratch = _copy_into_scratch_seconds(data)
    service = preview_s + import_s
    print(
        f"\npostgresql: 100,000 producers: preview {preview_s:.2f} s, import {import_s:.2f} s"
        f" ({rows / import_s:,.0f} rows/s; with the preview {rows / service:,.0f} rows/s)."
        f"\n  COPY of the clean rows into producers (its indexes and keys): {into_producers:.2f} s"
        f" ({rows / into_producers:,.0f} rows/s): import {into_producers / import_s:.0%},"
        f" preview+import {into_producers / service:.0%} of it."
        f"\n  COPY of the file's rows into a bare table (the bench's yardstick): {into_scratch:.2f}"
        f" s ({rows / into_scratch:,.0f} rows/s): preview+import {into_scratch / service:.1%}."
    )


def _copy_into_producers_seconds(organization: Organization, data: bytes) -> float:
    """COPY the same producers, already clean, into the producers of another organization."""
    source = imports.read_upload(data)
    with tenant_scope(organization.id):
        clean = [row.clean.values for chunk in imports.check_rows(source, imports.ProducerRows())
                 for row in chunk]  # fmt: skip
        now = imports.utcnow()
        values = [imports._producer_row(organization.id, v, now) for v in clean]
        connection = db.session.connection()
        started = time.perf_counter()
        imports._copy(connection, Producer.__table__, imports.PRODUCER_COLUMNS, values)
        return time.perf_counter() - started


def _copy_into_scratch_seconds(data: bytes) -> float:
    """COPY the file's rows as they are into a table of text columns with no index or key."""
    raw = db.session.connection().connection.driver_connection
    columns = ", ".join(f"{name} text" for name in imports.PRODUCER_LAYOUT.columns)
    with raw.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE import_scratch ({columns}) ON COMMIT DROP")
        started = time.perf_counter()
        reader = csv.reader(io.StringIO(data.decode(), newline=""))
        next(reader)
        with cursor.copy("COPY import_scratch FROM STDIN") as copy:
            for row in reader:
                copy.write_row(row)
        return time.perf_counter() - started


# Committed: progress seen from another connection while the import runs -------------------------


@pytest.mark.committed
def test_progress_is_visible_before_the_import_commits(app, monkeypatch):
    """The job in a thread of its own (like a worker): no request, its own connections."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 500)
    monkeypatch.setattr(imports, "PROGRESS_INTERVAL", 0)
    org_id = factories.OrganizationFactory(slug="committed-imports", default_language="es").id
    db.session.commit()
    with tenant_scope(org_id):
        queued = imports.preview_upload("producers", generated_producers(3_000), "big.csv")
        queued.status = ImportStatus.QUEUED
        db.session.commit()
        batch_id = queued.id
    db.session.remove()
    seen: list[tuple[int, int]] = []  # (processed_rows, producers) read by another connection
    original = imports.ProgressWriter.__call__

    def spy(self: imports.ProgressWriter, processed: int) -> None:
        original(self, processed)
        seen.append(_read_from_another_connection(batch_id, org_id))

    monkeypatch.setattr(imports.ProgressWriter, "__call__", spy)
    errors = _run_in_a_worker_thread(app, org_id, batch_id)
    assert errors == []
    assert _read_from_another_connection(batch_id, org_id) == (3_000, 3_000)
    if db.engine.dialect.name == "postgresql":
        assert seen == [(n, 0) for n in range(500, 3_001, 500)]


def _read_from_another_connection(batch_id: int, org_id: int) -> tuple[int, int]:
    with db.engine.connect() as connection:
        processed = connection.scalar(
            select(ImportBatch.processed_rows).where(ImportBatch.id == batch_id)
        )
        producers = connection.scalar(
            select(func.count()).select_from(Producer).where(Producer.org_id == org_id)
        )
    return processed, producers


def _run_in_a_worker_thread(app: Flask, org_id: int, batch_id: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with app.app_context(), tenant_scope(org_id):
                imports.import_batch_job(batch_id=batch_id)
                db.session.remove()
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    return errors
