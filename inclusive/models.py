"""Import every model so that Alembic and create_all see the whole schema."""

from inclusive.audit.models import AuditEvent
from inclusive.auth.models import AuthSession, User
from inclusive.consents.models import Consent
from inclusive.impact.models import EconomicSnapshot, OfftakePurchase, ViabilityAssessment
from inclusive.jobs.models import JobRecord
from inclusive.milestones.models import Enrollment, Evidence, Milestone
from inclusive.partners.models import CapitalPartner, PartnerMembership, Partnership
from inclusive.producers.models import ImportBatch, Producer, ProducerSector
from inclusive.programs.models import Program, ProgramOfficer, ProgramStateCount, TemplateStep
from inclusive.referrals.models import (
    ApiToken,
    Delivery,
    DeliveryAttempt,
    Referral,
    ReferralEvent,
    ReferralMessage,
    WebhookEndpoint,
)
from inclusive.tenancy.models import Invitation, Membership, Organization

__all__ = [
    "ApiToken",
    "AuditEvent",
    "AuthSession",
    "CapitalPartner",
    "Consent",
    "Delivery",
    "DeliveryAttempt",
    "EconomicSnapshot",
    "Enrollment",
    "Evidence",
    "ImportBatch",
    "Invitation",
    "JobRecord",
    "Membership",
    "Milestone",
    "OfftakePurchase",
    "Organization",
    "PartnerMembership",
    "Partnership",
    "Producer",
    "ProducerSector",
    "Program",
    "ProgramOfficer",
    "ProgramStateCount",
    "Referral",
    "ReferralEvent",
    "ReferralMessage",
    "TemplateStep",
    "User",
    "ViabilityAssessment",
    "WebhookEndpoint",
]
