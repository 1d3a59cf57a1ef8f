"""Default milestone templates: how each kind of program really runs, step by step.

Offsets are days from enrollment; weights say how much a step counts toward progress;
evidence-required steps need a document or photo before a manager can verify them.
Names are translated: a new program gets them in its organization's language.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import LazyString

from inclusive.babelcache import lazy_gettext as _l
from inclusive.programs.models import ProgramKind


@dataclass(frozen=True)
class StepSpec:
    name: LazyString
    offset_days: int
    weight: int
    evidence_required: bool


def _s(name: LazyString, offset: int, weight: int, evidence: bool) -> StepSpec:
    return StepSpec(name, offset, weight, evidence)


GRADUATION = _l("Graduation review and credit-readiness profile")

DEFAULT_TEMPLATES: dict[ProgramKind, tuple[StepSpec, ...]] = {
    ProgramKind.SUPPLIER_PROGRAM: (
        _s(_l("Baseline diagnostic and supplier agreement signed"), 14, 1, True),
        _s(_l("Quality standards training completed"), 45, 2, True),
        _s(_l("Production plan agreed with the lead corporation"), 60, 1, True),
        _s(_l("Technology upgrade installed"), 120, 3, True),
        _s(_l("First purchase order delivered on time"), 150, 2, True),
        _s(_l("Quality audit by the lead corporation passed"), 210, 3, True),
        _s(_l("Supply contract at a fair price renewed"), 300, 2, True),
        _s(GRADUATION, 365, 2, False),
    ),
    ProgramKind.FRANCHISE_SYSTEM: (
        _s(_l("Franchise fit assessment"), 14, 1, False),
        _s(_l("Franchise agreement signed"), 30, 2, True),
        _s(_l("Operations manual training completed"), 60, 2, True),
        _s(_l("Premises adapted to brand standards"), 90, 2, True),
        _s(_l("Opening with supply from the franchise network"), 120, 3, True),
        _s(_l("First standards audit passed"), 180, 2, True),
        _s(_l("Six months of sales reports delivered on time"), 300, 2, False),
        _s(GRADUATION, 365, 2, False),
    ),
    ProgramKind.SERVICE_CENTER: (
        _s(_l("Intake and viability diagnostic"), 7, 1, False),
        _s(_l("Business plan drafted with an advisor"), 45, 2, True),
        _s(_l("Bookkeeping set up"), 60, 2, True),
        _s(_l("Costing and pricing workshop attended"), 75, 1, False),
        _s(_l("Formal registration completed"), 120, 2, True),
        _s(_l("Three months of records kept"), 150, 2, True),
        _s(_l("Follow-up viability diagnostic"), 180, 1, False),
        _s(GRADUATION, 270, 2, False),
    ),
    ProgramKind.EXPORT_CONSORTIUM: (
        _s(_l("Export readiness assessment"), 14, 1, False),
        _s(_l("Consortium membership agreement signed"), 30, 2, True),
        _s(_l("Product adapted to the export market's standards"), 90, 2, True),
        _s(_l("Certifications obtained (organic, fair trade, health)"), 150, 3, True),
        _s(_l("Joint trade fair or buyer mission"), 180, 1, False),
        _s(_l("First consolidated shipment sent"), 240, 3, True),
        _s(_l("Repeat order received"), 330, 2, True),
        _s(GRADUATION, 365, 2, False),
    ),
    ProgramKind.RURAL_NETWORK: (
        _s(_l("Farm visit and baseline"), 7, 1, False),
        _s(_l("Supply agreement with the agro-industry signed"), 30, 2, True),
        _s(_l("Good agricultural practices training"), 60, 2, True),
        _s(_l("Inputs and technical assistance plan agreed"), 75, 1, False),
        _s(_l("First harvest delivered to the agro-industry"), 150, 3, True),
        _s(_l("Quality and traceability check passed"), 180, 2, True),
        _s(_l("Second season planted"), 240, 1, False),
        _s(GRADUATION, 365, 2, False),
    ),
    ProgramKind.TECHNOLOGY_LINKAGE: (
        _s(_l("Technology needs assessment"), 14, 1, False),
        _s(_l("Matched with a science or technology institute"), 45, 1, True),
        _s(_l("Joint project agreement signed"), 60, 2, True),
        _s(_l("Prototype or pilot in the workshop"), 120, 3, True),
        _s(_l("Staff trained in the new technique"), 150, 2, True),
        _s(_l("Technology adopted in regular production"), 210, 3, True),
        _s(_l("Results measured (productivity, quality, costs)"), 270, 2, False),
        _s(GRADUATION, 330, 2, False),
    ),
}

KIND_LABELS = {
    ProgramKind.SUPPLIER_PROGRAM: _l("Supplier program with a lead corporation"),
    ProgramKind.FRANCHISE_SYSTEM: _l("Franchise system"),
    ProgramKind.SERVICE_CENTER: _l("Service center"),
    ProgramKind.EXPORT_CONSORTIUM: _l("Export consortium"),
    ProgramKind.RURAL_NETWORK: _l("Rural network around an agro-industry"),
    ProgramKind.TECHNOLOGY_LINKAGE: _l("Technology linkage"),
}
