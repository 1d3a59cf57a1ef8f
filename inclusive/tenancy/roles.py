"""Staff roles and what each may do inside an organization."""

from __future__ import annotations

from enum import StrEnum

from inclusive.babelcache import lazy_gettext as _l


class Role(StrEnum):
    ADMIN = "admin"
    PROGRAM_MANAGER = "program_manager"
    FIELD_OFFICER = "field_officer"
    VIEWER = "viewer"

    @property
    def label(self) -> str:
        return str(ROLE_LABELS[self])


ROLE_LABELS = {
    Role.ADMIN: _l("Administrator"),
    Role.PROGRAM_MANAGER: _l("Program manager"),
    Role.FIELD_OFFICER: _l("Field officer"),
    Role.VIEWER: _l("Viewer"),
}


class Permission(StrEnum):
    VIEW = "org.view"
    MANAGE_MEMBERS = "members.manage"
    MANAGE_ORGANIZATION = "org.manage"
    MANAGE_PROGRAMS = "programs.manage"  # programs, templates, officers, enrollments
    MANAGE_PRODUCERS = "producers.manage"  # the registry and its imports
    VERIFY = "milestones.verify"  # verify or waive milestones
    # Record progress, evidence and figures: field officers only for their programs.
    RECORD = "progress.record"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.PROGRAM_MANAGER: frozenset(
        {
            Permission.VIEW,
            Permission.MANAGE_PROGRAMS,
            Permission.MANAGE_PRODUCERS,
            Permission.VERIFY,
            Permission.RECORD,
        }
    ),
    Role.FIELD_OFFICER: frozenset({Permission.VIEW, Permission.RECORD}),
    Role.VIEWER: frozenset({Permission.VIEW}),
}


def role_can(role: Role | str, permission: Permission) -> bool:
    """Tell whether a role carries a permission."""
    return permission in ROLE_PERMISSIONS[Role(role)]
