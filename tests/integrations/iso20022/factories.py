"""Fixed inputs for the ISO 20022 tests: payment instructions, times, the lender's account."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from integrations.bank.iso20022 import PaymentInstruction

CST = dt.timezone(dt.timedelta(hours=8))
CREATED_AT = dt.datetime(2026, 3, 2, 9, 30, 0, tzinfo=CST)
DAY = dt.date(2026, 3, 2)

LENDER_NAME = "Harbour Bank SCF Lending"
LENDER_ACCOUNT = "6222020200001234567"
LENDER_AGENT = "HBSCCNSHXXX"


def payment(**overrides: Any) -> PaymentInstruction:
    """A disbursement from the lender's account to a core enterprise; ``overrides`` change it."""
    values: dict[str, Any] = {
        "end_to_end_id": "DSB-000001",
        "amount": Decimal("80000.00"),
        "currency": "CNY",
        "debtor_name": LENDER_NAME,
        "debtor_account": LENDER_ACCOUNT,
        "debtor_agent": LENDER_AGENT,
        "creditor_name": "华东机械制造有限公司",
        "creditor_account": "6228480010000000001",
        "creditor_agent": "102100099996",
        "requested_execution_date": DAY,
        "remittance": "LN-2026-000001",
    }
    values.update(overrides)
    return PaymentInstruction(**values)


def golden_payments() -> list[PaymentInstruction]:
    """The fixed set behind the golden pain.001: two execution dates (two blocks), a BIC and a
    CNAPS-style agent, an IBAN and a domestic account, and amounts that need their two places."""
    return [
        payment(),
        payment(
            end_to_end_id="DSB-000002",
            amount=Decimal("1234.5"),
            creditor_name="Rhein Präzision GmbH",
            creditor_account="DE89370400440532013000",
            creditor_agent="COBADEFFXXX",
            remittance="LN-2026-000002",
        ),
        payment(
            end_to_end_id="DSB-000003",
            amount=Decimal("0.01"),
            requested_execution_date=DAY + dt.timedelta(days=1),
            creditor_agent="",
            remittance="LN-2026-000003",
        ),
    ]


def many_payments(count: int, *, prefix: str = "DSB") -> list[PaymentInstruction]:
    return [
        payment(
            end_to_end_id=f"{prefix}-{n:08d}",
            amount=Decimal(1000 + n % 9000) + Decimal(n % 100) / 100,
            remittance=f"LN-2026-{n:08d}",
        )
        for n in range(count)
    ]
