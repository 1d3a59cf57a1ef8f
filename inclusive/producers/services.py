"""The producer registry: validation shared by forms and CSV imports, search, changes."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Integer, Select, and_, bindparam, exists, func, or_, select

from inclusive.audit.services import record
from inclusive.babelcache import lazy_gettext as _l
from inclusive.extensions import db
from inclusive.milestones.models import Enrollment
from inclusive.producers.models import Gender, Producer, ProducerKind, ProducerSector, Sector
from inclusive.programs.models import ProgramStateCount
from inclusive.refusals import Refused
from inclusive.tenancy.reads import ORG_ID, org_rows, org_statement

KIND_LABELS = {
    ProducerKind.INDIVIDUAL: _l("Individual"),
    ProducerKind.FAMILY_BUSINESS: _l("Family business"),
    ProducerKind.MICRO_ENTERPRISE: _l("Micro-enterprise"),
    ProducerKind.COOPERATIVE: _l("Cooperative"),
    ProducerKind.ASSOCIATION: _l("Association"),
}
GENDER_LABELS = {
    Gender.FEMALE: _l("Woman"),
    Gender.MALE: _l("Man"),
    Gender.MIXED: _l("Women and men (collective)"),
    Gender.OTHER: _l("Other"),
    Gender.UNDISCLOSED: _l("Not stated"),
}
SECTOR_LABELS = {
    Sector.AGRICULTURE: _l("Agriculture"),
    Sector.LIVESTOCK: _l("Livestock"),
    Sector.FISHING: _l("Fishing"),
    Sector.AGRIFOOD: _l("Food processing"),
    Sector.TEXTILES: _l("Textiles and clothing"),
    Sector.CRAFTS: _l("Crafts"),
    Sector.MANUFACTURING: _l("Manufacturing"),
    Sector.CONSTRUCTION: _l("Construction"),
    Sector.COMMERCE: _l("Retail and trade"),
    Sector.FOOD_SERVICE: _l("Food service"),
    Sector.TOURISM: _l("Tourism"),
    Sector.TRANSPORT: _l("Transport"),
    Sector.SERVICES: _l("Services"),
    Sector.TECHNOLOGY: _l("Technology"),
    Sector.RECYCLING: _l("Recycling"),
}

FIELD_LABELS = {
    "kind": _l("Kind"),
    "name": _l("Name"),
    "national_id": _l("National or tax id"),
    "representative": _l("Representative"),
    "owner_gender": _l("Owner's gender"),
    "phone": _l("Phone"),
    "email": _l("E-mail"),
    "region": _l("Region"),
    "municipality": _l("Municipality"),
    "sectors": _l("Sectors"),
    "employees": _l("Employees"),
    "formally_registered": _l("Formally registered"),
    "notes": _l("Notes"),
}

PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,24}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMPLOYEES = 250  # micro and small producers; beyond this the row is likely a typo

#: The fields of a producer, in the order of forms and CSV files.
FIELDS = (
    "kind",
    "name",
    "national_id",
    "representative",
    "owner_gender",
    "phone",
    "email",
    "region",
    "municipality",
    "sectors",
    "employees",
    "formally_registered",
    "notes",
)
LIMITS = {
    "name": 160,
    "national_id": 40,
    "representative": 160,
    "phone": 40,
    "email": 254,
    "region": 120,
    "municipality": 120,
    "notes": 4000,
}
TRUE_WORDS = {"1", "true", "yes", "y", "si", "sí", "s", "sim", "x"}
FALSE_WORDS = {"", "0", "false", "no", "n", "nao", "não"}


class ProducerError(Refused):
    """A producer change that is refused; ``errors`` maps fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def name_key(name: str) -> str:
    """Lowercase, accent-free, single-spaced: how names are sorted and searched."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(text.split())


_NON_DIGITS = re.compile(r"\D")
_SECTOR_SEPARATORS = re.compile(r"[;,|]")


def normalize_phone(phone: str) -> str:
    """Keep a leading + and the digits, so the same number is found however it was typed."""
    phone = phone.strip()
    digits = _NON_DIGITS.sub("", phone)
    return ("+" if phone.startswith("+") else "") + digits


@dataclass
class CleanProducer:
    """Validated producer fields, ready to be written."""

    values: dict[str, Any]
    sectors: list[str] = field(default_factory=list)


_CHOICE_VALUES: dict[type, frozenset[str]] = {}


def _choice(raw: str, enum: type, labels: Mapping[Any, Any]) -> str | None:
    values = _CHOICE_VALUES.get(enum)
    if values is None:  # built once per enum: the import checks every row with this
        values = _CHOICE_VALUES[enum] = frozenset(e.value for e in enum)
    if raw in values:  # a value as it is (most rows of a file): nothing to normalize
        return raw
    value = raw.strip().lower().replace(" ", "_").replace("-", "_")
    if value in values:
        return value
    for member, label in labels.items():  # a label in any language the user reads
        if raw.strip().lower() == str(label).lower():
            return member.value
    return None


def clean_producer(raw: Mapping[str, Any]) -> tuple[CleanProducer | None, dict[str, str]]:
    """Validate producer fields from a form or a CSV row; return the clean values or errors."""
    errors: dict[str, str] = {}
    text = {}
    for k in FIELDS:  # every field as stripped text (a loop: the import runs this per row)
        v = raw.get(k)
        text[k] = "" if v is None else (v if type(v) is str else str(v)).strip()
    for name, limit in LIMITS.items():
        if len(text[name]) > limit:
            errors[name] = _("At most %(n)d characters.", n=limit)

    kind = _choice(text["kind"], ProducerKind, KIND_LABELS) if text["kind"] else None
    if kind is None:
        errors["kind"] = _("Choose one of: %(choices)s.", choices=", ".join(ProducerKind))
    if not text["name"]:
        errors["name"] = _("A name is required.")
    gender = (
        _choice(text["owner_gender"], Gender, GENDER_LABELS)
        if text["owner_gender"]
        else Gender.UNDISCLOSED.value
    )
    if gender is None:
        errors["owner_gender"] = _("Choose one of: %(choices)s.", choices=", ".join(Gender))
    phone = text["phone"]
    if phone and not PHONE_RE.match(phone):
        errors["phone"] = _("Use digits, spaces and an optional leading +.")
    if text["email"] and not EMAIL_RE.match(text["email"]):
        errors["email"] = _("This is not an e-mail address.")
    sectors: list[str] = []
    raw_sectors = raw.get("sectors")
    parts = (
        raw_sectors
        if isinstance(raw_sectors, list | tuple)
        else _SECTOR_SEPARATORS.split(text["sectors"])
    )
    for part in parts:
        if not str(part).strip():
            continue
        sector = _choice(str(part), Sector, SECTOR_LABELS)
        if sector is None:
            errors["sectors"] = _("Unknown sector %(value)s.", value=str(part).strip()[:40])
        elif sector not in sectors:
            sectors.append(sector)
    employees = 0
    if text["employees"]:
        try:
            employees = int(text["employees"])
            if not 0 <= employees <= MAX_EMPLOYEES:
                raise ValueError
        except ValueError:
            errors["employees"] = _("A whole number from 0 to %(n)d.", n=MAX_EMPLOYEES)
    formal = text["formally_registered"].lower()
    if formal in TRUE_WORDS:
        formally_registered = True
    elif formal in FALSE_WORDS:
        formally_registered = False
    else:
        errors["formally_registered"] = _("Use yes or no.")
        formally_registered = False
    if errors:
        return None, errors
    values = {
        "kind": kind,
        "name": " ".join(text["name"].split()),
        "name_key": name_key(text["name"]),
        "national_id": text["national_id"].upper().replace(" ", "") or None,
        "representative": text["representative"],
        "owner_gender": gender,
        "phone": normalize_phone(phone) if phone else "",
        "email": text["email"].lower(),
        "region": " ".join(text["region"].split()),
        "municipality": " ".join(text["municipality"].split()),
        "employees": employees,
        "formally_registered": formally_registered,
        "notes": text["notes"],
    }
    return CleanProducer(values, sectors), {}


def _national_id_taken(national_id: str | None, exclude_id: int | None = None) -> bool:
    if not national_id:
        return False
    query = select(Producer.id).where(Producer.national_id == national_id)
    if exclude_id is not None:
        query = query.where(Producer.id != exclude_id)
    return db.session.scalar(query.limit(1)) is not None


def create_producer(raw: Mapping[str, Any]) -> Producer:
    """Register a producer in the organization in scope."""
    clean, errors = clean_producer(raw)
    if clean is None:
        raise ProducerError(errors)
    if _national_id_taken(clean.values["national_id"]):
        raise ProducerError({"national_id": _("Another producer already has this id.")})
    producer = Producer(**clean.values)
    producer.sector_rows = [ProducerSector(sector=s) for s in clean.sectors]
    db.session.add(producer)
    db.session.flush()
    record("producer.registered", producer_id=producer.id, name=producer.name)
    return producer


def update_producer(producer: Producer, raw: Mapping[str, Any]) -> None:
    """Change a producer's fields; the timeline says which changed."""
    clean, errors = clean_producer(raw)
    if clean is None:
        raise ProducerError(errors)
    if _national_id_taken(clean.values["national_id"], exclude_id=producer.id):
        raise ProducerError({"national_id": _("Another producer already has this id.")})
    changed = {
        key: [getattr(producer, key), value]
        for key, value in clean.values.items()
        if key != "name_key" and getattr(producer, key) != value
    }
    for key, value in clean.values.items():
        setattr(producer, key, value)
    if sorted(producer.sectors) != sorted(clean.sectors):
        changed["sectors"] = [producer.sectors, clean.sectors]
        keep = {row.sector: row for row in producer.sector_rows}
        producer.sector_rows = [keep.get(s) or ProducerSector(sector=s) for s in clean.sectors]
    if changed:
        record("producer.updated", producer_id=producer.id, changes=changed)


