"""CSV import of producers: the platform's import service against a raw COPY of the rows.

    python -m bench.importbench URL [--rows 100000] [--profile]

Both run on the same database in the same run, each in a transaction that is rolled
back at the end (the bench database stays as generated). The import service is timed as
a user goes through it: the check and preview of the uploaded file (``preview_upload``),
then the import of the checked rows in one transaction (``import_or_fail``, what the
background job runs). The baseline is a raw COPY of the very same rows into the real
``producers`` table, with all its indexes, in the bench organization (best of two runs):
the rows read by Python's csv module and sent with psycopg's ``write_row``, the way a
Python service would write them, with nothing checked and nothing else written (no
sectors, no audit trail). A COPY of the file's bytes as they are into an index-less
scratch table with the file's columns (PostgreSQL parses the CSV) is measured too, for
information: it was the baseline before 2026-11-28 and flatters COPY.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
import time
from typing import Any

from bench import common
from bench.generate import REGIONS, SECTORS, _person, _producer_name

NEEDED = ("preview_upload", "import_or_fail")

SCRATCH_COLUMNS = (
    ("kind", "varchar(20)"),
    ("name", "varchar(160)"),
    ("national_id", "varchar(40)"),
    ("representative", "varchar(160)"),
    ("owner_gender", "varchar(12)"),
    ("phone", "varchar(40)"),
    ("email", "varchar(254)"),
    ("region", "varchar(120)"),
    ("municipality", "varchar(120)"),
    ("sectors", "text"),
    ("employees", "integer"),
    ("formally_registered", "boolean"),
    ("notes", "text"),
)


def producers_csv(rows: int, seed: int = 7) -> bytes:
    """A producers file as a user would upload it: the template's columns, UTF-8."""
    from inclusive.producers.services import FIELDS

    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    kinds = ["individual"] * 5 + ["family_business"] * 2 + ["micro_enterprise", "cooperative"]
    regions = [r for r, w, _m in REGIONS for _ in range(w)]
    municipalities = {r: m for r, _w, m in REGIONS}
    sectors = [s for s, w in SECTORS for _ in range(w)]
    for index in range(rows):
        kind = rng.choice(kinds)
        region = rng.choice(regions)
        municipality = rng.choice(municipalities[region])
        name, representative = _producer_name(rng, kind, municipality)
        chosen = sorted({rng.choice(sectors) for _ in range(1 + (rng.random() < 0.3))})
        values = {
            "kind": kind,
            "name": name,
            "national_id": f"IM{index:09d}",
            "representative": representative or (_person(rng) if rng.random() < 0.1 else ""),
            "owner_gender": rng.choice(("female", "male", "female", "male", "undisclosed")),
            "phone": f"+51 9{rng.randrange(10**8):08d}",
            "email": f"imp{index}@correo.example" if rng.random() < 0.3 else "",
            "region": region,
            "municipality": municipality,
            "sectors": ";".join(chosen),
            "employees": str(rng.randrange(6)),
            "formally_registered": "yes" if rng.random() < 0.35 else "no",
            "notes": "",
        }
        writer.writerow([values[f] for f in FIELDS])
    return out.getvalue().encode("utf-8")


def _scratch(conn: Any) -> None:
    columns = ", ".join(f"{name} {kind}" for name, kind in SCRATCH_COLUMNS)
    conn.execute(f"CREATE TABLE bench_copy_scratch ({columns})")


#: The producers table's columns a raw COPY fills (the id comes from its sequence).
PRODUCER_COPY_COLUMNS = (
    "org_id", "kind", "name", "name_key", "national_id", "representative", "owner_gender",
    "phone", "email", "region", "municipality", "employees", "formally_registered", "notes",
    "created_at", "updated_at",
)  # fmt: skip


