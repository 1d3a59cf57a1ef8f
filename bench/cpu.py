"""CPU seconds spent by the server's processes: gunicorn workers and PostgreSQL backends.

CPU time per request is steadier than requests per second on a shared machine: other
processes slow the wall clock, much less the CPU a request takes.
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields after the command name


def cpu_seconds(pids: list[int], children: bool = False) -> dict[int, float]:
    """CPU seconds (user + system) of each process still alive; with ``children``, those
    of its children that have exited and been waited for (a forking RQ worker's horses)."""
    found = {}
    for pid in pids:
        fields = _stat(pid)
        if fields:
            ticks = int(fields[11]) + int(fields[12])  # utime, stime
            if children:
                ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
            found[pid] = ticks / TICKS
    return found


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two snapshots by the processes alive at both."""
    return sum(max(after[pid] - before[pid], 0.0) for pid in before if pid in after)


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def backends(url: str) -> list[int]:
    """The client backends connected to the bench database (the gunicorn workers' pools)."""
    from bench.common import connect, database_name

    with connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'",
            (database_name(url),),
        ).fetchall()
    return [r[0] for r in rows]


def loadavg() -> float:
    return os.getloadavg()[0]