@dataclass
class ProducerFilters:
    """What the producer list is filtered by (all optional)."""

    q: str = ""
    program_id: int | None = None
    region: str = ""
    sector: str = ""
    state: str = ""
    at_risk: bool = False

    def is_empty(self) -> bool:
        return not (
            self.q or self.program_id or self.region or self.sector or self.state or self.at_risk
        )


def filtered_producers(filters: ProducerFilters, *columns: Any) -> Select:
    """A query of the producers matching the filters, ordered by name (whole producers, or
    the ``columns`` given)."""
    query = select(*columns) if columns else select(Producer)
    q = filters.q.strip()
    if q:
        digits = re.sub(r"\D", "", q)
        conditions = [Producer.name_key.contains(name_key(q), autoescape=True)]
        conditions.append(Producer.national_id == q.upper().replace(" ", ""))
        if len(digits) >= 6:
            conditions.append(Producer.phone.endswith(digits, autoescape=True))
        query = query.where(or_(*conditions))
    if filters.region:
        query = query.where(Producer.region == filters.region)
    if filters.sector:
        query = query.where(
            exists().where(
                ProducerSector.producer_id == Producer.id,
                ProducerSector.org_id == Producer.org_id,
                ProducerSector.sector == filters.sector,
            )
        )
    enrollment_conditions = []
    if filters.program_id:
        enrollment_conditions.append(Enrollment.program_id == filters.program_id)
    if filters.state:
        enrollment_conditions.append(Enrollment.state == filters.state)
    if filters.at_risk:
        enrollment_conditions.append(Enrollment.at_risk.is_(True))
    if enrollment_conditions:
        few = _few_enrolled(filters)
        if few is not None:
            # A small cohort: look its producers up by id rather than walking the whole
            # registry in name order, probing each one (seconds at a million producers).
            query = query.where(Producer.id.in_(few))
        else:
            query = query.where(
                exists().where(
                    Enrollment.producer_id == Producer.id,
                    Enrollment.org_id == Producer.org_id,
                    and_(*enrollment_conditions),
                )
            )
    return query.order_by(Producer.name_key, Producer.id)


