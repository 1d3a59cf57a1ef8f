"""Count the SQL queries of each measured page, in-process, through the Flask test client.

    python -m bench.queries URL            # JSON: queries per page (and their SQL)
    python -m bench.queries URL --explain  # EXPLAIN (ANALYZE, BUFFERS) of each slow query

A ``before_cursor_execute`` listener on the app's engine counts every statement sent to
the database while one request of a logged-in admin is served (after one warm-up request).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from sqlalchemy import event

from bench import common

PAGES = ("producer list", "program page", "producer page", "reference")


def page_paths(targets: common.Targets) -> dict[str, str]:
    return {
        "producer list": targets.list_path(),
        "program page": targets.program_path(),
        "producer page": targets.producer_path(),
        "reference": targets.reference_path(),
    }


class Recorder:
    """The statements one request sends, with their parameters and durations."""

    def __init__(self) -> None:
        self.statements: list[dict[str, Any]] = []
        self._started = 0.0

    def before(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        self._started = time.perf_counter()
        self.statements.append({"sql": statement, "parameters": parameters, "ms": None})

    def after(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if self.statements:
            self.statements[-1]["ms"] = (time.perf_counter() - self._started) * 1000


def logged_in_client(app: Any) -> Any:
    key = common.login_key(app)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = key
        session["_fresh"] = True
        session.permanent = True
    return client


def record_pages(url: str, paths: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    from bench.reference import bp as reference_bp
    from inclusive.extensions import db

    app = common.make_app(url)
    app.register_blueprint(reference_bp)
    targets = common.find_targets(url)
    paths = paths or page_paths(targets)
    client = logged_in_client(app)
    anonymous = app.test_client()  # the reference page is public: no login, no user query
    with app.app_context():
        engine = db.engine
    recorder = Recorder()
    event.listen(engine, "before_cursor_execute", recorder.before)
    event.listen(engine, "after_cursor_execute", recorder.after)
    results: dict[str, Any] = {}
    try:
        for name, path in paths.items():
            browser = anonymous if name == "reference" else client
            browser.get(path)  # warm-up: caches, compiled statements, connection
            recorder.statements = []
            started = time.perf_counter()
            response = browser.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{name} ({path}) answered {response.status_code}")
            results[name] = {
                "path": path,
                "queries": len(recorder.statements),
                "request_ms": elapsed,
                "sql_ms": sum(s["ms"] or 0 for s in recorder.statements),
                "statements": list(recorder.statements),
            }
    finally:
        event.remove(engine, "before_cursor_execute", recorder.before)
        event.remove(engine, "after_cursor_execute", recorder.after)
    return app, results


def explain(app: Any, statements: list[dict[str, Any]], min_ms: float) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements slower than min_ms, with their parameters."""
    from inclusive.extensions import db

    out = []
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            for item in statements:
                if (item["ms"] or 0) < min_ms:
                    continue
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + item["sql"], item["parameters"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
                out.append(
                    f"-- {item['ms']:.1f} ms in the request\n{item['sql']}\n"
                    f"-- parameters: {item['parameters']}\n{plan}\n"
                )
            raw.rollback()
        finally:
            raw.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--min-ms", type=float, default=5.0)
    parser.add_argument("--page", action="append", help="only these pages")
    args = parser.parse_args(argv)
    targets = common.find_targets(args.url)
    paths = page_paths(targets)
    if args.page:
        paths = {k: v for k, v in paths.items() if k in args.page}
    app, results = record_pages(args.url, paths)
    if args.explain:
        for name, result in results.items():
            print(
                f"==== {name}: {result['path']} — {result['queries']} queries, "
                f"{result['sql_ms']:.1f} ms of SQL, {result['request_ms']:.1f} ms in all"
            )
            for s in result["statements"]:
                print(f"  {s['ms']:8.2f} ms  {' '.join(s['sql'].split())[:150]}")
            for text in explain(app, result["statements"], args.min_ms):
                print(text)
        return 0
    summary = {
        name: {
            "queries": r["queries"],
            "request_ms": round(r["request_ms"], 1),
            "sql_ms": round(r["sql_ms"], 1),
            "statements": [" ".join(s["sql"].split())[:200] for s in r["statements"]],
        }
        for name, r in results.items()
    }
    print("BENCH_JSON " + json.dumps({"targets": targets.as_dict(), "pages": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
