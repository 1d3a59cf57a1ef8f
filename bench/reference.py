"""The reference page: the same 50 producers as the list, one Core query, a bare template.

It runs in the same gunicorn workers as the platform's pages (see ``bench.wsgi_bench``), so
the ratio of a page's throughput to this one tells what the page costs beyond fetching and
printing its rows. Bench-only: it is not part of the application package.

The inline template is compiled once per app, as Flask does for template files: Flask's
``render_template_string`` compiles its source again at every call (about 10 ms a request
here), which would make the reference slower than the minimal page it stands for.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, request
from sqlalchemy import func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from inclusive.extensions import db
from inclusive.producers.models import Producer, ProducerSector

bp = Blueprint("bench_reference", __name__, url_prefix="/bench")
PER_PAGE = 50

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Producers</title></head><body>
<table>
<tr><th>Name</th><th>Kind</th><th>Region</th><th>Phone</th><th>Sectors</th></tr>
{% for p in rows %}<tr><td><a href="/o/{{ slug }}/producers/{{ p.id }}">{{ p.name }}</a>
{%- if p.national_id %}<br><small>{{ p.national_id }}</small>{% endif %}</td>
<td>{{ p.kind }}</td><td>{{ p.region }}{% if p.municipality %}, {{ p.municipality }}{% endif %}</td>
<td>{{ p.phone }}</td><td>{{ p.sectors or '' }}</td></tr>
{% endfor %}</table>
{% if has_next %}<a href="?page=2">Next</a>{% endif %}
</body></html>"""


def reference_query(org_id: int, region: str) -> Any:
    """The list page's rows (region filter, name order, one more than a page) in one query."""
    producers = Producer.__table__
    sectors = ProducerSector.__table__
    sector_list = (
        select(
            func.string_agg(
                sectors.c.sector, aggregate_order_by(literal_column("', '"), sectors.c.sector)
            )
        )
        .where(sectors.c.org_id == producers.c.org_id, sectors.c.producer_id == producers.c.id)
        .scalar_subquery()
    )
    return (
        select(
            producers.c.id,
            producers.c.name,
            producers.c.national_id,
            producers.c.kind,
            producers.c.region,
            producers.c.municipality,
            producers.c.phone,
            sector_list.label("sectors"),
        )
        .where(producers.c.org_id == org_id, producers.c.region == region)
        .order_by(producers.c.name_key, producers.c.id)
        .limit(PER_PAGE + 1)
    )


def _template() -> Any:
    """The inline template, compiled once by the app's Jinja environment."""
    extensions = current_app.extensions
    template = extensions.get("bench.reference_template")
    if template is None:
        template = current_app.jinja_env.from_string(TEMPLATE)
        extensions["bench.reference_template"] = template
    return template


@bp.route("/reference")
def reference() -> Any:
    org_id = request.args.get("org_id", type=int)
    if org_id is None:
        abort(400)
    region = request.args.get("region", "")
    # A read that ends with COMMIT, as the platform's safe requests now end: psycopg keeps
    # the prepared statement (a ROLLBACK would drop it, and PostgreSQL would plan it again).
    with db.engine.begin() as connection:
        rows = connection.execute(reference_query(org_id, region)).all()
    return _template().render(
        rows=rows[:PER_PAGE],
        has_next=len(rows) > PER_PAGE,
        slug=request.args.get("slug", "bench"),
    )
