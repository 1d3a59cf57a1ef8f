"""Import every model so that Alembic and create_all see the whole schema."""

from inclusive.auth.models import AuthSession, User
from inclusive.jobs.models import JobRecord
from inclusive.tenancy.models import Invitation, Membership, Organization

__all__ = ["AuthSession", "Invitation", "JobRecord", "Membership", "Organization", "User"]
