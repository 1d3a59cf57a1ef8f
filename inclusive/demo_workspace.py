"""Demo programs, producers, plans, figures, diagnostics and ledgers (deterministic)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import func, select

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.impact import services as impact
from inclusive.milestones import services as plans
from inclusive.milestones.models import Enrollment, EnrollmentState, Milestone, MilestoneStatus
from inclusive.producers.models import Gender, Producer, ProducerKind, ProducerSector
from inclusive.producers.services import name_key
from inclusive.programs import services as programs
from inclusive.programs.models import CounterpartKind, Program, ProgramKind, ProgramStatus
from inclusive.tenancy.models import Organization

PRODUCERS_PER_ORG = 180

CATALOG = {
    "andes": {
        "first": [
            "Rosa",
            "Juana",
            "María",
            "Luz",
            "Carmen",
            "Elena",
            "Julia",
            "Sonia",
            "Pedro",
            "Juan",
            "Luis",
            "Carlos",
            "Wilber",
            "Edwin",
            "Hilario",
            "Teodoro",
        ],
        "last": [
            "Quispe",
            "Mamani",
            "Huamán",
            "Condori",
            "Flores",
            "Choque",
            "Apaza",
            "Ccori",
            "Ticona",
            "Pari",
            "Limachi",
            "Cusi",
            "Yupanqui",
            "Huanca",
            "Layme",
        ],
        "collective": [
            "Cooperativa Agraria",
            "Asociación de Productores",
            "Taller Textil",
            "Comunidad Campesina",
            "Bodega",
        ],
        "places": {
            "Cusco": ["Urubamba", "Calca", "Anta"],
            "Puno": ["Juliaca", "Azángaro"],
            "Junín": ["Satipo", "Pichanaki", "Huancayo"],
            "Ayacucho": ["Huanta"],
        },
        "phone": "+51 9",
        "programs": [
            (
                ProgramKind.SUPPLIER_PROGRAM,
                "Proveedores de quinua para Andina Foods",
                CounterpartKind.LEAD_CORPORATION,
                "Andina Foods S.A.C.",
                "Puno",
                ["agriculture"],
            ),
            (
                ProgramKind.RURAL_NETWORK,
                "Red de cacao fino de Satipo",
                CounterpartKind.AGRO_INDUSTRY,
                "Cacao del Valle S.A.",
                "Junín",
                ["agriculture", "agrifood"],
            ),
            (
                ProgramKind.SERVICE_CENTER,
                "Centro de servicios empresariales Cusco",
                CounterpartKind.OTHER,
                "Municipalidad Provincial del Cusco",
                "Cusco",
                ["commerce", "crafts", "food_service"],
            ),
            (
                ProgramKind.EXPORT_CONSORTIUM,
                "Consorcio exportador de tejidos de alpaca",
                CounterpartKind.OTHER,
                "Cámara de Comercio de Cusco",
                "Cusco",
                ["textiles", "crafts"],
            ),
        ],
        "products": {
            "Proveedores de quinua para Andina Foods": ("quinua orgánica", "kg", 6.5),
            "Red de cacao fino de Satipo": ("cacao en grano", "kg", 11.0),
        },
    },
    "sertao": {
        "first": [
            "Maria",
            "Francisca",
            "Antônia",
            "Raimunda",
            "Ana",
            "Josefa",
            "Luzia",
            "Rita",
            "José",
            "João",
            "Antônio",
            "Francisco",
            "Raimundo",
            "Manoel",
            "Cícero",
        ],
        "last": [
            "Silva",
            "Santos",
            "Oliveira",
            "Souza",
            "Lima",
            "Pereira",
            "Alves",
            "Nogueira",
            "Bezerra",
            "Cavalcante",
            "Ferreira",
            "Rodrigues",
            "Gomes",
            "Barbosa",
        ],
        "collective": [
            "Cooperativa",
            "Associação de Produtores",
            "Casa de Farinha",
            "Ateliê de Bordado",
            "Queijaria",
        ],
        "places": {
            "Ceará": ["Quixadá", "Crato", "Sobral"],
            "Pernambuco": ["Caruaru", "Petrolina"],
            "Piauí": ["Picos", "Oeiras"],
            "Bahia": ["Juazeiro"],
        },
        "phone": "+55 88 9",
        "programs": [
            (
                ProgramKind.SUPPLIER_PROGRAM,
                "Fornecedores de castanha de caju para a CajuBras",
                CounterpartKind.LEAD_CORPORATION,
                "CajuBras Alimentos Ltda.",
                "Ceará",
                ["agriculture", "agrifood"],
            ),
            (
                ProgramKind.RURAL_NETWORK,
                "Rede de leite do Sertão Central",
                CounterpartKind.AGRO_INDUSTRY,
                "Laticínios Serra Azul",
                "Ceará",
                ["livestock"],
            ),
            (
                ProgramKind.FRANCHISE_SYSTEM,
                "Franquia Sabor do Sertão",
                CounterpartKind.FRANCHISOR,
                "Sabor do Sertão Franquias",
                "Pernambuco",
                ["food_service"],
            ),
            (
                ProgramKind.TECHNOLOGY_LINKAGE,
                "Vínculo tecnológico com o IFCE",
                CounterpartKind.INSTITUTE,
                "Instituto Federal do Ceará",
                "Ceará",
                ["manufacturing", "agrifood"],
            ),
        ],
        "products": {
            "Fornecedores de castanha de caju para a CajuBras": ("castanha de caju", "kg", 9.0),
            "Rede de leite do Sertão Central": ("leite", "l", 2.3),
        },
    },
}


def _month(day: date, back: int) -> date:
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def load_workspace(org: Organization, officer: User, manager: User) -> bool:
    """Fill an organization's workspace once; return False when it already has programs."""
    if db.session.scalar(select(func.count()).select_from(Program)):
        return False
    spec = CATALOG[org.slug]
    rng = random.Random(f"inclusive-demo-{org.slug}")  # noqa: S311 - repeatable demo data
    today = plans.today()
    created = []
    for kind, name, counterpart_kind, counterpart, region, _sectors in spec["programs"]:
        program = programs.create_program(
            org,
            kind,
            name=name,
            region=region,
            counterpart_kind=counterpart_kind,
            counterpart_name=counterpart,
            description="",
            start_date=_month(today, 14),
            end_date=_month(today, -10),
        )
        program.status = ProgramStatus.RUNNING
        programs.assign_officer(program, officer.id)
        created.append(program)
    producers = _producers(spec, rng)
    db.session.flush()
    for index, producer in enumerate(producers):
        program = created[index % len(created)]
        if index % 9 == 8:
            continue  # registered, not enrolled yet
        start = today - timedelta(days=rng.randint(20, 400))
        plans.enroll(program, [producer.id], EnrollmentState.ENROLLED, on=start)
        _progress(producer, program, start, today, rng, manager.id)
        _figures(producer.id, today, rng, manager.id)
        if index % 2 == 0:
            _diagnostics(producer.id, today, rng, officer.id)
        product = spec["products"].get(program.name)
        if product:
            _purchases(producer.id, program, product, start, today, rng, officer.id)
    plans.sweep_risk(today)
    return True


