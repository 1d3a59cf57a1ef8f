"""`make bench`: generate (if needed), serve with gunicorn, load each page, count queries,
compare the CSV import with COPY; print one line per figure (and bench/results/latest.txt).

Environment:
  BENCH_SCALE        producers in the organization (default 1,000,000)
  DATABASE_URL       the bench database (default: inclusive_bench on 127.0.0.1, by scale)
  BENCH_DURATION     seconds of load per page (default 10), after BENCH_WARMUP (default 2)
  BENCH_CONNECTIONS  concurrent connections of the load generator (default 4)
  BENCH_EXTRA        0 to skip the extra producer-list filters (measured for diagnosis)
  BENCH_IMPORT_ROWS  rows of the CSV import (default 100,000; 0 skips it)

A measurement, not a test: it exits 0 when a target is missed and marks the line MISSED.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import common, cpu, generate, load

RATIO_TARGET = 0.5
P95_TARGET_MS = 100.0
IMPORT_RATIO_TARGET = 0.25
PAGES = ("producer list", "program page", "producer page")
SLOW_PAGE_S = 1.0
SLOW_PROBES = 3


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").replace("_", "").replace(",", "").strip()
    return int(raw) if raw else default


def say(line: str, lines: list[str] | None = None) -> None:
    print(line, flush=True)
    if lines is not None:
        lines.append(line)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(port: int, path: str, headers: dict[str, str]) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def start_server(url: str, port: int, log_path: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [
        str(gunicorn),
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "--timeout",
        "120",
        "bench.wsgi_bench:app",
    ]
    log = log_path.open("w")
    process = subprocess.Popen(
        command, cwd=common.PROJECT_ROOT, env=common.server_env(url), stdout=log, stderr=log
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn stopped at start (see {log_path})")
        try:
            if fetch(port, "/healthz", {})[0] == 200:
                return process
        except OSError:
            pass
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"gunicorn did not answer /healthz within 90 s (see {log_path})")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def subprocess_json(module: str, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=common.PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "INCLUSIVE_ENV": "development"},
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if result.returncode or line is None:
        raise RuntimeError(f"{module} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return json.loads(line[len("BENCH_JSON ") :])


def check_page(
    name: str, port: int, path: str, headers: dict[str, str], rows: str | None
) -> tuple[str, float]:
    """Fetch a page once: what it shows (rows or bytes) and how long it took."""
    started = time.perf_counter()
    status, body = fetch(port, path, headers)
    seconds = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"{name} {path} answered {status}, not 200: the load would be void")
    if rows:
        return f"{len(re.findall(rows, body))} rows", seconds
    return f"{len(body):,} bytes", seconds


def probe(port: int, path: str, headers: dict[str, str], count: int) -> list[float]:
    """Milliseconds of ``count`` requests sent one after the other (for very slow pages)."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        fetch(port, path, headers)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    lines = [x for x in text.splitlines() if x.strip()]
    errors = [x for x in lines if "Error" in x or "error" in x]
    return (errors[-1] if errors else lines[0] if lines else type(exc).__name__)[:300]


