"""Helpers shared by the workspace tests (programs, milestones, impact, registry)."""

from __future__ import annotations

import base64
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from inclusive.audit.models import AuditEvent
from inclusive.extensions import db
from inclusive.milestones import services as plans
from inclusive.milestones.models import Enrollment, Milestone
from inclusive.producers import services as registry
from inclusive.producers.models import Producer
from inclusive.programs.models import Program, ProgramOfficer
from inclusive.storage import storage
from inclusive.tenancy.scope import TenantMixin, tenant_scope
from inclusive.timeutil import utcnow

#: A real 1x1 PNG image and a real one-page PDF: what a phone or a scanner sends.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/MediaBox[0 0 3 3]/Parent 2 0 R>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def today() -> date:
    return utcnow().date()


def days_ago(n: int) -> date:
    return today() - timedelta(days=n)


def done() -> None:
    """Write what the test made, then detach it.

    Detached rows keep what was loaded (ids, names) and are not expired by the commits of
    ``login`` or of the views; reading them never needs a tenant scope again.
    """
    db.session.flush()
    detach()


def detach() -> None:
    """Detach every tenant row from the test's session (users and organizations stay)."""
    for row in list(db.session):
        if isinstance(row, TenantMixin) and row in db.session:
            db.session.expunge(row)


def new_producer(org_id: int, **fields: Any) -> Producer:
    """Register a producer through the service (so the name key is accent-free)."""
    raw = {"kind": "individual", "name": "Rosa Huamán", **fields}
    with tenant_scope(org_id):
        producer = registry.create_producer(raw)
        done()
    return producer


def new_program(org: Any, kind: str = "supplier_program", **fields: Any) -> Program:
    """A program with its default template, flushed inside its organization's scope."""
    from tests import factories

    with tenant_scope(org.id):
        program = factories.make_program(org, kind, **fields)
        program.steps  # noqa: B018 - loaded before the program is detached
        done()
    return program


def enroll(program: Any, producers: list[Producer], on: date | None = None) -> list[Enrollment]:
    """Enroll producers in a program (inside its organization's scope)."""
    with tenant_scope(program.org_id):
        created, _skipped = plans.enroll(program, [p.id for p in producers], on=on)
        for enrollment in created:
            enrollment.milestones  # noqa: B018 - loaded before it is detached
        done()
    return created


def assign(program: Any, user: Any) -> None:
    with tenant_scope(program.org_id):
        db.session.add(ProgramOfficer(program_id=program.id, user_id=user.id))
        done()


def fresh(org_id: int, model: type, ident: int) -> Any:
    """Read a row again as the database has it now (after a request changed it)."""
    detach()
    with tenant_scope(org_id):
        return db.session.get(model, ident)


def count(org_id: int, model: type, **where: Any) -> int:
    detach()
    with tenant_scope(org_id):
        return db.session.scalar(select(func.count()).select_from(model).filter_by(**where))


def events(org_id: int, action: str, **where: Any) -> list[AuditEvent]:
    detach()
    with tenant_scope(org_id):
        query = select(AuditEvent).filter_by(action=action, **where).order_by(AuditEvent.id)
        return list(db.session.scalars(query))


def milestones_of(org_id: int, enrollment_id: int) -> list[Milestone]:
    detach()
    with tenant_scope(org_id):
        query = (
            select(Milestone)
            .filter_by(enrollment_id=enrollment_id)
            .order_by(Milestone.position, Milestone.id)
        )
        return list(db.session.scalars(query))


def stored_files(app: Flask) -> set[Path]:
    """Every file the storage backend holds (to prove nothing was half-written)."""
    with app.app_context():
        root = Path(storage().root)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def text_of(html: str) -> str:
    """The visible text of a page, with tags removed and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def main_of(html: str) -> str:
    """The page's own content, without the layout around it (menus, language switch)."""
    return html.split("<main", 1)[1].split("</main>", 1)[0]
