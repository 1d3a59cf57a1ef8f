"""Instructions per request of the measured pages, counted by valgrind: the same count on a
busy or a quiet machine, where CPU time on this 2-core machine varies by ±20% from run to run.

python -m bench.instructions URL [-n 20] [--page NAME ...]

Runs itself under ``valgrind --tool=callgrind`` with collection off, warms each page up,
then counts the app's instructions over n in-process requests of a logged-in admin (the
reference page anonymous) between two callgrind client requests (a tiny C helper, built
with ``cc`` from valgrind's ``callgrind.h`` on first use). Only the Python process is
counted, not PostgreSQL: a change that moves work to the database, or saves round trips,
shows in ``make bench``'s CPU per request, not here. About two minutes per run.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HELPER_SOURCE = """#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_TOGGLE_COLLECT; }
void cg_stop(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS; }
"""
PAGES = ("reference", "producer list", "program page", "producer page")
#: ``--fixed``: what a request costs before its page (see bench/fixed.py).
FIXED = ("anon noop", "staff noop", "staff layout")


def _helper(directory: Path) -> Path:
    library = directory / "libcgctl.so"
    if not library.exists():
        source = directory / "cgctl.c"
        source.write_text(HELPER_SOURCE)
        subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", library, source], check=True)
    return library


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--page", action="append")
    parser.add_argument("--fixed", action="store_true", help="also the fixed-cost pages")
    parser.add_argument("--inside", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    pages = args.page or list(PAGES)
    if args.fixed:
        pages = [*FIXED, *pages]
    if args.inside:
        return _count(args.url, args.n, pages, Path(args.inside))
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        _helper(directory)
        command = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            f"--callgrind-out-file={directory}/out.%n",
            "-q",
            sys.executable,
            "-m",
            "bench.instructions",
            args.url,
            "-n",
            str(args.n),
            "--inside",
            str(directory),
            *(f"--page={page}" for page in pages),
        ]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=os.environ)
        totals = []
        for index in range(1, len(pages) + 1):
            dump = next(directory.glob(f"out.*.{index}"))
            line = next(x for x in dump.read_text().splitlines() if x.startswith("totals:"))
            totals.append(int(line.split()[1]) / args.n)
    reference = dict(zip(pages, totals, strict=True)).get("reference")
    for page, total in zip(pages, totals, strict=True):
        ratio = f", reference/page {reference / total:.3f}" if reference else ""
        print(f"{page:14} {total / 1e6:6.2f} M instructions per request{ratio}")
    return 0


def _count(url: str, n: int, pages: list[str], directory: Path) -> int:
    from bench import common, fixed
    from bench.queries import logged_in_client, page_paths
    from bench.reference import bp

    helper = ctypes.CDLL(str(_helper(directory)))
    app = common.make_app(url)
    app.register_blueprint(bp)
    fixed.register(app)
    targets = common.find_targets(url)
    paths = page_paths(targets) | fixed.paths(targets.org_slug)
    client, anonymous = logged_in_client(app), app.test_client()
    for page in pages:
        browser = anonymous if page in ("reference", "anon noop") else client
        for _ in range(10):
            assert browser.get(paths[page]).status_code == 200, page
        helper.cg_start()
        for _ in range(n):
            browser.get(paths[page])
        helper.cg_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
