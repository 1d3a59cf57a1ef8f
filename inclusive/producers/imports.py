"""CSV imports of producers and offtake purchases: read, check, preview, then import all or none.

A producer file is checked once, for the preview (only the batch row is written): its clean
rows are kept in storage beside the file (``ImportBatch.checked_key``) and the import writes
them as they are; their checks read no database, and the duplicates the user saw are taken
as they were (a producer given the same national id in between makes the unique index refuse
the import). A purchase file is checked again when it is imported, because its checks read
the registry, which may have changed in between; so is a producer file whose clean rows are
missing. Producer rows go through ``clean_producer``, as the producer form does. The rows
of a batch are written in one transaction (a savepoint of the caller's): with COPY on
PostgreSQL, with executemany elsewhere. Files of more than ``IMPORT_INLINE_ROWS`` rows are
imported by the ``producers.import_batch`` job, which writes its progress where the page
can see it.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from queue import Full, Queue
from typing import Any, Protocol, TypeVar

from flask import current_app
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from psycopg import errors as pg_errors
from psycopg import sql
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    any_,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from inclusive.audit.models import AuditEvent
from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.impact.models import OfftakePurchase
from inclusive.impact.services import to_hundredths
from inclusive.jobs import enqueue, job
from inclusive.milestones.models import Enrollment, EnrollmentState
from inclusive.producers.models import ImportBatch, ImportStatus, Producer, ProducerSector
from inclusive.producers.services import (
    FALSE_WORDS,
    FIELDS,
    TRUE_WORDS,
    CleanProducer,
    clean_producer,
    name_key,
)
from inclusive.programs.models import OFFTAKE_KINDS, Program, ProgramOfficer
from inclusive.refusals import Refused
from inclusive.storage import storage
from inclusive.tenancy.models import Organization
from inclusive.tenancy.scope import require_org_id
from inclusive.timeutil import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

PRODUCERS = "producers"
OFFTAKE = "offtake"
IMPORT_JOB = "producers.import_batch"

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_INLINE_ROWS = 2_000
DEFAULT_MAX_ROWS = 200_000
MAX_LISTED_PROBLEMS = 300
MAX_HEADER_MESSAGES = 8
CHUNK_ROWS = 2_000
#: PostgreSQL: producers sent in one COPY before their sectors and audit events are written.
SEGMENT_ROWS = 10_000
#: Chunks the reader thread may check ahead of the writer.
READ_AHEAD = 8
#: Seconds between two progress writes of a background import (tests set it to 0).
PROGRESS_INTERVAL = 0.5
SAMPLE_CHARS = 64 * 1024
#: Duplicate reasons that are never imported; the others are "likely" and the user decides.
SAME_ID = "national_id"
NAME_PHONE = "name_phone"
SAME_PURCHASE = "purchase"
RUNNING = frozenset({ImportStatus.QUEUED, ImportStatus.IMPORTING})
#: Enrollment states in which a producer sells to the program's counterpart.
SELLING_STATES = frozenset(EnrollmentState) - {EnrollmentState.APPLIED, EnrollmentState.WAITLISTED}

#: First characters of a cell worth a closer look for a formula (leading blanks included).
_FORMULA_STARTS = frozenset("=@+- \t\r\n")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_WORKBOOK_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # xlsx/ods (zip), xls (OLE)
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DAY_FIRST_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
MAX_QUANTITY = Decimal(10) ** 9
MAX_MONEY = 10**14  # hundredths: a trillion, far below what BigInteger holds


class ImportRefused(Refused):
    """A file, or an import, refused as a whole; ``messages`` say why, for the user."""

    def __init__(self, *messages: str) -> None:
        super().__init__(" ".join(messages))
        self.messages = list(messages)


# Settings ------------------------------------------------------------------------------


def max_upload_bytes() -> int:
    """The largest file accepted (IMPORT_MAX_BYTES, 20 MB by default)."""
    return int(current_app.config.get("IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def inline_rows() -> int:
    """Files with more rows than this are imported by a background job."""
    return int(current_app.config.get("IMPORT_INLINE_ROWS", DEFAULT_INLINE_ROWS))


def max_rows() -> int:
    """The most data rows one file may have (IMPORT_MAX_ROWS)."""
    return int(current_app.config.get("IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS))


def too_large_message() -> str:
    """What to tell someone whose file is over the size limit."""
    megabytes = max_upload_bytes() // (1024 * 1024)
    return _(
        "The file is larger than %(mb)d MB. Split it into smaller files and import them "
        "one after the other.",
        mb=megabytes,
    )


# Reading a file ------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvText:
    """A decoded upload and the delimiter its header uses."""

    text: str
    encoding: str
    delimiter: str


def read_upload(data: bytes) -> CsvText:
    """Decode an upload and find its delimiter, refusing what is not a CSV text file."""
    if len(data) > max_upload_bytes():
        raise ImportRefused(too_large_message())
    if not data.strip():
        raise ImportRefused(_("The file is empty."))
    _refuse_binary(data)
    text, encoding = decode(data)
    sample = text[:SAMPLE_CHARS]
    if len(_CONTROL_CHARS.findall(sample)) > max(8, len(sample) // 200):
        raise ImportRefused(_not_text())
    return CsvText(text, encoding, sniff_delimiter(sample))


def _not_text() -> str:
    return _("This is not a CSV text file. Save your spreadsheet as CSV and upload that file.")


def _refuse_binary(data: bytes) -> None:
    if data.startswith(_WORKBOOK_SIGNATURES):
        raise ImportRefused(
            _(
                "This is a spreadsheet workbook, not a CSV file. In your spreadsheet, "
                "use “Save as” and choose CSV."
            )
        )
    if b"\x00" in data and not data.startswith(_UTF16_BOMS):
        raise ImportRefused(_not_text())


def decode(data: bytes) -> tuple[str, str]:
    """Decode UTF-8 (with or without BOM) or UTF-16 with BOM; else Windows-1252/Latin-1."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), *((b, "utf-16") for b in _UTF16_BOMS)):
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError:
                raise ImportRefused(
                    _("The file says it is Unicode but is not. Save it again as CSV UTF-8.")
                ) from None
    for codec in ("utf-8", "cp1252"):
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def sniff_delimiter(text: str) -> str:
    """Tell the delimiter from the header: ';' (Spanish and Portuguese Excel), tab or ','."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _records(source: CsvText) -> Iterator[tuple[int, list[str]]]:
    """Yield each non-blank row with the line of the file it starts on."""
    reader = csv.reader(io.StringIO(source.text, newline=""), delimiter=source.delimiter)
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield start, cells
            start = reader.line_num + 1
    except csv.Error:
        raise ImportRefused(
            _(
                "Line %(line)d cannot be read as CSV: a cell is far too long or a quote is "
                "never closed.",
                line=start,
            )
        ) from None


# Columns -------------------------------------------------------------------------------


def column_key(label: str) -> str:
    """A header cell as a key: case, accents, spaces and punctuation do not matter."""
    return re.sub(r"[^a-z0-9]+", "_", name_key(label)).strip("_")


@dataclass(frozen=True)
class Layout:
    """The columns of one kind of file: their names, aliases, and which are required."""

    columns: tuple[str, ...]
    required: tuple[tuple[str, ...], ...]  # each: at least one of these columns
    aliases: Mapping[str, str]

    def field_of(self, label: str) -> str | None:
        """The column a header cell names, in English, Spanish or Portuguese."""
        key = column_key(label)
        return key if key in self.columns else self.aliases.get(key)


def _aliases(table: Mapping[str, str]) -> dict[str, str]:
    return {alias: name for name, words in table.items() for alias in words.split()}


PRODUCER_LAYOUT = Layout(
    columns=FIELDS,
    required=(("kind",), ("name",)),
    aliases=_aliases(
        {
            "kind": "tipo tipo_de_productor tipo_de_produtor clase",
            "name": "nombre nome razon_social razao_social",
            "national_id": "documento documento_de_identidad dni ruc nit rut cedula cpf cnpj "
            "id_nacional identificacion identificacao tax_id",
            "representative": "representante representante_legal",
            "owner_gender": "gender genero genero_del_titular genero_do_titular sexo",
            "phone": "telefono telefone celular movil whatsapp",
            "email": "e_mail correo correo_electronico",
            "region": "regiao departamento",
            "municipality": "municipio distrito ciudad cidade localidad comuna",
            "sectors": "sector sectores setor setores rubro",
            "employees": "empleados trabajadores empregados funcionarios trabalhadores",
            "formally_registered": "formal formalizado formalizada registrado registrada",
            "notes": "note notas nota observaciones observacoes comentarios",
        }
    ),
)

OFFTAKE_COLUMNS = (
    "producer_national_id",
    "producer_id",
    "date",
    "product",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "on_time",
    "quality_accepted",
    "note",
)
OFFTAKE_LAYOUT = Layout(
    columns=OFFTAKE_COLUMNS,
    required=(
        ("producer_national_id", "producer_id"),
        ("date",),
        ("product",),
        ("quantity",),
        ("unit_price",),
    ),
    aliases=_aliases(
        {
            "producer_national_id": "national_id documento dni ruc cpf cnpj cedula id_nacional "
            "documento_productor documento_produtor",
            "producer_id": "productor_id id_productor produtor_id id_produtor",
            "date": "fecha data purchased_on fecha_de_compra data_da_compra",
            "product": "producto produto",
            "quantity": "qty cantidad quantidade",
            "unit": "unidad unidade",
            "unit_price": "price precio preco precio_unitario preco_unitario valor_unitario",
            "amount": "monto importe total valor valor_total monto_total",
            "on_time": "a_tiempo puntual entrega_a_tiempo no_prazo pontual",
            "quality_accepted": "calidad_aceptada calidad qualidade_aceita qualidade",
            "note": "notes nota notas observacion observaciones observacao observacoes",
        }
    ),
)


@dataclass(frozen=True)
class Header:
    """A file's header: the column of each position, and each column's label as written."""

    fields: list[str | None]
    labels: dict[str, str]

    def label(self, name: str) -> str:
        """The header cell the user wrote for a column."""
        return self.labels.get(name, name)


def read_header(cells: Sequence[str], layout: Layout) -> Header:
    """Map header cells to columns, refusing unknown, repeated and missing columns."""
    fields: list[str | None] = []
    labels: dict[str, str] = {}
    errors: list[str] = []
    for cell in cells:
        label = cell.strip()
        name = layout.field_of(label) if label else None
        if label and name is None:
            errors.append(_("Unknown column “%(label)s”.", label=label[:60]))
        elif name in labels:
            errors.append(
                _("“%(a)s” and “%(b)s” are the same column.", a=labels[name], b=label[:60])
            )
        elif name:
            labels[name] = label
        fields.append(name)
    for group in layout.required:
        if not any(name in labels for name in group):
            errors.append(_("The column “%(name)s” is missing.", name=" / ".join(group)))
    if errors:
        raise ImportRefused(*_header_messages(errors, layout))
    return Header(fields, labels)


def _header_messages(errors: list[str], layout: Layout) -> list[str]:
    shown = errors[:MAX_HEADER_MESSAGES]
    if len(errors) > len(shown):
        shown.append(_("Other problems with the columns: %(n)d.", n=len(errors) - len(shown)))
    shown.append(_("The columns may be: %(columns)s.", columns=", ".join(layout.columns)))
    return shown


# Checking rows -------------------------------------------------------------------------


def is_formula(cell: str) -> bool:
    """Tell whether a spreadsheet would run a cell as a formula ("=", "@", "+x", "-x")."""
    text = cell.lstrip()
    if not text:
        return False
    if text[0] in "=@":
        return True
    return text[0] in "+-" and not text[1:2].isdigit()


def _problem(line: int, column: str, message: str) -> dict[str, Any]:
    return {"line": line, "column": column, "message": str(message)}


@dataclass(slots=True)
class RowResult:
    """One data row after checking: its clean values, or what is wrong with it."""

    line: int
    clean: Any
    problems: list[dict[str, Any]]
    duplicate: dict[str, Any] | None = None

    def refuse(self, column: str, message: str) -> None:
        """Mark the row invalid, saying why."""
        self.problems.append(_problem(self.line, column, message))
        self.clean = None


Writer = Callable[[list["RowResult"]], None]


class RowKind(Protocol):
    """What an import of one kind of row knows: its columns, checks and how to write it."""

    layout: Layout
    offline_review: bool  # its review reads no database: rows may be checked in a thread

    def clean(self, raw: Mapping[str, str]) -> tuple[Any, dict[str, str]]: ...
    def review(self, chunk: list[RowResult], header: Header) -> None: ...
    def writer(self, context: WriteContext) -> AbstractContextManager[Writer]: ...


def _row_values(line: int, cells: list[str], header: Header) -> tuple[dict[str, str], list]:
    raw: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    width = len(header.fields)
    for position, cell in enumerate(cells):
        name = header.fields[position] if position < width else None
        if name is None:
            if cell.strip():
                problems.append(_problem(line, "", _("This cell is outside the header's columns.")))
            continue
        raw[name] = cell
        if cell and cell[0] in _FORMULA_STARTS and is_formula(cell):
            message = _("This looks like a spreadsheet formula; formulas are not imported.")
            problems.append(_problem(line, header.label(name), message))
    return raw, problems


def _check_row(line: int, cells: list[str], header: Header, kind: RowKind) -> RowResult:
    raw, problems = _row_values(line, cells, header)
    clean, errors = kind.clean(raw)
    problems.extend(_problem(line, header.label(name), text) for name, text in errors.items())
    return RowResult(line, None if problems else clean, problems)


def check_rows(source: CsvText, kind: RowKind) -> Iterator[list[RowResult]]:
    """Read, clean and review the rows of a file, a chunk at a time."""
    records = _records(source)
    first = next(records, None)
    if first is None:
        raise ImportRefused(_("The file is empty."))
    header = read_header(first[1], kind.layout)
    limit, chunk = max_rows(), []
    for count, (line, cells) in enumerate(records, start=1):
        if count > limit:
            raise ImportRefused(
                _("The file has more than %(n)d rows. Split it into smaller files.", n=limit)
            )
        chunk.append(_check_row(line, cells, header, kind))
        if len(chunk) >= CHUNK_ROWS:
            kind.review(chunk, header)
            yield chunk
            chunk = []
    if chunk:
        kind.review(chunk, header)
        yield chunk


def _duplicate(
    line: int, reason: str, producer_id: int | None = None, first_line: int | None = None
) -> dict[str, Any]:
    return {"line": line, "reason": reason, "producer_id": producer_id, "first_line": first_line}


# Writing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteContext:
    """What every written row of one import shares."""

    org_id: int
    actor_id: int | None
    now: datetime
    batch_id: int
    postgresql: bool
    capacity: int  # the most rows the import may write (the valid rows of the preview)

    def details(self, **extra: Any) -> Any:
        """Audit details as the insert path wants them (COPY takes JSON text)."""
        value = {"batch_id": self.batch_id, **extra}
        return json.dumps(value) if self.postgresql else value


AUDIT_COLUMNS = ("org_id", "at", "actor_id", "action", "producer_id", "program_id", "details")


def _driver(connection: Connection) -> Any:
    """The psycopg connection under a SQLAlchemy one (same transaction)."""
    return connection.connection.driver_connection


def _copy_statement(table: Table, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def _copy(
    connection: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Stream rows into a table with PostgreSQL's COPY, in the session's transaction."""
    statement = _copy_statement(table, columns)
    with _driver(connection).cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _copy_text(connection: Connection, table: Table, columns: Sequence[str], text: str) -> None:
    """COPY rows already written as COPY text: only for values that need no escaping."""
    statement = _copy_statement(table, columns)
    with _driver(connection).cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(text)