def main() -> int:
    scale = common.scale_from_env()
    duration = env_int("BENCH_DURATION", 10)
    warmup = env_int("BENCH_WARMUP", 2)
    connections = env_int("BENCH_CONNECTIONS", 4)
    import_rows = env_int("BENCH_IMPORT_ROWS", 100_000)
    extra = os.environ.get("BENCH_EXTRA", "1") != "0"
    server = os.environ.get("DATABASE_URL") or common.SERVER_URL
    url = (
        os.environ.get("DATABASE_URL")
        if os.environ.get("DATABASE_URL")
        else common.with_database(common.SERVER_URL, common.default_database(scale))
    )
    small_url = common.with_database(server, "inclusive_bench_small")
    common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    details: dict[str, Any] = {"scale": scale, "started": datetime.now().isoformat()}

    # Data ------------------------------------------------------------------------------
    big = generate.ensure(url, scale)
    small = (
        big
        if common.database_name(small_url) == common.database_name(url)
        else generate.ensure(small_url, common.SMALL_SCALE)
    )
    # A previous run's rolled-back import leaves dead rows; with autovacuum off they would
    # slow the planner (seen: 1.5 -> 21 ms for one query). Measure a database in shape.
    with common.connect(url, autocommit=True) as conn:
        for table in ("producers", "producer_sectors", "audit_events", "enrollments"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    size = common.database_size(url)
    rows = sum(big["rows"].values())
    how = "reused, generated earlier" if big.get("reused") else "generated now"
    say(
        f"data: {scale:,} producers, {rows:,} rows in {common.database_name(url)} "
        f"({size / 2**30:.1f} GiB; {how} in {big['seconds']:.0f} s)",
        lines,
    )
    details["generation"] = {"big": big, "small": small, "database_bytes": size}
    targets = common.find_targets(url)
    details["targets"] = targets.as_dict()

    # Load --------------------------------------------------------------------------------
    app = common.make_app(url)
    name, value = common.session_cookie(app, common.login_key(app))
    logged_in = {"Cookie": f"{name}={value}", "User-Agent": "inclusive-bench"}
    anonymous = {"User-Agent": "inclusive-bench"}
    wrk = load.ensure_wrk()
    port = free_port()
    log_path = common.RESULTS_DIR / "gunicorn.log"
    paths = {
        "reference": (targets.reference_path(), anonymous, r"<tr><td><a "),
        "producer list": (targets.list_path(), logged_in, r'name="producer_ids"'),
        "program page": (targets.program_path(), logged_in, r'name="enrollment_ids"'),
        "producer page": (targets.producer_path(), logged_in, None),
    }
    if extra:
        org = targets.org_slug
        paths.update(
            {
                "producer list, search 'quispe'": (
                    f"/o/{org}/producers/?q=quispe",
                    logged_in,
                    r'name="producer_ids"',
                ),
                "producer list, program + state": (
                    f"/o/{org}/producers/?program={targets.program_id}&state=active",
                    logged_in,
                    r'name="producer_ids"',
                ),
                "producer list, at risk": (
                    f"/o/{org}/producers/?at_risk=y",
                    logged_in,
                    r'name="producer_ids"',
                ),
                "producer list, sector": (
                    f"/o/{org}/producers/?sector=fishing&region={quote(targets.region)}",
                    logged_in,
                    r'name="producer_ids"',
                ),
                "producer list, search by phone digits": (
                    f"/o/{org}/producers/?q=98765432",
                    logged_in,
                    None,
                ),
                "producer list, program + state, no match": (
                    f"/o/{org}/producers/?program={targets.quiet_program_id}&state=active",
                    logged_in,
                    None,
                ),
                "producer list, page 200": (
                    f"{targets.list_path()}&page=200",
                    logged_in,
                    r'name="producer_ids"',
                ),
            }
        )
    tool = f"wrk, {connections} connections" if wrk else f"Python client, {connections} threads"
    say(
        f"load: gunicorn 2 sync workers on 127.0.0.1, {tool}, {duration} s per page after "
        f"{warmup} s warm-up",
        lines,
    )
    results: dict[str, load.Load] = {}
    probes: dict[str, list[float]] = {}
    cpu_ms: dict[str, tuple[float, float]] = {}
    reference_runs: list[load.Load] = []
    ratio_reference: dict[str, float] = {}
    say(
        f"machine: {os.cpu_count()} cores, load average {cpu.loadavg():.1f} before the load "
        "(other processes on the machine lower every req/s figure; ratios and CPU per request "
        "much less)",
        lines,
    )
    process = start_server(url, port, log_path)
    try:
        checks, first_seconds = {}, {}
        for page, (path, headers, marker) in paths.items():
            checks[page], first_seconds[page] = check_page(page, port, path, headers, marker)
        details["checks"] = checks
        details["first_request_seconds"] = first_seconds

        def measure(page: str) -> load.Load:
            path, headers, _marker = paths[page]
            target = f"http://127.0.0.1:{port}{path}"
            load.run(target, headers, warmup, connections, wrk)
            app_pids, db_pids = cpu.children(process.pid), cpu.backends(url)
            before = cpu.cpu_seconds(app_pids), cpu.cpu_seconds(db_pids), cpu.loadavg()
            measured = load.run(target, headers, duration, connections, wrk)
            n = max(measured.requests, 1)
            cpu_app = cpu.spent(before[0], cpu.cpu_seconds(app_pids)) * 1000 / n
            cpu_db = cpu.spent(before[1], cpu.cpu_seconds(db_pids)) * 1000 / n
            key = page if page != "reference" else f"reference {len(reference_runs) + 1}"
            cpu_ms[key] = (cpu_app, cpu_db)
            details.setdefault("loadavg", {})[key] = before[2]
            print(
                f"  [load] {page}: {measured.rps:.1f} req/s, p50 {measured.p50_ms:.1f} ms, "
                f"p95 {measured.p95_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms, "
                f"{measured.requests} requests, {measured.errors} errors ({checks[page]}); "
                f"CPU per request: app {cpu_app:.1f} ms, db {cpu_db:.1f} ms; "
                f"load average {before[2]:.1f}",
                flush=True,
            )
            return measured

        # The reference runs before and after each page: the page's ratio uses the two
        # around it, so that a change in the machine's background load evens out.
        reference_runs.append(measure("reference"))
        for page in PAGES:
            results[page] = measure(page)
            reference_runs.append(measure("reference"))
            ratio_reference[page] = (reference_runs[-2].rps + reference_runs[-1].rps) / 2
        # Diagnosis: other filters of the list. A page slower than SLOW_PAGE_S would keep
        # the workers busy long after wrk stops (and spoil the next figure): it is timed
        # with a few requests one after the other, at the end.
        slow = [p for p in paths if p not in PAGES and first_seconds[p] > SLOW_PAGE_S]
        for page in paths:
            if page not in PAGES and page != "reference" and page not in slow:
                results[page] = measure(page)
        for page in slow:
            path, headers, _marker = paths[page]
            probes[page] = probe(port, path, headers, SLOW_PROBES)
            print(f"  [probe] {page}: {', '.join(f'{t:,.0f}' for t in probes[page])} ms "
                  f"({checks[page]})", flush=True)  # fmt: skip
    finally:
        stop_server(process)
    details["load"] = {k: {**asdict(v), "rps": v.rps} for k, v in results.items()}
    details["reference"] = [{**asdict(v), "rps": v.rps} for v in reference_runs]
    details["cpu_ms_per_request"] = cpu_ms

    details["probes_ms"] = probes
    for page in paths:
        if page in probes:
            times = sorted(probes[page])
            say(
                f"{page} (diagnosis): {times[len(times) // 2]:,.0f} ms per request MISSED "
                f"(median of {len(times)} one after the other: too slow to load)",
                lines,
            )
            continue
        if page == "reference":
            continue
        r = results[page]
        if not r.requests:
            say(f"{page}: no request answered in {duration} s MISSED", lines)
            continue
        p95 = f"p95 {r.p95_ms:.0f} ms" + (" MISSED" if r.p95_ms >= P95_TARGET_MS else "")
        errors = f", {r.errors} errors" if r.errors else ""
        if page in PAGES:
            reference_rps = ratio_reference[page]
            ratio = r.rps / reference_rps if reference_rps else 0.0
            mark = " MISSED" if ratio < RATIO_TARGET else ""
            say(
                f"{page}: {r.rps:,.0f} req/s (reference {reference_rps:,.0f} req/s, "
                f"ratio {ratio:.2f}{mark}), {p95}{errors}",
                lines,
            )
        else:
            say(f"{page} (diagnosis): {r.rps:,.0f} req/s, {p95}{errors}", lines)
    say(
        f"reference page: {', '.join(f'{r.rps:,.0f}' for r in reference_runs)} req/s in its "
        f"{len(reference_runs)} runs, p95 {max(r.p95_ms for r in reference_runs):.0f} ms at most",
        lines,
    )
    ref_cpu = [v for k, v in cpu_ms.items() if k.startswith("reference")]
    parts = [
        f"reference {sum(a for a, _ in ref_cpu) / len(ref_cpu):.1f}+"
        f"{sum(b for _, b in ref_cpu) / len(ref_cpu):.1f}"
    ]
    parts += [f"{page} {cpu_ms[page][0]:.1f}+{cpu_ms[page][1]:.1f}" for page in PAGES]
    say(f"cpu ms per request (gunicorn workers + PostgreSQL backends): {', '.join(parts)}", lines)

    # Queries per page ---------------------------------------------------------------------
    # Other engineers change the code while this runs: bring new tables and indexes in first.
    try:
        changed = [m for u in (small_url, url) for m in generate.upgrade_schema(u)]
        if changed:
            raise RuntimeError(f"the models gained columns during the run: {changed[:5]}")
        counts_small = subprocess_json("bench.queries", small_url)
        counts_big = subprocess_json("bench.queries", url)
    except Exception as exc:  # a measurement run goes on: say what could not be measured
        say(f"queries per page: not measured ({_first_line(exc)})", lines)
    else:
        details["queries"] = {"small": counts_small, "big": counts_big}
        small_n = counts_small["targets"]["producers"]
        big_n = counts_big["targets"]["producers"]
        for page in PAGES:
            a = counts_small["pages"][page]["queries"]
            b = counts_big["pages"][page]["queries"]
            mark = "" if a == b else " MISSED (the count grows with the data)"
            say(
                f"queries per page: {page} {a} at {small_n:,} and {b} at {big_n:,} producers{mark}",
                lines,
            )

    # CSV import ---------------------------------------------------------------------------
    if import_rows:
        try:
            result = subprocess_json("bench.importbench", url, "--rows", str(import_rows))
        except Exception as exc:
            result = {"skipped": f"it failed: {_first_line(exc)}"}
        details["import"] = result
        if "skipped" in result:
            say(f"csv import: not measured ({result['skipped']})", lines)
        elif result["status"] != "done" or result["imported_rows"] != result["rows"]:
            say(
                f"csv import {import_rows:,} producers: FAILED MISSED (status {result['status']}, "
                f"{result['imported_rows']:,} of {result['rows']:,} rows imported; "
                f"{result['error'][:200]})",
                lines,
            )
        else:
            service = result["rows"] / (result["preview_s"] + result["import_s"])
            copy = result["rows"] / result["copy_s"]
            ratio = service / copy
            mark = " MISSED" if ratio < IMPORT_RATIO_TARGET else ""
            say(
                f"csv import {import_rows:,} producers: {service:,.0f} rows/s vs COPY into "
                f"producers {copy:,.0f} rows/s, ratio {ratio:.2f}{mark}",
                lines,
            )
            say(
                f"csv import detail: check and preview {result['preview_s']:.1f} s, import "
                f"{result['import_s']:.1f} s ({result['rows'] / result['import_s']:,.0f} rows/s "
                f"alone); COPY of the file's bytes into an index-less scratch table "
                f"{result['rows'] / result['copy_file_s']:,.0f} rows/s",
                lines,
            )

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    text = "\n".join(lines) + "\n"
    (common.RESULTS_DIR / "latest.txt").write_text(text)
    (common.RESULTS_DIR / f"{stamp}-{scale}.txt").write_text(text)
    (common.RESULTS_DIR / "latest.json").write_text(json.dumps(details, indent=1, default=str))
    print(f"(written to {common.RESULTS_DIR / 'latest.txt'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
