"""Build a bench database: the schema, then one large organization and one small one.

    python -m bench.generate --scale 20000 [--database postgresql://...]

The organization ``bench`` gets ``scale`` producers, ten programs of the six kinds (made by
``create_program``, so their milestone templates are the real ones), three enrollments per
producer in realistic states, the eight-milestone plan of every enrollment, progress and
at-risk flags that agree with the plans, and monthly figures, diagnostics and purchases
for a subset. A second organization (``bench-other``, 1% of the size) makes the tenant
filter real.

Organizations, users and programs go through the platform's services. The bulk goes in
with psycopg's COPY (producers, sectors, enrollments, figures; ids preallocated) and, for
the plans and the audit trail, with INSERT ... SELECT inside PostgreSQL (a plan is a copy
of the program's template steps, which is what ``enroll`` does). Foreign keys and
secondary indexes of the big tables are dropped during the load and recreated after it,
then the tables are vacuumed and analyzed.

Random streams are per organization and per kind of row, so producer number i is the same
at every scale: the pages measured at 1,000 and at 1,000,000 producers show the same data.
A database that already holds the same scale (table ``bench_meta``) is left as it is.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from bench import common

GENERATOR_VERSION = 2
ORG_CODE = "BE"
OTHER_CODE = "OT"
BATCH = 20_000  # producers per COPY batch

BIG_TABLES = (
    "producers",
    "producer_sectors",
    "enrollments",
    "milestones",
    "evidence",
    "audit_events",
    "economic_snapshots",
    "viability_assessments",
    "offtake_purchases",
)

# fmt: off
REGIONS: list[tuple[str, int, tuple[str, ...]]] = [
    ("Cusco", 14, ("Cusco", "Urubamba", "Calca", "Quillabamba", "Sicuani", "Anta")),
    ("Puno", 10, ("Puno", "Juliaca", "Ayaviri", "Azángaro", "Ilave")),
    ("Lima", 9, ("Lima", "Huaral", "Cañete", "Huacho", "Barranca")),
    ("Arequipa", 8, ("Arequipa", "Camaná", "Chivay", "Mollendo")),
    ("Junín", 7, ("Huancayo", "Tarma", "Jauja", "Satipo")),
    ("Cajamarca", 6, ("Cajamarca", "Jaén", "Chota", "Cutervo")),
    ("Piura", 6, ("Piura", "Sullana", "Paita", "Chulucanas")),
    ("Ayacucho", 5, ("Huamanga", "Huanta", "Puquio")),
    ("Huánuco", 5, ("Huánuco", "Tingo María", "Ambo")),
    ("La Libertad", 5, ("Trujillo", "Chepén", "Otuzco")),
    ("Áncash", 4, ("Huaraz", "Chimbote", "Caraz")),
    ("Apurímac", 4, ("Abancay", "Andahuaylas")),
    ("Loreto", 3, ("Iquitos", "Yurimaguas")),
    ("San Martín", 3, ("Tarapoto", "Moyobamba", "Juanjuí")),
    ("Lambayeque", 3, ("Chiclayo", "Ferreñafe")),
    ("Ica", 2, ("Ica", "Chincha", "Pisco")),
    ("Amazonas", 2, ("Chachapoyas", "Bagua")),
    ("Huancavelica", 2, ("Huancavelica", "Lircay")),
    ("Tacna", 1, ("Tacna",)),
    ("Moquegua", 1, ("Moquegua", "Ilo")),
]
FIRST_NAMES = (
    "Rosa", "María", "Lucía", "Carmen", "Juana", "Elena", "Sonia", "Flor", "Nélida",
    "Yolanda", "Marisol", "Teresa", "Ana", "Gladys", "Julia", "Norma", "Olga", "Luz",
    "Pilar", "Rocío", "Juan", "José", "Luis", "Carlos", "Jorge", "Pedro", "Miguel",
    "Víctor", "Julián", "Martín", "Raúl", "Edwin", "Wilber", "Fredy", "Hugo", "César",
    "Néstor", "Félix", "Andrés", "Efraín",
)
SURNAMES = (
    "Quispe", "Mamani", "Huamán", "Condori", "Flores", "Ccama", "Choque", "Apaza", "Rojas",
    "Gutiérrez", "Vargas", "Ramos", "Torres", "Cruz", "Huarca", "Sánchez", "Chávez",
    "Mendoza", "Díaz", "Ticona", "Pari", "Yupanqui", "Layme", "Cáceres", "Ñahui", "Puma",
    "Cusi", "Laura", "Salazar", "Castillo", "Paucar", "Villca", "Arias", "Ortiz",
    "Palomino", "Soto",
)
PRODUCTS = (
    "lácteos", "quesos", "cafés", "tejidos", "cerámicas", "panes", "mermeladas", "mieles",
    "quinua", "cacao", "truchas", "alpaca", "hortalizas", "frutas", "artesanías", "muebles",
    "chocolates", "hierbas", "papas", "maíz",
)
PLACES = (
    "San Juan", "Santa Rosa", "San Pedro", "Los Andes", "El Valle", "Nueva Esperanza",
    "Virgen del Carmen", "Señor de Huanca", "Pachamama", "Inti Raymi", "Las Flores", "Wiñay",
)
SECTORS = (
    ("agriculture", 22), ("livestock", 12), ("agrifood", 12), ("textiles", 9),
    ("crafts", 9), ("commerce", 9), ("food_service", 6), ("fishing", 3), ("tourism", 4),
    ("manufacturing", 4), ("services", 4), ("construction", 2), ("transport", 2),
    ("technology", 1), ("recycling", 1),
)
KINDS = (
    ("individual", 50), ("family_business", 20), ("micro_enterprise", 15),
    ("cooperative", 8), ("association", 7),
)
GENDERS = (("female", 48), ("male", 38), ("mixed", 8), ("undisclosed", 6))
# fmt: on


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    kind: str
    status: str
    weight: int  # how popular: the share of producers that enroll
    started_days_ago: int
    counterpart_kind: str
    counterpart_name: str
    ended_days_ago: int | None = None


# fmt: off
BENCH_PROGRAMS = (
    ProgramSpec(common.BIG_PROGRAM, "supplier_program", "running", 14, 1000,
                "lead_corporation", "Lácteos Andinos S.A."),
    ProgramSpec("Red rural del café de Quillabamba", "rural_network", "running", 13, 900,
                "agro_industry", "Cafetalera del Sur S.A.C."),
    ProgramSpec("Centro de servicios empresariales Cusco", "service_center", "running", 12, 800,
                "institute", "Cámara de Comercio del Cusco"),
    ProgramSpec("Franquicia de bodegas Mi Tiendita", "franchise_system", "running", 11, 700,
                "franchisor", "Mi Tiendita Franquicias S.A."),
    ProgramSpec("Consorcio exportador de fibra de alpaca", "export_consortium", "running", 10, 950,
                "other", "Consorcio Alpaca Perú"),
    ProgramSpec("Vinculación tecnológica textil", "technology_linkage", "running", 10, 600,
                "institute", "Instituto Tecnológico Textil"),
    ProgramSpec("Proveedores de quinua orgánica", "supplier_program", "running", 9, 500,
                "lead_corporation", "Granos del Altiplano S.A."),
    ProgramSpec("Red rural de cacao amazónico", "rural_network", "open", 8, 60,
                "agro_industry", "Cacao Amazonía S.A.C."),
    ProgramSpec("Centro de servicios Puno", "service_center", "running", 7, 450,
                "institute", "Universidad Nacional del Altiplano"),
    ProgramSpec("Franquicia de panaderías (primera cohorte)", "franchise_system", "closed", 6, 1200,
                "franchisor", "Panaderías El Trigal", ended_days_ago=300),
)
OTHER_PROGRAMS = (
    ProgramSpec("Proveedores de frutas del valle", "supplier_program", "running", 10, 700,
                "lead_corporation", "Frutas del Valle S.A."),
    ProgramSpec("Centro de servicios Trujillo", "service_center", "running", 8, 500,
                "institute", "Cámara de Comercio de La Libertad"),
    ProgramSpec("Red rural del mango", "rural_network", "running", 6, 400,
                "agro_industry", "Mango Norte S.A.C."),
)
OFFTAKE_KINDS = {"supplier_program", "rural_network"}
WITHDRAWAL_REASONS = (
    "Se mudó a otra región.", "Cerró el negocio.", "No pudo asistir a las capacitaciones.",
    "Prefirió vender a otro comprador.", "Problemas de salud en la familia."
)
# fmt: on


@dataclass
class ProgramInfo:
    id: int
    spec: ProgramSpec
    offsets: list[int]
    weights: list[int]
    step_ids: list[int]
    step_names: list[str]


@dataclass
class OrgPlan:
    """What one organization gets: its size, programs, users."""

    org_id: int
    code: str
    size: int
    seed: int
    programs: list[ProgramInfo]
    admin_id: int
    officer_ids: list[int]
    featured: int | None = None
    counts: dict[str, int] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"  [generate] {message}", flush=True)


# Databases -----------------------------------------------------------------------------


def current_marker(url: str) -> dict[str, Any] | None:
    """The bench_meta row of a database, or None (missing database, table or row)."""
    name = common.database_name(url)
    if not common.database_exists(common.with_database(url, "postgres"), name):
        return None
    with common.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('public.bench_meta')").fetchone()[0]
        if exists is None:
            return None
        cursor = conn.execute("SELECT * FROM bench_meta")
        row = cursor.fetchone()
        names = [d.name for d in cursor.description]
    if row is None:
        return None
    return dict(zip(names, row, strict=True))


def recreate_database(url: str) -> None:
    """Start from an empty database: drop and create it (bench databases only)."""
    name = common.database_name(url)
    if not name.startswith("inclusive_bench"):
        raise SystemExit(
            f"Refusing to wipe database {name!r}: bench databases are named inclusive_bench*."
        )
    server = common.with_database(url, "postgres")
    with common.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def ensure(url: str, scale: int) -> dict[str, Any]:
    """Make sure ``url`` holds a bench database of ``scale`` producers; return its facts."""
    marker = current_marker(url)
    if marker and marker["scale"] == scale and marker["version"] == GENERATOR_VERSION:
        missing = upgrade_schema(url)  # migrations and model changes since then
        if not missing:
            if marker.get("schema") != schema_fingerprint():
                recount_counters(url)  # a new counter may have come with the new schema
                _store_fingerprint(url)
            log(
                f"{common.database_name(url)} already holds {scale:,} producers "
                f"(generated {marker['generated_at']:%Y-%m-%d %H:%M} in {marker['seconds']:.0f} s)"
            )
            return {**marker, "reused": True}
        log(f"the models have columns the database lacks ({', '.join(missing[:5])}): rebuilding")
    started = time.monotonic()
    log(f"building {common.database_name(url)} with {scale:,} producers")
    recreate_database(url)
    missing = upgrade_schema(url)
    if missing:
        raise SystemExit(f"The migrations do not create these model columns: {missing}")
    rows = fill(url, scale)
    recount_counters(url)
    seconds = time.monotonic() - started
    with common.connect(url) as conn:
        conn.execute(
            "CREATE TABLE bench_meta (scale integer NOT NULL, version integer NOT NULL, "
            "seconds double precision NOT NULL, rows jsonb NOT NULL, schema text NOT NULL, "
            "generated_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO bench_meta (scale, version, seconds, rows, schema) "
            "VALUES (%s, %s, %s, %s, %s)",
            (scale, GENERATOR_VERSION, seconds, json.dumps(rows), schema_fingerprint()),
        )
    total = sum(rows.values())
    size = common.database_size(url)
    log(f"done: {total:,} rows in {seconds:.0f} s, database size {size / 2**30:.2f} GiB")
    return {
        "scale": scale,
        "version": GENERATOR_VERSION,
        "seconds": seconds,
        "rows": rows,
        "reused": False,
    }


def _store_fingerprint(url: str) -> None:
    with common.connect(url) as conn:
        conn.execute("UPDATE bench_meta SET schema = %s", (schema_fingerprint(),))


def schema_fingerprint() -> str:
    """A digest of the DDL the models describe (tables, columns, indexes)."""
    import hashlib

    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    import inclusive.models  # noqa: F401 - every model registers its table
    from inclusive.extensions import db

    dialect = postgresql.dialect()
    parts = []
    for table in sorted(db.metadata.tables.values(), key=lambda t: t.name):
        parts.append(str(CreateTable(table).compile(dialect=dialect)))
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            parts.append(str(CreateIndex(index).compile(dialect=dialect)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def upgrade_schema(url: str) -> list[str]:
    """`flask db upgrade`, then what the models have and the database lacks.

    Missing tables are created (create_all) and missing indexes too (a migration edited in
    place is not run again); missing columns are returned: the database must be rebuilt.
    """
    import logging

    from flask_migrate import upgrade
    from sqlalchemy import inspect
    from sqlalchemy.schema import CreateIndex

    from inclusive.extensions import db

    app = common.make_app(url)
    with app.app_context():
        upgrade()
        logging.getLogger("alembic").setLevel(logging.WARNING)
        db.create_all()
        inspector = inspect(db.engine)
        missing: list[str] = []
        for table in db.metadata.tables.values():
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in columns]
            indexes = {i["name"] for i in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in indexes and not missing:
                    log(f"creating index {index.name} (in the models, not in the database)")
                    with db.engine.begin() as connection:
                        connection.execute(CreateIndex(index))
                        connection.exec_driver_sql(f"ANALYZE {table.name}")
        db.session.remove()
        db.engine.dispose()
    return missing


def recount_counters(url: str) -> None:
    """Rebuild the platform's denormalized counters with its own code (after a bulk load)."""
    try:
        from inclusive.milestones import stats
    except ImportError:
        return
    if not hasattr(stats, "recount"):
        log("inclusive.milestones.stats has no recount(): counters left as loaded")
        return
    from sqlalchemy import select

    from inclusive.extensions import db
    from inclusive.programs.models import Program
    from inclusive.tenancy.models import Organization
    from inclusive.tenancy.scope import tenant_scope

    started = time.monotonic()
    app = common.make_app(url)
    with app.app_context():
        for org_id in db.session.scalars(select(Organization.id)).all():
            with tenant_scope(org_id):
                for program_id in db.session.scalars(select(Program.id)).all():
                    stats.recount(program_id)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    log(f"counters rebuilt by stats.recount: {time.monotonic() - started:.1f} s")


