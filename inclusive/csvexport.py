"""CSV downloads: streamed, UTF-8 with a BOM for spreadsheets, formulas escaped."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from flask import Response, stream_with_context


def csv_cell(value: Any) -> str:
    """A cell that spreadsheets will not run as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def csv_download(
    filename: str,
    header: Sequence[str],
    rows: Callable[[], Iterable[Sequence[Any]]],
) -> Response:
    """Stream ``rows()`` (called when the body is sent) under ``header`` as a CSV file.

    The body is produced after the view has returned: ``rows`` must enter whatever scope
    its query needs itself.
    """

    def body() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")  # spreadsheets then read UTF-8
        writer.writerow(header)
        for values in rows():
            writer.writerow([csv_cell(v) for v in values])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(body()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
