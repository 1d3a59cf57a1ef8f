"""Evidence files: PDF, JPEG or PNG, checked by their content (never by their name)."""

from __future__ import annotations

import hashlib
import re

from flask import current_app
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from inclusive.audit.services import record
from inclusive.extensions import db
from inclusive.milestones.models import Evidence, Milestone
from inclusive.milestones.services import PlanError
from inclusive.storage import storage

SIGNATURES = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
)
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def sniff(head: bytes) -> tuple[str, str] | None:
    """The content type and extension of a file, from its first bytes."""
    for signature, content_type, extension in SIGNATURES:
        if head.startswith(signature):
            return content_type, extension
    return None


def _safe_name(name: str, extension: str) -> str:
    stem = re.sub(r"[^\w.-]+", "_", (name or "evidence").rsplit(".", 1)[0])[:80].strip("._")
    return f"{stem or 'evidence'}{extension}"


def attach(milestone: Milestone, upload: FileStorage, actor_id: int) -> Evidence:
    """Check and store one uploaded file as evidence of a milestone."""
    limit = current_app.config.get("EVIDENCE_MAX_BYTES", DEFAULT_MAX_BYTES)
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise PlanError(
            _(
                "%(name)s is larger than %(size)s.",
                name=upload.filename or "?",
                size=f"{limit // 1024} KB" if limit < 1024 * 1024 else f"{limit // 1048576} MB",
            )
        )
    if not data:
        raise PlanError(_("%(name)s is empty.", name=upload.filename or "?"))
    kind = sniff(data[:16])
    if kind is None:
        raise PlanError(_("%(name)s is not a PDF, JPEG or PNG file.", name=upload.filename or "?"))
    content_type, extension = kind
    key = storage().save(data, extension)
    evidence = Evidence(
        milestone_id=milestone.id,
        filename=_safe_name(upload.filename or "", extension),
        content_type=content_type,
        size=len(data),
        storage_key=key,
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by_id=actor_id,
    )
    db.session.add(evidence)
    db.session.flush()
    record(
        "milestone.evidence",
        producer_id=milestone.producer_id,
        program_id=milestone.program_id,
        milestone=milestone.name,
        file=evidence.filename,
        size=len(data),
    )
    return evidence