def _producers(spec: dict, rng: random.Random) -> list[Producer]:
    producers = []
    regions = list(spec["places"].items())
    for n in range(PRODUCERS_PER_ORG):
        collective = n % 7 == 0
        first, last = rng.choice(spec["first"]), rng.choice(spec["last"])
        region, towns = regions[n % len(regions)]
        town = rng.choice(towns)
        if collective:
            name = f"{rng.choice(spec['collective'])} {town} {n // 7 + 1}"
            kind, gender = (
                rng.choice([ProducerKind.COOPERATIVE, ProducerKind.ASSOCIATION]),
                (Gender.MIXED),
            )
        else:
            name = f"{first} {last} {rng.choice(spec['last'])}"
            kind = rng.choice(
                [
                    ProducerKind.INDIVIDUAL,
                    ProducerKind.FAMILY_BUSINESS,
                    ProducerKind.MICRO_ENTERPRISE,
                ]
            )
            gender = Gender.FEMALE if first.endswith("a") else Gender.MALE
        program_sectors = spec["programs"][n % len(spec["programs"])][5]
        producer = Producer(
            kind=kind,
            name=name,
            name_key=name_key(name),
            national_id=f"{10_000_000 + n * 7919 % 89_999_999}" if n % 5 else None,
            representative=f"{first} {last}" if collective else "",
            owner_gender=gender,
            phone=f"{spec['phone']}{rng.randint(10_000_000, 99_999_999)}".replace(" ", ""),
            region=region,
            municipality=town,
            employees=rng.randint(0, 12 if collective else 4),
            formally_registered=rng.random() < 0.45,
        )
        producer.sector_rows = [ProducerSector(sector=s) for s in program_sectors[:2]]
        db.session.add(producer)
        producers.append(producer)
    return producers


