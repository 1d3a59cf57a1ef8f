"""Profile a page in-process: cProfile over N requests of a logged-in admin.

python -m bench.profile URL "producer page" [-n 50] [--sort tottime|cumulative]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from typing import Any

from bench import common
from bench.queries import logged_in_client, page_paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument(
        "page", help="producer list | program page | producer page | reference | a path"
    )
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--limit", type=int, default=35)
    parser.add_argument("--whatif", action="store_true")
    args = parser.parse_args(argv)
    from bench.reference import bp

    app = common.make_app(args.url)
    app.register_blueprint(bp)
    paths = page_paths(common.find_targets(args.url))
    path = paths.get(args.page, args.page)
    client = app.test_client() if args.page == "reference" else logged_in_client(app)
    for _ in range(5):
        assert client.get(path).status_code == 200
    if args.whatif:
        whatif(app, client, path, args.n)
        return 0
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(args.n):
        client.get(path)
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(f"{path}: {elapsed / args.n * 1000:.1f} ms per request under the profiler")
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats(args.sort).print_stats(args.limit)
    print(stream.getvalue())
    return 0


def whatif(app: Any, client: Any, path: str, n: int) -> None:
    import statistics

    import flask.templating
    import flask_babel
    from flask.globals import _cv_app
    from sqlalchemy import event

    from inclusive.extensions import db

    original_translations = flask_babel.Domain.get_translations
    original_render = flask.templating._render

    def translations_once(self: Any) -> Any:  # what caching per request would give
        ctx = _cv_app.get(None)
        if ctx is None:
            return original_translations(self)
        cached = ctx.g.__dict__.get("_bench_translations")
        if cached is None:
            cached = ctx.g._bench_translations = original_translations(self)
        return cached

    def no_render(app: Any, template: Any, context: Any) -> str:
        return ""

    sql = [0.0]
    started = [0.0]

    def before(*_args: Any) -> None:
        started[0] = time.perf_counter()

    def after(*_args: Any) -> None:
        sql[0] += time.perf_counter() - started[0]

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    endpoint = app.url_map.bind("localhost").match(path.split("?")[0])[0]
    original_view = app.view_functions[endpoint]
    variants = {
        "as it is": {},
        "translations once per request": {},
        "template not rendered": {},
        "view not run (login, org, session)": {},
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    sql_times: list[float] = []
    for _ in range(n):
        for variant in variants:
            flask_babel.Domain.get_translations = (
                translations_once if variant.startswith("translations") else original_translations
            )
            flask.templating._render = (
                no_render if variant.startswith("template") else original_render
            )
            app.view_functions[endpoint] = (
                (lambda **_kw: "") if variant.startswith("view") else original_view
            )
            sql[0] = 0.0
            t0 = time.perf_counter()
            client.get(path)
            times[variant].append((time.perf_counter() - t0) * 1000)
            if variant == "as it is":
                sql_times.append(sql[0] * 1000)
    flask_babel.Domain.get_translations = original_translations
    flask.templating._render = original_render
    app.view_functions[endpoint] = original_view
    print(f"{path} (median of {n} in-process requests; SQL {statistics.median(sql_times):.1f} ms)")
    for variant, values in times.items():
        print(f"  {variant:32} {statistics.median(values):6.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
