"""Demo capital partners: one of each kind, with users, active with both demo organizations."""

from __future__ import annotations

from sqlalchemy import select

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.partners.models import CapitalPartner, PartnerKind, PartnerRole, Product
from inclusive.partners.services import add_partner_user, create_partner, link_partner
from inclusive.tenancy.models import Organization

P = Product
PARTNERS = [
    {
        "slug": "andina",
        "name": "Microfinanciera Andina",
        "kind": PartnerKind.MFI,
        "country": "PE",
        "description": "Crédito para micro y pequeños productores de la sierra sur.",
        "regions": ["Cusco", "Puno", "Apurímac"],
        "products": [P.WORKING_CAPITAL_LOAN, P.ASSET_LOAN, P.MICRO_INSURANCE, P.SAVINGS],
        "ticket": (50_000, 3_000_000, "PEN"),
        "people": ("Carmen Villca Apaza", "Raúl Mamani Ccori", "es"),
    },
    {
        "slug": "angeles-del-sur",
        "name": "Red de Inversionistas Ángeles del Sur",
        "kind": PartnerKind.ANGEL_NETWORK,
        "country": "CL",
        "description": "Inversión ángel en emprendimientos con tracción comercial.",
        "regions": ["Biobío", "Araucanía", "Los Lagos"],
        "products": [P.EQUITY],
        "ticket": (1_000_000, 15_000_000, "USD"),
        "people": ("Ignacio Sepúlveda", "Valentina Muñoz", "es"),
    },
    {
        "slug": "fundo-sertao",
        "name": "Fundo Local de Investimento do Sertão",
        "kind": PartnerKind.LOCAL_FUND,
        "country": "BR",
        "description": "Fundo de investimento produtivo local do semiárido.",
        "regions": ["Pernambuco", "Paraíba", "Ceará"],
        "products": [P.ASSET_LOAN, P.EQUITY, P.GUARANTEE],
        "ticket": (500_000, 10_000_000, "BRL"),
        "people": ("Severino Cavalcanti", "Luzia Araújo", "pt"),
    },
    {
        "slug": "sertaneja",
        "name": "Cooperativa de Crédito Sertaneja",
        "kind": PartnerKind.COOPERATIVE_BANK,
        "country": "BR",
        "description": "Cooperativa de crédito de agricultores familiares.",
        "regions": ["Pernambuco", "Bahia"],
        "products": [P.WORKING_CAPITAL_LOAN, P.SAVINGS, P.PAYMENTS],
        "ticket": (20_000, 2_000_000, "BRL"),
        "people": ("Josefa Bezerra", "Cícero Lima", "pt"),
    },
    {
        "slug": "garantias-pacifico",
        "name": "Fondo de Garantías del Pacífico",
        "kind": PartnerKind.OTHER,
        "country": "PE",
        "description": "Garantías parciales para créditos a pequeños productores.",
        "regions": ["Piura", "Lambayeque", "La Libertad"],
        "products": [P.GUARANTEE],
        "ticket": (100_000, 5_000_000, "PEN"),
        "people": ("Rocío Zapata", "Hugo Chunga", "es"),
    },
]

DEMO_ORGANIZATIONS = ("andes", "sertao")


def _user(email: str, name: str, locale: str, password_hash: str) -> User:
    user = db.session.scalar(select(User).filter_by(email=email))
    if user is None:
        user = User(email=email, name=name, locale=locale, password_hash=password_hash)
        db.session.add(user)
        db.session.flush()
    return user


def load_partners(password_hash: str) -> list[tuple[str, str, str]]:
    """Create what is missing of the demo partners; return their (login, partner, role)."""
    logins: list[tuple[str, str, str]] = []
    organizations = list(
        db.session.scalars(select(Organization).where(Organization.slug.in_(DEMO_ORGANIZATIONS)))
    )
    for spec in PARTNERS:
        partner = db.session.scalar(select(CapitalPartner).filter_by(slug=spec["slug"]))
        if partner is None:
            low, high, currency = spec["ticket"]
            partner = create_partner(
                slug=spec["slug"],
                name=spec["name"],
                kind=spec["kind"],
                country=spec["country"],
                description=spec["description"],
                regions=spec["regions"],
                products=spec["products"],
                ticket_min=low,
                ticket_max=high,
                ticket_currency=currency,
            )
        admin_name, officer_name, locale = spec["people"]
        for local, name, role in (
            ("admin", admin_name, PartnerRole.PARTNER_ADMIN),
            ("officer", officer_name, PartnerRole.LOAN_OFFICER),
        ):
            email = f"{local}@{spec['slug']}.example"
            add_partner_user(partner, _user(email, name, locale, password_hash), role)
            logins.append((email, spec["slug"], role.value))
        for org in organizations:
            link_partner(org, partner)
    db.session.flush()
    return logins
