"""Demo data of product.md §8: contracts held by the simulators' test persons."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Contract

DEMO_CONTRACTS = [
    # Smart-ID DEMO account PNOLV-040404-10003 (device link and notification end OK).
    dict(number="LVG-100001", holder_name="OK TESTNUMBER", holder_personal_code="040404-10003",
         supply_address="Brīvības iela 101-5, Rīga, LV-1001", email="ok.testnumber@demo.klients.lv"),
    # Smart-ID new-format DEMO account PNOLV-320000-10003.
    dict(number="LVG-100002", holder_name="OK TESTNUMBER", holder_personal_code="320000-10003",
         supply_address="Lāčplēša iela 20, Rīga, LV-1011", email="new.format@demo.klients.lv"),
    # eParaksts example person PNOLV-010180-15097.
    dict(number="LVG-100003", holder_name="Jānis Bērziņš", holder_personal_code="010180-15097",
         supply_address="Rūpniecības iela 3, Jelgava, LV-3001", email="janis.berzins@demo.klients.lv"),
    # Bank-link example user 374042-80367.
    dict(number="LVG-100004", holder_name="Anna Kalniņa", holder_personal_code="374042-80367",
         supply_address="Zemnieku iela 7, Liepāja, LV-3401", email="anna.kalnina@demo.klients.lv"),
]


def seed(session: Session) -> int:
    """Insert the demo contracts that are missing; return how many were added."""
    existing = set(session.scalars(select(Contract.number)))
    added = [Contract(start_date=date(2020, 1, 1), **row) for row in DEMO_CONTRACTS if row["number"] not in existing]
    session.add_all(added)
    return len(added)