SMALL_COHORT = 5000


def _few_enrolled(filters: ProducerFilters) -> list[int] | None:
    """The producer ids of a program (and state) filter when they are few, from the counters."""
    if not filters.program_id:
        return None
    counts = select(func.coalesce(func.sum(ProgramStateCount.n), 0)).where(
        ProgramStateCount.program_id == filters.program_id
    )
    if filters.state:
        counts = counts.where(ProgramStateCount.state == filters.state)
    if db.session.scalar(counts) > SMALL_COHORT:
        return None
    ids = select(Enrollment.producer_id).where(Enrollment.program_id == filters.program_id)
    if filters.state:
        ids = ids.where(Enrollment.state == filters.state)
    if filters.at_risk:
        ids = ids.where(Enrollment.at_risk.is_(True))
    return list(db.session.scalars(ids))


@dataclass(slots=True)
class ListedProducer:
    """A producer as the list shows it: a few columns and the sectors, not the ORM object."""

    id: int
    name: str
    national_id: str | None
    kind: str
    region: str
    municipality: str
    phone: str
    sectors: list[str] = field(default_factory=list)
    # What the page prints, in the reader's language (filled by the view).
    kind_label: str = ""
    sectors_label: str = ""
    select_label: str = ""


LIST_COLUMNS = (
    Producer.id,
    Producer.name,
    Producer.national_id,
    Producer.kind,
    Producer.region,
    Producer.municipality,
    Producer.phone,
)