def _progress(
    producer: Producer,
    program: Program,
    start: date,
    today: date,
    rng: random.Random,
    actor_id: int,
) -> None:
    enrollment = db.session.scalar(
        select(Enrollment).filter_by(program_id=program.id, producer_id=producer.id)
    )
    plans.transition(enrollment, EnrollmentState.ACTIVE)
    diligence = rng.random()
    for milestone in db.session.scalars(
        select(Milestone).filter_by(enrollment_id=enrollment.id).order_by(Milestone.position)
    ):
        if milestone.due_date > today + timedelta(days=20):
            break
        if rng.random() > diligence + 0.15:
            continue  # late: the producer falls at risk
        plans.record_progress(milestone, MilestoneStatus.ACHIEVED, "", actor_id)
        if not milestone.evidence_required and rng.random() < 0.8:
            plans.verify(milestone, actor_id)
    if diligence < 0.08:
        plans.transition(
            enrollment, EnrollmentState.WITHDRAWN, "Migró a la ciudad / Mudou-se para a cidade"
        )
    elif all(m.is_done for m in enrollment.milestones) and enrollment.milestones:
        plans.transition(enrollment, EnrollmentState.GRADUATED)


def _figures(producer_id: int, today: date, rng: random.Random, actor_id: int) -> None:
    sales = rng.randint(800, 6000)
    trend = rng.choice([-0.06, 0.0, 0.02, 0.05])
    for back in range(rng.randint(2, 9), 0, -1):
        sales = max(100, int(sales * (1 + trend + rng.uniform(-0.05, 0.05))))
        costs = int(sales * rng.uniform(0.55, 0.8))
        household = int(sales * rng.uniform(0.1, 0.3))
        surplus = sales - costs - household
        reinvest = max(0, int(surplus * rng.uniform(0.2, 0.8))) if surplus > 0 else 0
        impact.save_snapshot(
            producer_id,
            _month(today, back),
            {
                "sales": sales,
                "costs": costs,
                "household_withdrawals": household,
                "reinvestment": reinvest,
                "assets": sales * 3,
                "debt": rng.randint(0, sales),
                "employees": rng.randint(0, 4),
            },
            actor_id,
        )


def _diagnostics(producer_id: int, today: date, rng: random.Random, actor_id: int) -> None:
    base = {f: rng.randint(0, 2) for f in impact.VIABILITY_FACTORS}
    for back in (240, 120, 10):
        if rng.random() < 0.3:
            continue
        scores = {f: min(4, v + (240 - back) // 110 + rng.randint(0, 1)) for f, v in base.items()}
        impact.save_assessment(producer_id, today - timedelta(days=back), scores, "", actor_id)


def _purchases(
    producer_id: int,
    program: Program,
    product: tuple[str, str, float],
    start: date,
    today: date,
    rng: random.Random,
    actor_id: int,
) -> None:
    name, unit, price = product
    day = start + timedelta(days=45)
    while day < today:
        impact.record_purchase(
            producer_id,
            program,
            {
                "purchased_on": day,
                "product": name,
                "quantity": rng.randint(40, 600),
                "unit": unit,
                "unit_price": f"{price * rng.uniform(0.95, 1.1):.2f}",
                "on_time": rng.random() < 0.85,
                "quality_accepted": rng.random() < 0.9,
            },
            actor_id,
        )
        day += timedelta(days=rng.randint(25, 50))
