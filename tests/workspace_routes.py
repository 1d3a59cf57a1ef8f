"""Route-matrix entries of programs, producers and plans (merged into test_route_matrix)."""

from __future__ import annotations

from inclusive.tenancy.roles import Role
from tests.routes import ALL_ROLES, Rule, org

MANAGERS = frozenset({Role.ADMIN, Role.PROGRAM_MANAGER})


def _program(ctx):
    return {"program_id": ctx["program"]}


def _step(ctx):
    return {"program_id": ctx["program"], "step_id": ctx["step"]}


def _producer(ctx):
    return {"producer_id": ctx["producer"]}


def _milestone(ctx):
    return {"milestone_id": ctx["milestone"]}


WORKSPACE_ROUTES: dict[str, Rule] = {
    "programs.index": org(ALL_ROLES),
    "programs.new": org(MANAGERS),
    "programs.show": org(ALL_ROLES, args=_program),
    "programs.edit": org(MANAGERS, args=_program),
    "programs.status": org(MANAGERS, "POST", args=_program, data={"status": "open"}),
    "programs.assign_officer": org(MANAGERS, "POST", args=_program),
    "programs.remove_officer": org(
        MANAGERS, "POST", args=lambda ctx: {"program_id": ctx["program"], "user_id": 1}
    ),
    "programs.template": org(ALL_ROLES, args=_program),
    "programs.add_step": org(
        MANAGERS,
        "POST",
        args=_program,
        data={"name": "Extra step", "offset_days": "30", "weight": "1"},
    ),
    "programs.update_step": org(MANAGERS, "POST", args=_step),
    "programs.remove_step": org(MANAGERS, "POST", args=_step),
    "programs.move_step": org(MANAGERS, "POST", args=_step, data={"direction": "down"}),
    "programs.bulk_achieve": org(MANAGERS, "POST", args=_program),
    "producers.index": org(ALL_ROLES),
    "producers.export": org(ALL_ROLES),
    "producers.new": org(MANAGERS),
    "producers.show": org(ALL_ROLES, args=_producer),
    "producers.edit": org(MANAGERS, args=_producer),
    "producers.enroll": org(MANAGERS, "POST"),
    "producers.add_snapshot": org(MANAGERS, "POST", args=_producer),
    "producers.add_assessment": org(MANAGERS, "POST", args=_producer),
    "producers.add_purchase": org(MANAGERS, "POST", args=_producer),
    "plans.transition": org(
        MANAGERS,
        "POST",
        args=lambda ctx: {"enrollment_id": ctx["enrollment"]},
        data={"state": "active"},
    ),
    "plans.milestone": org(ALL_ROLES, args=_milestone),
    "plans.verify": org(MANAGERS, "POST", args=_milestone),
    "plans.waive": org(MANAGERS, "POST", args=_milestone, data={"reason": "Does not apply"}),
    "plans.miss": org(MANAGERS, "POST", args=_milestone),
    "plans.send_back": org(MANAGERS, "POST", args=_milestone, data={"reason": "Redo"}),
    "plans.evidence": org(ALL_ROLES, args=lambda ctx: {"evidence_id": ctx["evidence"]}),
}