def _like_escaped(value: str) -> str:
    """A value for LIKE … ESCAPE '/', as SQLAlchemy's ``autoescape`` writes it."""
    return value.replace("/", "//").replace("%", "/%").replace("_", "/_")


@functools.cache
def _list_statement(
    q: bool, phone: bool, region: bool, sector: bool, enrolled: tuple[bool, bool, bool] | None
) -> Select:
    """The list's statement for one shape of filters (which are set, not their values),
    built once: a Core statement of explicit columns, every value and the organization bound
    (see inclusive.tenancy.reads). ``enrolled``: None, () for a small cohort's ids, or which
    of program, state and at risk an enrollment must match. The same rows, in the same order,
    as ``filtered_producers`` with the list's columns."""
    p, s, e = Producer.__table__, ProducerSector.__table__, Enrollment.__table__
    # A producer's sectors in one string (the order is set in Python: SQLite has no ordered
    # aggregate). Sector values hold no comma.
    sectors = (
        select(func.aggregate_strings(s.c.sector, ","))
        .where(s.c.producer_id == p.c.id, s.c.org_id == p.c.org_id)
        .scalar_subquery()
    )
    query = select(*(p.c[c.key] for c in LIST_COLUMNS), sectors.label("sectors")).where(
        p.c.org_id == bindparam(ORG_ID)
    )
    if q:
        conditions = [
            p.c.name_key.like(bindparam("q_key"), escape="/"),
            p.c.national_id == bindparam("q_id"),
        ]
        if phone:
            conditions.append(p.c.phone.like(bindparam("q_phone"), escape="/"))
        query = query.where(or_(*conditions))
    if region:
        query = query.where(p.c.region == bindparam("region"))
    if sector:
        query = query.where(
            exists().where(
                s.c.producer_id == p.c.id,
                s.c.org_id == p.c.org_id,
                s.c.sector == bindparam("sector"),
            )
        )
    if enrolled == ():
        query = query.where(p.c.id.in_(bindparam("few", expanding=True)))
    elif enrolled is not None:
        by_program, by_state, at_risk = enrolled
        conditions = [e.c.producer_id == p.c.id, e.c.org_id == p.c.org_id]
        if by_program:
            conditions.append(e.c.program_id == bindparam("program_id"))
        if by_state:
            conditions.append(e.c.state == bindparam("state"))
        if at_risk:
            conditions.append(e.c.at_risk.is_(True))
        query = query.where(exists().where(*conditions))
    query = query.order_by(p.c.name_key, p.c.id)
    # The page's bounds are written into the SQL (a statement per page): PostgreSQL can then
    # keep one plan for it, where a LIMIT it cannot see made it plan the query every time.
    return org_statement(
        query.offset(bindparam("offset", type_=Integer, literal_execute=True)).limit(
            bindparam("limit", type_=Integer, literal_execute=True)
        )
    )


def producer_page(
    filters: ProducerFilters, page: int, per_page: int = 50
) -> tuple[list[ListedProducer], bool]:
    """One page of the filtered list, and whether there is a next page (no costly count).

    One statement of the list's columns with each producer's sectors, built once per shape
    of filters: no ORM objects are built for a page that only prints them."""
    page = max(page, 1)
    params: dict[str, Any] = {"offset": (page - 1) * per_page, "limit": per_page + 1}
    q = filters.q.strip()
    digits = re.sub(r"\D", "", q)
    if q:
        params["q_key"] = f"%{_like_escaped(name_key(q))}%"
        params["q_id"] = q.upper().replace(" ", "")
        if len(digits) >= 6:
            params["q_phone"] = f"%{_like_escaped(digits)}"
    if filters.region:
        params["region"] = filters.region
    if filters.sector:
        params["sector"] = filters.sector
    enrolled: tuple[bool, ...] | None = None
    if filters.program_id or filters.state or filters.at_risk:
        few = _few_enrolled(filters)
        if few is not None:
            # A small cohort: look its producers up by id rather than walking the whole
            # registry in name order, probing each one (seconds at a million producers).
            enrolled, params["few"] = (), few
        else:
            enrolled = (bool(filters.program_id), bool(filters.state), filters.at_risk)
            if filters.program_id:
                params["program_id"] = filters.program_id
            if filters.state:
                params["state"] = filters.state
    statement = _list_statement(
        bool(q), len(digits) >= 6, bool(filters.region), bool(filters.sector), enrolled
    )
    rows = [
        ListedProducer(*row[:-1], sectors=sorted(row[-1].split(",")) if row[-1] else [])
        for row in org_rows(statement, **params)
    ]
    shown = rows[:per_page]
    return shown, len(rows) > per_page
