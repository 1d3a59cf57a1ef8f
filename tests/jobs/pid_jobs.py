"""Job functions for the worker-class tests: each writes the pid it ran in to a file."""

from __future__ import annotations

import os
from pathlib import Path

from inclusive.jobs.runner import short_job


def write_pid(path: str) -> None:
    Path(path).write_text(str(os.getpid()))


@short_job
def write_pid_short(path: str) -> None:
    Path(path).write_text(str(os.getpid()))
