"""CPU per request of the measured pages, in-process, without a profiler.

python -m bench.cpu_pages URL [-n 500] [--runs 5] [--page NAME] [--save DIR] [--locale es]

For each page: ``time.process_time()`` over n requests of a logged-in admin (the
reference page anonymous), repeated ``runs`` times; the median run is printed, in CPU
ms per request, with the queries per request. ``--save DIR`` writes each page's HTML
there (to compare two versions byte for byte); ``--locale`` serves every page in that
language (the admin's own otherwise).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench import common
from bench.queries import logged_in_client, page_paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--page", action="append")
    parser.add_argument("--save")
    parser.add_argument("--locale")
    args = parser.parse_args(argv)
    from bench.reference import bp
    from inclusive.extensions import db

    app = common.make_app(args.url)
    app.register_blueprint(bp)
    if args.locale:
        from flask_babel import get_babel

        get_babel(app).locale_selector = lambda: args.locale
    paths = page_paths(common.find_targets(args.url))
    if args.page:
        paths = {k: v for k, v in paths.items() if k in args.page}
    client = logged_in_client(app)
    anonymous = app.test_client()
    with app.app_context():
        engine = db.engine
    count = [0]

    def counter(*_args: Any) -> None:
        count[0] += 1

    event.listen(engine, "before_cursor_execute", counter)
    for name, path in paths.items():
        browser = anonymous if name == "reference" else client
        for _ in range(5):
            response = browser.get(path)
            assert response.status_code == 200, (name, response.status_code)
        if args.save:
            Path(args.save, name.replace(" ", "_") + ".html").write_bytes(response.data)
        count[0] = 0
        browser.get(path)
        queries = count[0]
        runs = []
        for _ in range(args.runs):
            started = time.process_time()
            for _ in range(args.n):
                browser.get(path)
            runs.append((time.process_time() - started) / args.n * 1000)
        print(
            f"{name:14} {statistics.median(runs):6.2f} ms CPU per request "
            f"(runs {' '.join(f'{r:.2f}' for r in runs)}), {queries} queries"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