def refresh_statistics(*tables: Table) -> None:
    """ANALYZE tables whose statistics are stale, on PostgreSQL, in the session's transaction.

    Foreign-key checks plan their lookup once per connection. Planned while a table looked
    empty, the lookup of a producer may scan an index on org_id alone: one scan of all the
    organization's producers per imported row. Fresh statistics (ANALYZE sees the rows of
    its own transaction) invalidate that plan. Statistics are stale when the table has
    more than twice the pages they counted. A role that does not own the table gets a
    warning, not an error.
    """
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return
    with _driver(connection).cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT relpages, pg_relation_size(oid) / current_setting('block_size')::int "
                "FROM pg_class WHERE oid = %s::regclass",
                (table.name,),
            )
            counted, actual = cursor.fetchone()
            if counted == 0 or actual > 2 * counted:
                cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table.name)))


def bulk_insert(table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows in the session's transaction: COPY on PostgreSQL, executemany elsewhere.

    Neither goes through the ORM, so its tenant hook never sees these rows: every caller
    puts the organization in scope into each row's ``org_id`` itself.
    """
    if not rows:
        return
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        _copy(connection, table, columns, rows)
    else:
        connection.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


def new_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """Take ``count`` ids from a PostgreSQL table's sequence, for rows written by COPY."""
    sequence = func.pg_get_serial_sequence(table.name, "id")
    query = select(func.nextval(sequence)).select_from(func.generate_series(1, count))
    return list(connection.execute(query).scalars())


def _one_of(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN values``: one array parameter on PostgreSQL (thousands are cheap)."""
    values = list(values)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(values, ARRAY(column.type)))
    return column.in_(values)


# Producers -----------------------------------------------------------------------------

PRODUCER_COLUMNS = (
    "org_id", "kind", "name", "name_key", "national_id", "representative", "owner_gender",
    "phone", "email", "region", "municipality", "employees", "formally_registered", "notes",
    "created_at", "updated_at",
)  # fmt: skip


def _contact(values: Mapping[str, Any]) -> tuple[str, str] | None:
    return (values["name_key"], values["phone"]) if values["phone"] else None


def _existing_national_ids(national_ids: set[str]) -> dict[str, int]:
    if not national_ids:
        return {}
    query = select(Producer.national_id, Producer.id).where(
        _one_of(Producer.national_id, national_ids)
    )
    return {nid: pid for nid, pid in db.session.execute(query)}


def _existing_contacts(phones: set[str]) -> dict[tuple[str, str], int]:
    if not phones:
        return {}
    query = select(Producer.name_key, Producer.phone, Producer.id).where(
        _one_of(Producer.phone, phones)
    )
    return {(key, phone): pid for key, phone, pid in db.session.execute(query)}


class ProducerRows:
    """Producer files: rows cleaned as the producer form cleans them, duplicates flagged.

    For the preview, duplicates are looked up in the registry; for the import, the
    duplicates the preview found (and the user saw) are taken as they are. A producer given
    the same national id in between makes the unique index refuse the whole import.
    """

    layout = PRODUCER_LAYOUT

    def __init__(self, known_duplicates: Sequence[Mapping[str, Any]] | None = None) -> None:
        self.known = None if known_duplicates is None else {d["line"]: d for d in known_duplicates}
        self.offline_review = self.known is not None
        self.ids_seen: dict[str, int] = {}
        self.contacts_seen: dict[tuple[str, str], int] = {}

    def clean(self, raw: Mapping[str, str]) -> tuple[CleanProducer | None, dict[str, str]]:
        """Validate one row exactly as the producer form does."""
        return clean_producer(raw)

    def review(self, chunk: list[RowResult], header: Header) -> None:
        """Flag rows with the id, or the name and phone, of an earlier row or a producer."""
        rows = [row for row in chunk if row.clean is not None]
        if self.known is not None:
            for row in rows:
                row.duplicate = self.known.get(row.line)
            return
        values = [row.clean.values for row in rows]
        known_ids = _existing_national_ids({v["national_id"] for v in values if v["national_id"]})
        known_contacts = _existing_contacts({v["phone"] for v in values if v["phone"]})
        for row in rows:
            row.duplicate = self._duplicate_of(row, known_ids, known_contacts)
            self._remember(row)

    def _duplicate_of(
        self, row: RowResult, known_ids: dict[str, int], known_contacts: dict[tuple[str, str], int]
    ) -> dict[str, Any] | None:
        national_id, contact = row.clean.values["national_id"], _contact(row.clean.values)
        if national_id in known_ids:
            return _duplicate(row.line, SAME_ID, producer_id=known_ids[national_id])
        if national_id in self.ids_seen:
            return _duplicate(row.line, SAME_ID, first_line=self.ids_seen[national_id])
        if contact in known_contacts:
            return _duplicate(row.line, NAME_PHONE, producer_id=known_contacts[contact])
        if contact in self.contacts_seen:
            return _duplicate(row.line, NAME_PHONE, first_line=self.contacts_seen[contact])
        return None

    def _remember(self, row: RowResult) -> None:
        national_id, contact = row.clean.values["national_id"], _contact(row.clean.values)
        if national_id:
            self.ids_seen.setdefault(national_id, row.line)
        if contact:
            self.contacts_seen.setdefault(contact, row.line)

    def writer(self, context: WriteContext) -> AbstractContextManager[Writer]:
        """Write producers, their sectors and one audit event each."""
        if context.postgresql:
            return _streamed_producers(context)
        return _chunked_writer(lambda rows: _insert_producers(rows, context))


SECTOR_COLUMNS = ("org_id", "producer_id", "sector")


@contextmanager
def _chunked_writer(write: Writer) -> Iterator[Writer]:
    yield write


class _ProducerStream:
    """PostgreSQL: COPY producers a segment at a time, then the segment's sectors and events.

    The server inserts a segment while Python checks the next rows. Ids come from the
    sequence first, so that sectors and audit events can point at them.
    """

    def __init__(self, context: WriteContext, connection: Connection) -> None:
        self.context, self.connection = context, connection
        self.ids, self.taken = new_ids(connection, Producer.__table__, context.capacity), 0
        self.cursor = _driver(connection).cursor()
        self.copying = ExitStack()  # holds the open COPY of producers, if any
        self.copy: Any = None
        self.sectors: list[str] = []
        self.events: list[str] = []
        self.analyzed = False
        actor = "\\N" if context.actor_id is None else str(context.actor_id)
        # One audit event line per producer: only the producer id changes ("%d").
        self.event_line = "\t".join(
            [str(context.org_id), context.now.isoformat(" "), actor, "producer.imported", "%d",
             "\\N", json.dumps({"batch_id": context.batch_id}).replace("%", "%%")]
        ) + "\n"  # fmt: skip

    def __call__(self, rows: list[RowResult]) -> None:
        """Send rows to the server; after SEGMENT_ROWS of them, write what points at them."""
        org, now = self.context.org_id, self.context.now
        ids = self.ids[self.taken : self.taken + len(rows)]
        if len(ids) < len(rows):
            raise ImportRefused(_("The file changed after it was checked. Upload it again."))
        self.taken += len(rows)
        if self.copy is None:
            statement = _copy_statement(Producer.__table__, ("id", *PRODUCER_COLUMNS))
            self.copy = self.copying.enter_context(self.cursor.copy(statement))
        for producer_id, row in zip(ids, rows, strict=True):
            self.copy.write_row((producer_id, *_producer_row(org, row.clean.values, now)))
            self.sectors.extend(f"{org}\t{producer_id}\t{s}\n" for s in row.clean.sectors)
            self.events.append(self.event_line % producer_id)
        if len(self.events) >= SEGMENT_ROWS:
            self.flush()

    def flush(self) -> None:
        """End the COPY of producers, then write their sectors and audit events."""
        self.copy = None
        self.copying.close()  # the server finishes inserting the segment's producers
        if not self.analyzed:  # before the first foreign-key checks of sectors and events
            refresh_statistics(Producer.__table__)
            self.analyzed = True
        # Ids, codes and a timestamp: COPY text needs no escaping, and costs Python little.
        if self.sectors:
            _copy_text(self.connection, ProducerSector.__table__, SECTOR_COLUMNS,
                       "".join(self.sectors))  # fmt: skip
        if self.events:
            _copy_text(self.connection, AuditEvent.__table__, AUDIT_COLUMNS, "".join(self.events))
        self.sectors, self.events = [], []

    def abort(self, error: BaseException) -> None:
        """Cancel an open COPY (the savepoint then rolls back everything written)."""
        self.copy = None
        self.copying.__exit__(type(error), error, error.__traceback__)


@contextmanager
def _streamed_producers(context: WriteContext) -> Iterator[Writer]:
    stream = _ProducerStream(context, db.session.connection())
    try:
        yield stream
        stream.flush()
    except BaseException as error:
        stream.abort(error)
        raise
    finally:
        stream.cursor.close()


def _insert_producers(rows: list[RowResult], context: WriteContext) -> None:
    """Elsewhere (SQLite): executemany, a chunk at a time, the new ids read back in order."""
    if not rows:
        return
    org, now, table = context.org_id, context.now, Producer.__table__
    params = [
        dict(zip(PRODUCER_COLUMNS, _producer_row(org, row.clean.values, now), strict=True))
        for row in rows
    ]
    statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
    ids = list(db.session.connection().execute(statement, params).scalars())
    sectors = [
        (org, pid, sector)
        for pid, row in zip(ids, rows, strict=True)
        for sector in row.clean.sectors
    ]
    bulk_insert(ProducerSector.__table__, SECTOR_COLUMNS, sectors)
    details, actor = context.details(), context.actor_id
    events = [(org, now, actor, "producer.imported", pid, None, details) for pid in ids]
    bulk_insert(AuditEvent.__table__, AUDIT_COLUMNS, events)


def _producer_row(org_id: int, v: Mapping[str, Any], now: datetime) -> tuple[Any, ...]:
    return (
        org_id, v["kind"], v["name"], v["name_key"], v["national_id"], v["representative"],
        v["owner_gender"], v["phone"], v["email"], v["region"], v["municipality"],
        v["employees"], v["formally_registered"], v["notes"], now, now,
    )  # fmt: skip


# Offtake purchases ---------------------------------------------------------------------


@dataclass
class CleanPurchase:
    """A validated purchase by the counterpart; ``producer_id`` is set once resolved."""

    national_id: str | None
    given_producer_id: int | None
    purchased_on: date
    product: str
    quantity: Decimal
    unit: str
    unit_price: int  # hundredths per unit
    amount: int  # hundredths
    on_time: bool
    quality_accepted: bool
    note: str
    producer_id: int | None = None

    def key(self) -> tuple[Any, ...]:
        """What makes two purchases look like the same one."""
        return (
            self.producer_id,
            self.purchased_on,
            self.product.lower(),
            float(self.quantity),
            self.unit_price,
        )


def _read(errors: dict[str, str], name: str, parse: Callable[[str], T], text: str) -> T | None:
    try:
        return parse(text)
    except ValueError as exc:
        errors[name] = str(exc)
        return None


def parse_decimal(text: str) -> Decimal:
    """Read 1234.5, 1234,5, 1.234,50 or 1,234.50 (no currency signs); raise ValueError."""
    value = text.replace(" ", "").replace("\u00a0", "")
    if "," in value and "." in value:
        thousands = "." if value.rfind(",") > value.rfind(".") else ","
        value = value.replace(thousands, "")
    value = value.replace(",", ".")
    if not _NUMBER.match(value):
        raise ValueError(_("Write a number, such as 12.5, without currency signs."))
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(_("Write a number, such as 12.5, without currency signs.")) from None


def parse_date(text: str) -> date:
    """Read YYYY-MM-DD or DD/MM/YYYY; refuse dates that do not exist or have not come."""
    match = _ISO_DATE.match(text)
    parts = match.groups() if match else None
    if parts is None and (match := _DAY_FIRST_DATE.match(text)):
        parts = tuple(reversed(match.groups()))
    if not text:
        raise ValueError(_("A date is required."))
    if parts is None:
        raise ValueError(_("Write the date as YYYY-MM-DD or DD/MM/YYYY."))
    try:
        value = date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        raise ValueError(_("This date does not exist.")) from None
    if value > utcnow().date():
        raise ValueError(_("This date is in the future."))
    return value


def _quantity(text: str) -> Decimal:
    if not text:
        raise ValueError(_("A quantity is required."))
    value = parse_decimal(text)
    if value <= 0:
        raise ValueError(_("The quantity must be more than zero."))
    if value > MAX_QUANTITY:
        raise ValueError(_("This quantity is too large."))
    return value


def _money(text: str) -> int:
    """An amount of money in hundredths, read as the purchase form reads it."""
    try:
        value = to_hundredths(text)
    except ValueError:
        message = _("Write an amount, such as 1250.50, without currency signs.")
        raise ValueError(message) from None
    if value < 0:
        raise ValueError(_("An amount of money cannot be negative."))
    if value > MAX_MONEY:
        raise ValueError(_("This amount is too large."))
    return value


def _unit_price(text: str) -> int:
    if not text:
        raise ValueError(_("A unit price is required."))
    return _money(text)


def _flag(text: str) -> bool:
    word = text.lower()
    if not word or word in TRUE_WORDS:
        return True  # an empty cell means yes, as on the purchase form
    if word in FALSE_WORDS:
        return False
    raise ValueError(_("Use yes or no."))


def _given_producer_id(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > 12:
        raise ValueError(_("A producer id is a whole number."))
    return int(text)


def _limited(errors: dict[str, str], name: str, text: str, limit: int) -> str:
    if len(text) > limit:
        errors[name] = _("At most %(n)d characters.", n=limit)
    return text


def _amount(errors: dict[str, str], quantity: Decimal | None, price: int | None, text: str) -> int:
    """The purchase's amount in hundredths: quantity times unit price, checked against the file."""
    given = _read(errors, "amount", _money, text) if text else None
    if quantity is None or price is None:
        return 0
    amount = int((quantity * price).to_integral_value(ROUND_HALF_UP))
    if amount > MAX_MONEY:
        errors["quantity"] = _("The quantity times the unit price is too large.")
    elif given is not None and abs(given - amount) > 1:
        errors["amount"] = _(
            "This is not the quantity times the unit price (%(amount)s).",
            amount=f"{Decimal(amount) / 100:.2f}",
        )
    return amount


def clean_purchase(raw: Mapping[str, Any]) -> tuple[CleanPurchase | None, dict[str, str]]:
    """Validate one offtake purchase from a CSV row or a form; return it or the errors."""
    text = {name: str(raw.get(name) or "").strip() for name in OFFTAKE_COLUMNS}
    errors: dict[str, str] = {}
    national_id = text["producer_national_id"].upper().replace(" ", "") or None
    given_id = _read(errors, "producer_id", _given_producer_id, text["producer_id"])
    if national_id is None and given_id is None and "producer_id" not in errors:
        errors["producer_national_id"] = _("Say which producer sold: their national id.")
    purchased_on = _read(errors, "date", parse_date, text["date"])
    product = _limited(errors, "product", text["product"], 120)
    if not product:
        errors["product"] = _("A product is required.")
    quantity = _read(errors, "quantity", _quantity, text["quantity"])
    price = _read(errors, "unit_price", _unit_price, text["unit_price"])
    amount = _amount(errors, quantity, price, text["amount"])
    on_time = _read(errors, "on_time", _flag, text["on_time"])
    quality = _read(errors, "quality_accepted", _flag, text["quality_accepted"])
    unit = _limited(errors, "unit", text["unit"] or "kg", 20)
    note = _limited(errors, "note", text["note"], 200)
    if errors:
        return None, errors
    purchase = CleanPurchase(
        national_id, given_id, purchased_on, product, quantity, unit, price, amount,
        bool(on_time), bool(quality), note,
    )  # fmt: skip
    return purchase, {}


def _producers_that_exist(ids: set[int]) -> set[int]:
    # The tenant filter makes another organization's producer look like no producer at all.
    if not ids:
        return set()
    return set(db.session.scalars(select(Producer.id).where(_one_of(Producer.id, ids))))


def _selling_producers(program_id: int) -> set[int]:
    query = select(Enrollment.producer_id).where(
        Enrollment.program_id == program_id, Enrollment.state.in_(SELLING_STATES)
    )
    return set(db.session.scalars(query))


def _existing_purchases(program_id: int, purchases: list[CleanPurchase]) -> set[tuple]:
    if not purchases:
        return set()
    query = select(
        OfftakePurchase.producer_id,
        OfftakePurchase.purchased_on,
        OfftakePurchase.product,
        OfftakePurchase.quantity,
        OfftakePurchase.unit_price,
    ).where(
        OfftakePurchase.program_id == program_id,
        _one_of(OfftakePurchase.producer_id, {p.producer_id for p in purchases}),
        _one_of(OfftakePurchase.purchased_on, {p.purchased_on for p in purchases}),
    )
    return {
        (pid, day, product.lower(), float(qty), price)
        for pid, day, product, qty, price in db.session.execute(query)
    }


OFFTAKE_DB_COLUMNS = (
    "org_id", "producer_id", "program_id", "purchased_on", "product", "quantity", "unit",
    "unit_price", "amount", "on_time", "quality_accepted", "recorded_by_id", "recorded_at",
    "note",
)  # fmt: skip


class OfftakeRows:
    """Offtake files: purchases of one program's counterpart from its enrolled producers."""

    layout = OFFTAKE_LAYOUT
    offline_review = False

    def __init__(self, program: Program) -> None:
        self.program = program
        self.selling = _selling_producers(program.id)
        self.seen: dict[tuple, int] = {}

    def clean(self, raw: Mapping[str, str]) -> tuple[CleanPurchase | None, dict[str, str]]:
        """Validate one purchase."""
        return clean_purchase(raw)

    def review(self, chunk: list[RowResult], header: Header) -> None:
        """Find each row's producer in this organization and program; flag repeated purchases."""
        self._resolve_producers([row for row in chunk if row.clean is not None], header)
        rows = [row for row in chunk if row.clean is not None]
        known = _existing_purchases(self.program.id, [row.clean for row in rows])
        for row in rows:
            key = row.clean.key()
            if key in known:
                row.duplicate = _duplicate(row.line, SAME_PURCHASE, producer_id=key[0])
            elif key in self.seen:
                row.duplicate = _duplicate(row.line, SAME_PURCHASE, first_line=self.seen[key])
            self.seen.setdefault(key, row.line)

    def _resolve_producers(self, rows: list[RowResult], header: Header) -> None:
        by_national_id = _existing_national_ids({r.clean.national_id for r in rows} - {None})
        existing = _producers_that_exist({r.clean.given_producer_id for r in rows} - {None})
        for row in rows:
            purchase: CleanPurchase = row.clean
            by_id = purchase.given_producer_id if purchase.given_producer_id in existing else None
            found = by_national_id.get(purchase.national_id) if purchase.national_id else by_id
            column = header.label("producer_national_id" if purchase.national_id else "producer_id")
            if found is None:
                row.refuse(column, _("No producer of this organization has this id."))
            elif purchase.given_producer_id is not None and by_id != found:
                message = _("The id and the national id are of different producers.")
                row.refuse(header.label("producer_id"), message)
            elif found not in self.selling:
                name = self.program.name
                row.refuse(column, _("This producer is not enrolled in %(program)s.", program=name))
            else:
                purchase.producer_id = found

    @contextmanager
    def writer(self, context: WriteContext) -> Iterator[Writer]:
        """Write purchases a chunk at a time, with one audit event each."""
        # Producers may have been imported minutes ago: plan their key checks on fresh numbers.
        refresh_statistics(Producer.__table__, Program.__table__)
        yield lambda rows: self._write(rows, context)

    def _write(self, rows: list[RowResult], context: WriteContext) -> None:
        org, now, actor, program = context.org_id, context.now, context.actor_id, self.program.id
        purchases = [
            (org, p.producer_id, program, p.purchased_on, p.product, float(p.quantity), p.unit,
             p.unit_price, p.amount, p.on_time, p.quality_accepted, actor, now, p.note)
            for p in (row.clean for row in rows)
        ]  # fmt: skip
        bulk_insert(OfftakePurchase.__table__, OFFTAKE_DB_COLUMNS, purchases)
        details = context.details()
        events = [(org, now, actor, "offtake.imported", p[1], program, details) for p in purchases]
        bulk_insert(AuditEvent.__table__, AUDIT_COLUMNS, events)


def offtake_programs(user_id: int, *, all_programs: bool) -> list[Program]:
    """Programs whose counterpart buys from producers that this member may import for."""
    query = select(Program).where(Program.kind.in_(OFFTAKE_KINDS))
    if not all_programs:
        assigned = select(ProgramOfficer.program_id).where(ProgramOfficer.user_id == user_id)
        query = query.where(Program.id.in_(assigned))
    return list(db.session.scalars(query.order_by(Program.name, Program.id)))


def _offtake_program(program_id: int | None) -> Program:
    program = None
    if program_id is not None:
        program = db.session.scalars(select(Program).where(Program.id == program_id)).first()
    if program is None or program.kind not in OFFTAKE_KINDS:
        raise ImportRefused(
            _(
                "Choose a supplier program or a rural network: "
                "their counterpart buys from producers."
            )
        )
    return program


def rows_of(
    kind: str, program_id: int | None = None, known_duplicates: Sequence[Any] | None = None
) -> RowKind:
    """The checks and writer of one kind of import (producers: with the preview's duplicates)."""
    if kind == OFFTAKE:
        return OfftakeRows(_offtake_program(program_id))
    if kind == PRODUCERS:
        return ProducerRows(known_duplicates)
    raise ImportRefused(_("Unknown kind of import."))


def recent_batches(
    *, producers: bool, program_ids: Sequence[int], limit: int = 20
) -> list[ImportBatch]:
    """The latest batches a member may see: producer files, purchases of their programs."""
    conditions = []
    if producers:
        conditions.append(ImportBatch.kind == PRODUCERS)
    if program_ids:
        conditions.append(
            and_(ImportBatch.kind == OFFTAKE, ImportBatch.program_id.in_(program_ids))
        )
    if not conditions:
        return []
    query = (
        select(ImportBatch)
        .where(or_(*conditions))
        .options(defer(ImportBatch.problems), defer(ImportBatch.duplicates))
        .order_by(ImportBatch.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def template_csv(kind: str) -> bytes:
    """The header of an empty file of this kind, to fill in with a spreadsheet."""
    layout = OFFTAKE_LAYOUT if kind == OFFTAKE else PRODUCER_LAYOUT
    return (",".join(layout.columns) + "\r\n").encode()


# The preview's clean producer rows ------------------------------------------------------

CHECKED_FORMAT = 1
#: The clean values of a producer row, in the order they are kept.
CHECKED_FIELDS = (
    "kind", "name", "name_key", "national_id", "representative", "owner_gender", "phone",
    "email", "region", "municipality", "employees", "formally_registered", "notes",
)  # fmt: skip


class CheckedRows:
    """The valid rows of a producer file as the preview cleaned them, to be written as they
    are: ``[position, line, values, sectors]`` each, the position counting data rows."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []

    def add(self, chunk: list[RowResult], first: int) -> None:
        for position, row in enumerate(chunk, start=first):
            if row.clean is not None:
                values = row.clean.values
                fields = [values[name] for name in CHECKED_FIELDS]
                self.rows.append([position, row.line, fields, row.clean.sectors])

    def save(self) -> str:
        """Keep the rows in storage (JSON: no code runs when they are read back)."""
        document = {"format": CHECKED_FORMAT, "fields": CHECKED_FIELDS, "rows": self.rows}
        return storage().save(json.dumps(document, separators=(",", ":")).encode(), ".json")


def checked_chunks(batch: ImportBatch, kind: RowKind) -> Iterator[tuple[int, list[RowResult]]]:
    """The preview's clean rows of a producer batch, in the chunks a check of the file would
    give (CHUNK_ROWS data rows each, valid or not), each with the count of data rows it
    reaches. Empty when they are missing: the caller then checks the file again."""
    if batch.kind != PRODUCERS or not batch.checked_key:
        return iter(())
    try:
        with storage().open(batch.checked_key) as handle:
            document = json.loads(handle.read())
    except (OSError, ValueError):
        return iter(())
    if document.get("format") != CHECKED_FORMAT or tuple(document["fields"]) != CHECKED_FIELDS:
        return iter(())
    return _kept_chunks(document["rows"], batch.total_rows, kind)


def _kept_chunks(
    kept: list[list[Any]], total: int, kind: RowKind
) -> Iterator[tuple[int, list[RowResult]]]:
    index = 0
    for start in range(0, total, CHUNK_ROWS):
        end = min(start + CHUNK_ROWS, total)
        chunk = []
        while index < len(kept) and kept[index][0] <= end:
            _position, line, values, sectors = kept[index]
            clean = CleanProducer(dict(zip(CHECKED_FIELDS, values, strict=True)), sectors)
            chunk.append(RowResult(line, clean, []))
            index += 1
        kind.review(chunk, Header(fields=[], labels={}))  # the duplicates the preview found
        yield end, chunk


# Preview -------------------------------------------------------------------------------


@dataclass
class Summary:
    """What the check of a whole file found."""

    total: int = 0
    valid: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)

    def add(self, chunk: list[RowResult]) -> None:
        """Count a checked chunk; list at most MAX_LISTED_PROBLEMS problems."""
        for row in chunk:
            self.total += 1
            if row.clean is None:
                room = MAX_LISTED_PROBLEMS - len(self.problems)
                self.problems.extend(row.problems[: max(room, 0)])
                continue
            self.valid += 1
            if row.duplicate:
                self.duplicates.append(row.duplicate)


def safe_filename(filename: str) -> str:
    """The name of the uploaded file without folders or control characters, for display."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = _CONTROL_CHARS.sub("", name).strip()
    return name[:200] or "upload.csv"


def preview_upload(
    kind: str,
    data: bytes,
    filename: str,
    *,
    program_id: int | None = None,
    actor_id: int | None = None,
) -> ImportBatch:
    """Check an uploaded file and keep it, with its check, as a previewed batch."""
    source = read_upload(data)
    summary = Summary()
    checked = CheckedRows() if kind == PRODUCERS else None
    for chunk in check_rows(source, rows_of(kind, program_id)):
        if checked is not None:
            checked.add(chunk, first=summary.total + 1)
        summary.add(chunk)
    if summary.total == 0:
        raise ImportRefused(_("The file has a header but no rows."))
    batch = ImportBatch(
        kind=kind,
        program_id=program_id if kind == OFFTAKE else None,
        filename=safe_filename(filename),
        storage_key=storage().save(data, suffix=".csv"),
        checked_key=checked.save() if checked is not None else "",
        encoding=source.encoding,
        status=ImportStatus.PREVIEWED,
        total_rows=summary.total,
        valid_rows=summary.valid,
        problems=summary.problems,
        duplicates=summary.duplicates,
        created_by_id=actor_id,
    )
    db.session.add(batch)
    db.session.flush()
    return batch


@dataclass(frozen=True)
class BatchFacts:
    """Counts the preview page shows."""

    invalid_rows: int
    same_id: int
    likely_duplicates: int
    importable: int
    problems_cut: bool

    @property
    def importable_with_likely(self) -> int:
        return self.importable + self.likely_duplicates


def facts(batch: ImportBatch) -> BatchFacts:
    """What the check of a batch found, in numbers."""
    same_id = sum(1 for d in batch.duplicates or [] if d.get("reason") == SAME_ID)
    likely = len(batch.duplicates or []) - same_id
    return BatchFacts(
        invalid_rows=batch.total_rows - batch.valid_rows,
        same_id=same_id,
        likely_duplicates=likely,
        importable=batch.valid_rows - same_id - likely,
        problems_cut=len(batch.problems or []) >= MAX_LISTED_PROBLEMS,
    )


# Import --------------------------------------------------------------------------------


def _claim(batch: ImportBatch, before: str, after: str) -> bool:
    """Move a batch from one status to the next unless someone else did first."""
    statement = (
        update(ImportBatch)
        .where(ImportBatch.id == batch.id, ImportBatch.status == before)
        .values(status=after)
    )
    return db.session.execute(statement).rowcount == 1


def confirm_import(batch: ImportBatch, *, include_likely: bool, actor_id: int | None) -> str:
    """Import a previewed batch now, or queue it when it is large; return its new status."""
    large = batch.total_rows > inline_rows()
    after = ImportStatus.QUEUED if large else ImportStatus.IMPORTING
    if batch.status != ImportStatus.PREVIEWED or not _claim(batch, ImportStatus.PREVIEWED, after):
        raise ImportRefused(_("This file has already been imported, or is being imported."))
    if large:
        enqueue(IMPORT_JOB, batch_id=batch.id, include_likely=include_likely, actor_id=actor_id)
    else:
        import_or_fail(batch, include_likely=include_likely, actor_id=actor_id)
    db.session.flush()
    return batch.status


def _no_progress(processed: int) -> None:
    return None


def import_or_fail(
    batch: ImportBatch,
    *,
    include_likely: bool,
    actor_id: int | None,
    progress: Callable[[int], None] = _no_progress,
) -> None:
    """Write the batch's rows in a savepoint: all of them, or none and the batch failed."""
    # The uploader's language: labels in the file ("Cooperativa") read as in the preview.
    with force_locale(_locale_of(batch)):
        try:
            with db.session.begin_nested():
                _write_batch(batch, include_likely, actor_id, progress)
        except ImportRefused as exc:
            _fail(batch, str(exc))
        except Exception as exc:  # the database or a bug: the savepoint is gone; say so
            log.exception("Import batch %s failed; nothing was imported.", batch.id)
            _fail(batch, _failure_message(exc))


def _failure_message(exc: Exception) -> str:
    if isinstance(exc, pg_errors.UniqueViolation) or (
        isinstance(exc, IntegrityError) and "unique" in str(exc.orig).lower()
    ):
        return _(
            "A producer with a national id of this file was registered after the check. "
            "Nothing was imported: upload the file again to see it."
        )
    return _(
        "The import failed and nothing was imported. Upload the file again; if it fails "
        "again, tell us."
    )


def _fail(batch: ImportBatch, reason: str) -> None:
    batch.status = ImportStatus.FAILED
    batch.error = reason[:2000]
    batch.imported_rows = 0
    batch.finished_at = utcnow()
    db.session.flush()


def _chosen(row: RowResult, include_likely: bool) -> bool:
    if row.clean is None:
        return False
    return row.duplicate is None or (include_likely and row.duplicate["reason"] != SAME_ID)


def _stored_file(batch: ImportBatch) -> bytes:
    try:
        with storage().open(batch.storage_key) as handle:
            return handle.read()
    except (OSError, ValueError):
        message = _("The uploaded file is no longer available. Upload it again.")
        raise ImportRefused(message) from None


def _write_batch(
    batch: ImportBatch, include_likely: bool, actor_id: int | None, progress: Callable[[int], None]
) -> None:
    kind = rows_of(batch.kind, batch.program_id, known_duplicates=batch.duplicates or [])
    context = WriteContext(
        org_id=require_org_id(),
        actor_id=actor_id,
        now=utcnow(),
        batch_id=batch.id,
        postgresql=db.session.connection().dialect.name == "postgresql",
        capacity=batch.valid_rows,
    )
    processed = imported = 0
    data = _stored_file(batch)  # the uploaded file stays the record of what is imported
    kept = checked_chunks(batch, kind)
    first = next(kept, None)
    if first is not None:  # the preview's clean rows: written as they are, not checked again
        with kind.writer(context) as write:
            for reached, chunk in itertools.chain([first], kept):
                chosen = [row for row in chunk if _chosen(row, include_likely)]
                write(chosen)
                processed = reached
                imported += len(chosen)
                progress(processed)
    else:
        chunks = check_rows(read_upload(data), kind)
        reader = read_ahead(chunks) if kind.offline_review else nullcontext(chunks)
        with kind.writer(context) as write, reader as checked:
            for chunk in checked:
                chosen = [row for row in chunk if _chosen(row, include_likely)]
                write(chosen)
                processed += len(chunk)
                imported += len(chosen)
                progress(processed)
    batch.status = ImportStatus.DONE
    batch.processed_rows = processed
    batch.imported_rows = imported
    batch.finished_at = utcnow()
    db.session.flush()


_DONE = object()


def _put(queue: Queue, item: Any, stop: threading.Event) -> bool:
    """Put an item unless the reader's consumer has stopped; tell whether it was put."""
    while not stop.is_set():
        try:
            queue.put(item, timeout=0.1)
            return True
        except Full:
            continue
    return False


@contextmanager
def read_ahead(chunks: Iterator[T]) -> Iterator[Iterator[T]]:
    """Check chunks in a thread of its own while the caller writes the earlier ones.

    Checking rows is Python's work and writing them is the database's: in two threads both
    happen at once. The thread gets an app context and the caller's language (messages of
    the checks are translated); it never touches the database, and has no tenant in scope.
    """
    app, locale = current_app._get_current_object(), str(get_locale() or "en")
    queue: Queue = Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def produce() -> None:
        try:
            with app.app_context(), force_locale(locale):
                for chunk in chunks:
                    if not _put(queue, chunk, stop):
                        return
            _put(queue, _DONE, stop)
        except Exception as error:  # handed over: the caller raises it
            _put(queue, error, stop)

    def consume() -> Iterator[T]:
        while (item := queue.get()) is not _DONE:
            if isinstance(item, Exception):
                raise item
            yield item

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()


class ProgressWriter:
    """Write how far a background import got, where the page sees it before the commit."""

    def __init__(self, batch_id: int, org_id: int) -> None:
        self.batch_id, self.org_id = batch_id, org_id
        self.last = float("-inf")

    def __call__(self, processed: int) -> None:
        """Write the count of processed rows, at most every PROGRESS_INTERVAL seconds."""
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL:
            return
        self.last = now
        statement = (
            update(ImportBatch)
            .where(ImportBatch.id == self.batch_id, ImportBatch.org_id == self.org_id)
            .values(processed_rows=processed)
        )
        engine = db.engine
        if engine.dialect.name == "sqlite":
            # SQLite has one writer at a time: a second connection would wait for the import
            # to end. Progress rides in the import's transaction and shows when it commits.
            db.session.execute(statement, execution_options={"synchronize_session": False})
        elif isinstance(engine, Engine):
            # A transaction of its own, committed at once, while the import's stays open.
            with engine.begin() as connection:
                connection.execute(statement)
        # Otherwise (tests, which share one connection) it is busy with the COPY: the count
        # shows when the import ends.


def _locale_of(batch: ImportBatch) -> str:
    user = db.session.get(User, batch.created_by_id) if batch.created_by_id else None
    if user is not None and user.locale:
        return user.locale
    organization = db.session.get(Organization, batch.org_id)
    return organization.default_language if organization else "en"


@job(IMPORT_JOB)
def import_batch_job(
    batch_id: int, include_likely: bool = False, actor_id: int | None = None
) -> None:
    """Import a queued batch in one transaction, writing its progress as it goes."""
    batch = db.session.scalars(select(ImportBatch).where(ImportBatch.id == batch_id)).first()
    if batch is None or not _claim(batch, ImportStatus.QUEUED, ImportStatus.IMPORTING):
        return  # imported, failed, or taken by another delivery of this job
    db.session.commit()  # the page shows "importing" while the import's transaction runs
    progress = ProgressWriter(batch.id, batch.org_id)
    import_or_fail(batch, include_likely=include_likely, actor_id=actor_id, progress=progress)
    db.session.commit()