def copy_rows(url: str, data: bytes, org_id: int) -> float:
    """Seconds to read the file's rows in Python and COPY them (psycopg 3 ``write_row``) into
    the real ``producers`` table (its indexes, the bench organization), in a transaction
    rolled back at the end: what a raw COPY of the same rows costs, nothing checked."""
    from datetime import UTC, datetime

    from inclusive.producers.services import FIELDS

    position = {name: i for i, name in enumerate(FIELDS)}
    now = datetime.now(UTC).replace(tzinfo=None)
    columns = ", ".join(PRODUCER_COPY_COLUMNS)
    with common.connect(url) as conn:
        started = time.perf_counter()
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        next(reader)
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY producers ({columns}) FROM STDIN") as copy,
        ):
            for row in reader:
                values = {name: row[i] for name, i in position.items()}
                copy.write_row(
                    (
                        org_id, values["kind"], values["name"], values["name"].lower(),
                        values["national_id"] or None, values["representative"],
                        values["owner_gender"], values["phone"], values["email"],
                        values["region"], values["municipality"], int(values["employees"] or 0),
                        values["formally_registered"] == "yes", values["notes"], now, now,
                    )
                )  # fmt: skip
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


def copy_file(url: str, data: bytes) -> float:
    """Seconds to COPY the file's bytes as they are (PostgreSQL parses the CSV)."""
    with common.connect(url) as conn:
        _scratch(conn)
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY bench_copy_scratch FROM STDIN (FORMAT csv, HEADER true)") as copy,
        ):
            view = memoryview(data)
            for offset in range(0, len(data), 1 << 20):
                copy.write(view[offset : offset + (1 << 20)])
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


def service_run(url: str, data: bytes, profile: bool) -> dict[str, Any]:
    from inclusive.extensions import db
    from inclusive.producers import imports
    from inclusive.storage import storage
    from inclusive.tenancy.scope import tenant_scope

    targets = common.find_targets(url)
    app = common.make_app(url)
    profiler = None
    with app.test_request_context(), tenant_scope(targets.org_id):
        # Warm-up (not timed): imports, translations, compiled statements, connection.
        warm = producers_csv(300, seed=11).replace(b"IM0", b"WU0")
        batch = imports.preview_upload("producers", warm, "warm.csv", actor_id=targets.admin_id)
        imports.import_or_fail(batch, include_likely=False, actor_id=targets.admin_id)
        keys = [batch.storage_key, getattr(batch, "checked_key", "")]
        db.session.rollback()
        for key in filter(None, keys):
            storage().delete(key)

        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        batch = imports.preview_upload("producers", data, "bench.csv", actor_id=targets.admin_id)
        checked = time.perf_counter()
        imports.import_or_fail(batch, include_likely=False, actor_id=targets.admin_id)
        db.session.flush()
        finished = time.perf_counter()
        if profiler:
            profiler.disable()
        result = {
            "status": str(batch.status),
            "total_rows": batch.total_rows,
            "valid_rows": batch.valid_rows,
            "imported_rows": batch.imported_rows,
            "error": batch.error or "",
            "preview_s": checked - started,
            "import_s": finished - checked,
        }
        keys = [batch.storage_key, getattr(batch, "checked_key", "")]
        db.session.rollback()
        for key in filter(None, keys):
            storage().delete(key)
        db.session.remove()
    if profiler:
        import pstats

        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(25)
        result["profile"] = stream.getvalue()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    try:
        from inclusive.producers import imports
    except ImportError as exc:
        print(
            "BENCH_JSON "
            + json.dumps({"skipped": f"inclusive/producers/imports.py cannot be imported ({exc})"})
        )
        return 0
    missing = [name for name in NEEDED if not hasattr(imports, name)]
    if missing:
        reason = f"inclusive/producers/imports.py has no {', '.join(missing)}"
        print("BENCH_JSON " + json.dumps({"skipped": reason}))
        return 0
    data = producers_csv(args.rows)
    org_id = common.find_targets(args.url).org_id
    copies = [copy_rows(args.url, data, org_id)]
    files = [copy_file(args.url, data)]
    result = service_run(args.url, data, args.profile)
    copies.append(copy_rows(args.url, data, org_id))
    files.append(copy_file(args.url, data))
    result.update(
        rows=args.rows,
        bytes=len(data),
        copy_s=min(copies),
        copy_runs=copies,
        copy_file_s=min(files),
        copy_file_runs=files,
    )
    if args.profile:
        print(result.pop("profile"))
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