# Organizations, users and programs, through the platform's services ---------------------


def _setup_orgs(url: str, scale: int) -> list[OrgPlan]:
    from sqlalchemy import select

    from inclusive.auth.models import User
    from inclusive.auth.passwords import hash_password
    from inclusive.extensions import db
    from inclusive.programs import services as programs
    from inclusive.programs.models import ProgramKind, ProgramStatus, TemplateStep
    from inclusive.tenancy.models import Membership, Organization
    from inclusive.tenancy.roles import Role
    from inclusive.tenancy.scope import tenant_scope
    from inclusive.timeutil import utcnow

    app = common.make_app(url)
    today = utcnow().date()
    password_hash = hash_password(common.random_password())  # nobody logs in with it
    plans: list[OrgPlan] = []
    with app.test_request_context():

        def user(email: str, name: str) -> User:
            row = User(email=email, name=name, locale="es", password_hash=password_hash)
            db.session.add(row)
            db.session.flush()
            return row

        admin = user(common.ADMIN_EMAIL, "Ana Benavides (bench)")
        orgs = (
            (
                common.ORG_SLUG,
                "Bench: desarrolladora de emprendimientos inclusivos",
                ORG_CODE,
                scale,
                1,
                BENCH_PROGRAMS,
                admin,
            ),
            (
                common.OTHER_SLUG,
                "Otra desarrolladora (bench)",
                OTHER_CODE,
                max(200, scale // 100),
                2,
                OTHER_PROGRAMS,
                user(common.OTHER_ADMIN_EMAIL, "Otro Admin"),
            ),
        )
        for slug, name, code, size, seed, specs, org_admin in orgs:
            org = Organization(
                slug=slug, name=name, country="PE", default_language="es", currency="PEN"
            )
            db.session.add(org)
            db.session.flush()
            with tenant_scope(org.id):
                db.session.add(Membership(user_id=org_admin.id, role=Role.ADMIN))
                if org_admin is not admin:
                    db.session.add(Membership(user_id=admin.id, role=Role.VIEWER))
                manager = user(f"manager@{slug}.example", f"Gestora {name[:20]}")
                db.session.add(Membership(user_id=manager.id, role=Role.PROGRAM_MANAGER))
                officers = [
                    user(f"officer{i}@{slug}.example", f"{FIRST_NAMES[i]} {SURNAMES[i]} (campo)")
                    for i in range(6)
                ]
                for officer in officers:
                    db.session.add(Membership(user_id=officer.id, role=Role.FIELD_OFFICER))
                db.session.flush()
                infos = []
                for index, spec in enumerate(specs):
                    program = programs.create_program(
                        org,
                        ProgramKind(spec.kind),
                        name=spec.name,
                        description=f"Programa de {spec.kind.replace('_', ' ')} (bench).",
                        region=REGIONS[index % len(REGIONS)][0],
                        start_date=today - timedelta(days=spec.started_days_ago),
                        end_date=(
                            today - timedelta(days=spec.ended_days_ago)
                            if spec.ended_days_ago
                            else None
                        ),
                        counterpart_kind=spec.counterpart_kind,
                        counterpart_name=spec.counterpart_name,
                        counterpart_contact="María Contacto",
                        counterpart_email="contacto@contraparte.example",
                        counterpart_phone="+51 84 123456",
                    )
                    if spec.status != ProgramStatus.DRAFT:
                        programs.set_status(program, ProgramStatus(spec.status))
                    for officer in officers[index % 3 :: 3]:
                        programs.assign_officer(program, officer.id)
                    steps = list(
                        db.session.scalars(
                            select(TemplateStep)
                            .filter_by(program_id=program.id)
                            .order_by(TemplateStep.position)
                        )
                    )
                    infos.append(
                        ProgramInfo(
                            program.id,
                            spec,
                            [s.offset_days for s in steps],
                            [s.weight for s in steps],
                            [s.id for s in steps],
                            [s.name for s in steps],
                        )
                    )
                db.session.flush()
            plans.append(
                OrgPlan(
                    org_id=org.id,
                    code=code,
                    size=size,
                    seed=seed,
                    programs=infos,
                    admin_id=org_admin.id,
                    officer_ids=[o.id for o in officers],
                    featured=common.FEATURED_INDEX if slug == common.ORG_SLUG else None,
                )
            )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return plans


# Rows ----------------------------------------------------------------------------------


def _weighted(pairs: Sequence[tuple[Any, int]]) -> tuple[list[Any], list[int]]:
    values = [p[0] for p in pairs]
    cumulative, total = [], 0
    for _value, weight in pairs:
        total += weight
        cumulative.append(total)
    return values, cumulative


class Streams:
    """Independent random streams per kind of row: producer i is the same at every scale."""

    def __init__(self, seed: int) -> None:
        self.producer = random.Random(seed * 1000 + 1)
        self.enroll = random.Random(seed * 1000 + 2)
        self.figures = random.Random(seed * 1000 + 3)


def _person(rng: random.Random) -> str:
    first = rng.choice(FIRST_NAMES)
    if rng.random() < 0.3:
        first += " " + rng.choice(FIRST_NAMES)
    return f"{first} {rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"


def _producer_name(rng: random.Random, kind: str, municipality: str) -> tuple[str, str]:
    """The name and, for collectives and firms, the representative."""
    if kind == "individual":
        return _person(rng), ""
    product = rng.choice(PRODUCTS)
    if kind == "family_business":
        return f"{product.capitalize()} familia {rng.choice(SURNAMES)}", _person(rng)
    if kind == "micro_enterprise":
        return f"{product.capitalize()} {rng.choice(SURNAMES)} E.I.R.L.", _person(rng)
    if kind == "cooperative":
        return f"Cooperativa de {product} {rng.choice(PLACES)} de {municipality}", _person(rng)
    return f"Asociación de productores de {product} {rng.choice(PLACES)}", _person(rng)


class Generator:
    """Rows of one organization, producer after producer."""

    def __init__(
        self, plan: OrgPlan, today: date, first_producer_id: int, first_enrollment_id: int
    ) -> None:
        from inclusive.producers.services import name_key

        self.plan = plan
        self.today = today
        self.name_key = name_key
        self.streams = Streams(plan.seed)
        self.next_producer = first_producer_id
        self.next_enrollment = first_enrollment_id
        self.regions, self.region_cum = _weighted([(r, w) for r, w, _m in REGIONS])
        self.municipalities = {r: m for r, _w, m in REGIONS}
        self.kinds, self.kind_cum = _weighted(KINDS)
        self.genders, self.gender_cum = _weighted(GENDERS)
        self.sectors, self.sector_cum = _weighted(SECTORS)
        self.program_weights = [p.spec.weight for p in plan.programs]
        self.now = datetime.combine(today, datetime.min.time()) + timedelta(hours=9)

    # Producers ---------------------------------------------------------------------------

    def producer(self, index: int) -> tuple[tuple, list[tuple]]:
        rng = self.streams.producer
        pid = self.next_producer
        self.next_producer += 1
        kind = rng.choices(self.kinds, cum_weights=self.kind_cum)[0]
        region = rng.choices(self.regions, cum_weights=self.region_cum)[0]
        municipality = rng.choice(self.municipalities[region])
        name, representative = _producer_name(rng, kind, municipality)
        featured = index == self.plan.featured
        gender = (
            "mixed"
            if kind in ("cooperative", "association") and rng.random() < 0.6
            else (rng.choices(self.genders, cum_weights=self.gender_cum)[0])
        )
        has_id = featured or rng.random() < 0.85
        phone = f"+519{rng.randrange(10**8):08d}" if featured or rng.random() < 0.9 else ""
        email = f"p{index}@correo-{self.plan.code.lower()}.example" if rng.random() < 0.3 else ""
        created = self.now - timedelta(days=rng.randrange(1100), minutes=rng.randrange(600))
        row = (
            pid,
            self.plan.org_id,
            kind,
            name,
            self.name_key(name),
            common.national_id(self.plan.code, index) if has_id else None,
            representative,
            gender,
            phone,
            email,
            region,
            municipality,
            rng.randrange(13) if kind != "individual" else rng.randrange(3),
            rng.random() < 0.35,
            "",
            created,
            created,
        )
        count = 1 if rng.random() < 0.7 else (2 if rng.random() < 0.83 else 3)
        chosen: list[str] = []
        while len(chosen) < count:
            sector = rng.choices(self.sectors, cum_weights=self.sector_cum)[0]
            if sector not in chosen:
                chosen.append(sector)
        return row, [(self.plan.org_id, pid, s) for s in chosen]

    # Enrollments -------------------------------------------------------------------------

    def enrollments(
        self, index: int, producer_id: int
    ) -> tuple[list[tuple], list[tuple], list[int]]:
        """Three enrollments, their plan staging rows, and the offtake programs to buy from."""
        rng = self.streams.enroll
        programs = self.plan.programs
        featured = index == self.plan.featured
        if featured:
            picks = [0, 1, 2]
        else:
            picks = []
            while len(picks) < min(3, len(programs)):
                pick = rng.choices(range(len(programs)), weights=self.program_weights)[0]
                if pick not in picks:
                    picks.append(pick)
        rows, staging, offtake_programs = [], [], []
        for number, pick in enumerate(picks):
            program = programs[pick]
            row, stage = self._enrollment(rng, program, producer_id, featured and number == 0)
            rows.append(row)
            staging.append(stage)
            if program.spec.kind in OFFTAKE_KINDS and row[4] in ("active", "paused", "graduated"):
                offtake_programs.append(program.id)
        return rows, staging, offtake_programs

    def _enrollment(
        self, rng: random.Random, program: ProgramInfo, producer_id: int, force_risk: bool
    ) -> tuple[tuple, tuple]:
        spec = program.spec
        offsets, weights = program.offsets, program.weights
        steps = len(offsets)
        if spec.status == "closed":
            # Enrolled in the first months; the program ended ended_days_ago.
            age = spec.started_days_ago - rng.randrange(120)
        elif spec.status == "open" or spec.started_days_ago < 90:
            age = rng.randrange(max(spec.started_days_ago, 1))
        else:
            age = rng.randrange(spec.started_days_ago)
        if force_risk:
            age = max(age, offsets[2] + 5)
        enrolled_on = self.today - timedelta(days=age)
        applied_on = enrolled_on - timedelta(days=rng.randrange(30))
        past = sum(1 for o in offsets if o < age)  # milestones due before today
        r = rng.random()
        ended_on = None
        reason = ""
        open_status = ""
        at_risk = False
        if spec.status == "closed":
            state = "graduated" if r < 0.7 else "withdrawn"
        elif force_risk:
            state = "active"
        elif past == steps and r < 0.55:
            state = "graduated"
        elif r < 0.08:
            state = "withdrawn"
        elif r < 0.13:
            state = "paused"
        elif age < 21:
            state = "enrolled"
        else:
            state = "active"
        if state == "graduated":
            done, code = steps, "G"
            end = enrolled_on + timedelta(days=offsets[-1] + rng.randrange(30))
            ended_on = min(end, self.today - timedelta(days=spec.ended_days_ago or 0))
            ended_on = max(ended_on, enrolled_on)
        elif state == "withdrawn":
            done, code = rng.randint(0, past), "W"
            ended_on = enrolled_on + timedelta(days=rng.randrange(max(age, 1)))
            reason = rng.choice(WITHDRAWAL_REASONS)
        else:
            code = "L"
            if past >= 1 and (force_risk or rng.random() < 0.16):
                at_risk = True
                done = rng.randint(max(0, past - 2), past - 1)
                open_status = "i" if rng.random() < 0.4 else "p"
            else:
                done = past
                open_status = "i" if rng.random() < 0.3 else "p"
        total = sum(weights)
        progress = round(100 * sum(weights[:done]) / total) if total else 0
        eid = self.next_enrollment
        self.next_enrollment += 1
        created = datetime.combine(applied_on, datetime.min.time()) + timedelta(hours=10)
        row = (
            eid,
            self.plan.org_id,
            program.id,
            producer_id,
            state,
            reason,
            applied_on,
            enrolled_on,
            ended_on,
            at_risk,
            progress,
            created,
        )
        return row, (eid, done, open_status, code)

    # Figures -----------------------------------------------------------------------------

    def figures(
        self, index: int, producer_id: int, offtake_programs: list[int]
    ) -> tuple[list[tuple], list[tuple], list[tuple]]:
        """Six months of figures and two diagnostics for 10%; purchases for some sellers."""
        rng = self.streams.figures
        featured = index == self.plan.featured
        snapshots, assessments, purchases = [], [], []
        officer = self.plan.officer_ids[index % len(self.plan.officer_ids)]
        if featured or rng.random() < 0.10:
            base = rng.randrange(200_000, 5_000_000)
            month = date(self.today.year, self.today.month, 1)
            for back in range(6, 0, -1):
                m = _add_months(month, -back)
                sales = int(base * rng.uniform(0.7, 1.3))
                costs = int(sales * rng.uniform(0.55, 0.95))
                entered = datetime.combine(_add_months(m, 1), datetime.min.time()) + timedelta(
                    days=rng.randrange(10), hours=11
                )
                snapshots.append(
                    (
                        self.plan.org_id,
                        producer_id,
                        m,
                        sales,
                        costs,
                        int(sales * rng.uniform(0.05, 0.2)),
                        int(sales * rng.uniform(0, 0.1)),
                        base * rng.randrange(3, 12),
                        rng.randrange(6),
                        int(base * rng.uniform(0, 2)),
                        officer,
                        entered,
                    )
                )
            for back in (7, 1):
                on = self.today - timedelta(days=30 * back + rng.randrange(20))
                scores = [rng.randrange(5) for _ in range(6)]
                assessments.append((self.plan.org_id, producer_id, on, *scores, "", officer))
        if offtake_programs and (featured or rng.random() < 0.2):
            program_id = offtake_programs[0]
            product = rng.choice(PRODUCTS)
            price = rng.randrange(200, 5_000)
            for _ in range(5):
                on = self.today - timedelta(days=rng.randrange(1, 180))
                quantity = float(rng.randrange(10, 2_000))
                purchases.append(
                    (
                        self.plan.org_id,
                        producer_id,
                        program_id,
                        on,
                        product,
                        quantity,
                        "kg",
                        price,
                        round(quantity * price),
                        rng.random() < 0.85,
                        rng.random() < 0.9,
                        officer,
                        datetime.combine(on, datetime.min.time()) + timedelta(hours=15),
                        "",
                    )
                )
        return snapshots, assessments, purchases


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


# Loading -------------------------------------------------------------------------------

PRODUCER_COLUMNS = (
    "id",
    "org_id",
    "kind",
    "name",
    "name_key",
    "national_id",
    "representative",
    "owner_gender",
    "phone",
    "email",
    "region",
    "municipality",
    "employees",
    "formally_registered",
    "notes",
    "created_at",
    "updated_at",
)
ENROLLMENT_COLUMNS = (
    "id",
    "org_id",
    "program_id",
    "producer_id",
    "state",
    "state_reason",
    "applied_on",
    "enrolled_on",
    "ended_on",
    "at_risk",
    "progress",
    "created_at",
)
SNAPSHOT_COLUMNS = (
    "org_id",
    "producer_id",
    "month",
    "sales",
    "costs",
    "household_withdrawals",
    "reinvestment",
    "assets",
    "employees",
    "debt",
    "entered_by_id",
    "entered_at",
)
ASSESSMENT_COLUMNS = (
    "org_id",
    "producer_id",
    "assessed_on",
    "knowledge",
    "commercial_information",
    "contacts",
    "business_engineering",
    "network_articulation",
    "sustainable_practices",
    "notes",
    "assessed_by_id",
)
PURCHASE_COLUMNS = (
    "org_id",
    "producer_id",
    "program_id",
    "purchased_on",
    "product",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "on_time",
    "quality_accepted",
    "recorded_by_id",
    "recorded_at",
    "note",
)


def _copy(
    conn: psycopg.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    count = 0
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _saved_ddl(
    conn: psycopg.Connection,
) -> tuple[list[tuple[str, str]], list[str], list[tuple[str, str, str]]]:
    """Drop the foreign keys, unique constraints and secondary indexes of the big tables.

    Returns what it takes to create them again: (table, constraint SQL) for unique
    constraints, index SQL, and (table, name, definition) for foreign keys.
    """
    big = list(BIG_TABLES)
    fks = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND (conrelid::regclass::text = ANY(%s) "
        "OR confrelid::regclass::text = ANY(%s)) ORDER BY conname",
        (big, big),
    ).fetchall()
    uniques = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s) ORDER BY conname",
        (big,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid::regclass::text = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
        (big,),
    ).fetchall()
    for table, name, _definition in fks:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for table, name, _definition in uniques:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.commit()
    unique_sql = [(t, f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}') for t, n, d in uniques]
    return unique_sql, [d for _n, d in indexes], fks


def _restore_ddl(
    conn: psycopg.Connection,
    unique_sql: list[tuple[str, str]],
    index_sql: list[str],
    fks: list[tuple[str, str, str]],
) -> None:
    conn.execute("SET maintenance_work_mem = '1GB'")
    for _table, statement in unique_sql:
        started = time.monotonic()
        conn.execute(statement)
        conn.commit()
        log(f"  {statement[:90]}... {time.monotonic() - started:.0f} s")
    for statement in index_sql:
        started = time.monotonic()
        conn.execute(statement)
        conn.commit()
        log(f"  {statement[:90]}... {time.monotonic() - started:.0f} s")
    for table, name, definition in fks:
        started = time.monotonic()
        conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        conn.commit()
        log(f"  FK {name} {time.monotonic() - started:.0f} s")


def _load_org(
    conn: psycopg.Connection, plan: OrgPlan, today: date, first_producer: int, first_enrollment: int
) -> tuple[int, int]:
    gen = Generator(plan, today, first_producer, first_enrollment)
    counts = plan.counts
    started = time.monotonic()
    for start in range(0, plan.size, BATCH):
        producers, sectors, enrollments, staging = [], [], [], []
        snapshots, assessments, purchases = [], [], []
        for index in range(start, min(start + BATCH, plan.size)):
            row, sector_rows = gen.producer(index)
            producers.append(row)
            sectors.extend(sector_rows)
            e_rows, s_rows, offtake = gen.enrollments(index, row[0])
            enrollments.extend(e_rows)
            staging.extend(s_rows)
            s, a, p = gen.figures(index, row[0], offtake)
            snapshots.extend(s)
            assessments.extend(a)
            purchases.extend(p)
        for table, columns, rows in (
            ("producers", PRODUCER_COLUMNS, producers),
            ("producer_sectors", ("org_id", "producer_id", "sector"), sectors),
            ("enrollments", ENROLLMENT_COLUMNS, enrollments),
            ("bench_plan", ("enrollment_id", "done", "open_status", "code"), staging),
            ("economic_snapshots", SNAPSHOT_COLUMNS, snapshots),
            ("viability_assessments", ASSESSMENT_COLUMNS, assessments),
            ("offtake_purchases", PURCHASE_COLUMNS, purchases),
        ):
            counts[table] = counts.get(table, 0) + _copy(conn, table, columns, rows)
        conn.commit()
        done = min(start + BATCH, plan.size)
        if done % (BATCH * 10) == 0 or done == plan.size:
            rate = done / (time.monotonic() - started)
            log(f"  {plan.code}: {done:,} producers ({rate:,.0f}/s)")
    return gen.next_producer, gen.next_enrollment


MILESTONES_SQL = """
INSERT INTO milestones (
    org_id, enrollment_id, program_id, producer_id, step_id, position, name, due_date,
    weight, evidence_required, status, status_reason, note, recorded_by_id, recorded_at,
    verified_by_id, verified_at)
SELECT e.org_id, e.id, e.program_id, e.producer_id, s.id, s.position, s.name,
       e.enrolled_on + s.offset_days, s.weight, s.evidence_required,
       x.status,
       CASE WHEN x.status = 'missed' THEN 'No se cumplió a tiempo.' ELSE '' END,
       CASE WHEN x.status IN ('achieved', 'verified') AND (e.id + s.position) %% 5 = 0
            THEN 'Registrado en la visita de campo.' ELSE '' END,
       CASE WHEN x.status IN ('achieved', 'verified', 'waived', 'in_progress')
            THEN (%(officers)s::int[])[1 + (e.id %% %(n_officers)s)] END,
       CASE WHEN x.status IN ('achieved', 'verified', 'waived', 'in_progress')
            THEN (e.enrolled_on + s.offset_days - ((e.id + s.position) %% 12))::timestamp
                 + interval '10 hours' END,
       CASE WHEN x.status = 'verified' THEN %(admin)s END,
       CASE WHEN x.status = 'verified'
            THEN (e.enrolled_on + s.offset_days - ((e.id + s.position) %% 12) + 3)::timestamp
                 + interval '16 hours' END
FROM enrollments e
JOIN bench_plan b ON b.enrollment_id = e.id
JOIN template_steps s ON s.program_id = e.program_id AND s.org_id = e.org_id
CROSS JOIN LATERAL (SELECT CASE
    WHEN s.position <= b.done THEN
        CASE WHEN (e.id * 7 + s.position) %% 20 = 0 THEN 'waived'
             WHEN (e.id * 7 + s.position) %% 20 < 9 THEN 'verified'
             ELSE 'achieved' END
    WHEN b.code = 'W' AND e.enrolled_on + s.offset_days < %(today)s THEN 'missed'
    WHEN s.position = b.done + 1 AND b.open_status = 'i' THEN 'in_progress'
    ELSE 'planned' END AS status) x
WHERE e.org_id = %(org)s AND e.id >= %(lo)s AND e.id < %(hi)s
ORDER BY e.id, s.position
"""

AUDIT_SQL = (
    # Registration of every producer.
    """
    INSERT INTO audit_events (org_id, at, actor_id, action, producer_id, program_id, details)
    SELECT p.org_id, p.created_at, %(admin)s, 'producer.registered', p.id, NULL,
           json_build_object('name', p.name)
    FROM producers p WHERE p.org_id = %(org)s AND p.id >= %(lo)s AND p.id < %(hi)s
    """,
    # Every enrollment, its end, and its latest milestone recorded.
    """
    INSERT INTO audit_events (org_id, at, actor_id, action, producer_id, program_id, details)
    SELECT e.org_id, e.created_at, %(admin)s, 'enrollment.created', e.producer_id, e.program_id,
           json_build_object('program', g.name, 'state', 'enrolled')
    FROM enrollments e JOIN programs g ON g.id = e.program_id
    WHERE e.org_id = %(org)s AND e.producer_id >= %(lo)s AND e.producer_id < %(hi)s
    """,
    """
    INSERT INTO audit_events (org_id, at, actor_id, action, producer_id, program_id, details)
    SELECT e.org_id, e.ended_on::timestamp + interval '12 hours', %(admin)s, 'enrollment.state',
           e.producer_id, e.program_id,
           json_build_object('program', g.name, 'old', 'active', 'new', e.state)
    FROM enrollments e JOIN programs g ON g.id = e.program_id
    WHERE e.org_id = %(org)s AND e.ended_on IS NOT NULL
      AND e.producer_id >= %(lo)s AND e.producer_id < %(hi)s
    """,
    """
    INSERT INTO audit_events (org_id, at, actor_id, action, producer_id, program_id, details)
    SELECT e.org_id, (e.enrolled_on + s.offset_days)::timestamp + interval '10 hours',
           %(officer)s, 'milestone.recorded', e.producer_id, e.program_id,
           json_build_object('milestone', s.name, 'old', 'planned', 'new', 'achieved', 'note', '')
    FROM enrollments e JOIN bench_plan b ON b.enrollment_id = e.id
    JOIN template_steps s ON s.program_id = e.program_id AND s.position = b.done
    WHERE e.org_id = %(org)s AND b.done > 0
      AND e.producer_id >= %(lo)s AND e.producer_id < %(hi)s
    """,
)


def fill(url: str, scale: int) -> dict[str, int]:
    """Fill an empty, migrated bench database; return the rows written per table."""
    from inclusive.timeutil import utcnow

    today = utcnow().date()
    started = time.monotonic()
    plans = _setup_orgs(url, scale)
    log(f"organizations, users and programs: {time.monotonic() - started:.1f} s")
    with common.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            "CREATE UNLOGGED TABLE bench_plan (enrollment_id integer PRIMARY KEY, "
            "done smallint NOT NULL, open_status char(1) NOT NULL, code char(1) NOT NULL)"
        )
        unique_sql, index_sql, fks = _saved_ddl(conn)
        first_producer = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM producers").fetchone()[
            0
        ]
        first_enrollment = conn.execute(
            "SELECT coalesce(max(id), 0) + 1 FROM enrollments"
        ).fetchone()[0]
        phase = time.monotonic()
        ranges = []
        for plan in plans:
            p0, e0 = first_producer, first_enrollment
            first_producer, first_enrollment = _load_org(conn, plan, today, p0, e0)
            ranges.append((plan, p0, first_producer, e0, first_enrollment))
        log(f"producers, sectors, enrollments, figures (COPY): {time.monotonic() - phase:.1f} s")

        phase = time.monotonic()
        milestones = 0
        step = 250_000
        for plan, _p0, _p1, e0, e1 in ranges:
            for lo in range(e0, e1, step):
                cursor = conn.execute(
                    MILESTONES_SQL,
                    {
                        "officers": plan.officer_ids,
                        "n_officers": len(plan.officer_ids),
                        "admin": plan.admin_id,
                        "today": today,
                        "org": plan.org_id,
                        "lo": lo,
                        "hi": min(lo + step, e1),
                    },
                )
                milestones += cursor.rowcount
                conn.commit()
                log(
                    f"  milestones: {milestones:,} "
                    f"({milestones / (time.monotonic() - phase):,.0f}/s)"
                )
        log(f"milestones (INSERT ... SELECT): {time.monotonic() - phase:.1f} s")

        phase = time.monotonic()
        audit = 0
        for plan, p0, p1, _e0, _e1 in ranges:
            for lo in range(p0, p1, step):
                for statement in AUDIT_SQL:
                    cursor = conn.execute(
                        statement,
                        {
                            "admin": plan.admin_id,
                            "officer": plan.officer_ids[0],
                            "org": plan.org_id,
                            "lo": lo,
                            "hi": min(lo + step, p1),
                        },
                    )
                    audit += cursor.rowcount
                conn.commit()
        log(f"audit events: {audit:,} in {time.monotonic() - phase:.1f} s")

        phase = time.monotonic()
        conn.execute("DROP TABLE bench_plan")
        _restore_ddl(conn, unique_sql, index_sql, fks)
        for table in BIG_TABLES:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        conn.commit()
        log(f"indexes and foreign keys: {time.monotonic() - phase:.1f} s")

    phase = time.monotonic()
    with common.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        rows = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (*BIG_TABLES, "programs", "template_steps", "users", "memberships")
        }
    log(f"VACUUM ANALYZE: {time.monotonic() - phase:.1f} s")
    for table, n in rows.items():
        log(f"  {table}: {n:,} rows")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=common.scale_from_env())
    parser.add_argument("--database", help="a PostgreSQL URL (default: by scale on 127.0.0.1)")
    args = parser.parse_args(argv)
    url = args.database or common.with_database(
        common.SERVER_URL, common.default_database(args.scale)
    )
    ensure(url, args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
