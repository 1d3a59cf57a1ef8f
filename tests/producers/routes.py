"""Route-matrix entries of the CSV import pages (merged into tests/test_route_matrix.py)."""

from __future__ import annotations

from inclusive.producers.imports import PRODUCERS, preview_upload
from inclusive.tenancy.models import Organization
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import tenant_scope
from tests.routes import Rule, org

PRODUCER_IMPORTERS = frozenset({Role.ADMIN, Role.PROGRAM_MANAGER})  # MANAGE_PRODUCERS
RECORDERS = frozenset({Role.ADMIN, Role.PROGRAM_MANAGER, Role.FIELD_OFFICER})  # RECORD


def _batch(ctx: dict) -> dict:
    return {"batch_id": ctx["import_batch"]}


IMPORT_ROUTES: dict[str, Rule] = {
    "imports.index": org(RECORDERS),
    "imports.producers_template": org(PRODUCER_IMPORTERS),
    "imports.offtake_template": org(RECORDERS),
    "imports.upload_producers": org(PRODUCER_IMPORTERS),
    # A field officer with no program assigned sees the page, with no program to choose.
    "imports.upload_offtake": org(RECORDERS),
    "imports.preview": org(PRODUCER_IMPORTERS, args=_batch),
    "imports.confirm": org(PRODUCER_IMPORTERS, "POST", args=_batch),
    "imports.progress": org(PRODUCER_IMPORTERS, args=_batch),
    "imports.progress_json": org(PRODUCER_IMPORTERS, args=_batch),
}


def import_batch_for(organization: Organization) -> int:
    """A previewed producers file of ``organization`` (one valid row), for the route matrix."""
    with tenant_scope(organization.id):
        data = b"kind,name\nindividual,Route Matrix\n"
        return preview_upload(PRODUCERS, data, "matrix.csv").id
