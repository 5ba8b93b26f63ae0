"""The batch of synthetic history being written: its program, zone and one bulk writer per table."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import models

from lending.models import (
    CreditLine,
    Decision,
    Disbursement,
    JournalEntry,
    JournalLine,
    Loan,
    Program,
    Repayment,
)
from lending.scoring.bulk import BulkRows
from orders.models import Agent, AgentRelationship, SalesOrder, SalesOrderLine


def from_cents(cents: int) -> Decimal:
    return Decimal(cents) / 100


@dataclass
class Context:
    program: Program
    today: dt.date
    prefix: str
    detail: bool
    zone: ZoneInfo
    uscc_base: int
    tables: dict[str, BulkRows]

    def at(self, day: dt.date, hour: int) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour), tzinfo=self.zone)


def context(program: Program, today: dt.date, prefix: str, detail: bool) -> Context:
    digest = int(hashlib.sha256(prefix.encode()).hexdigest(), 16)
    models_by_name: dict[str, type[models.Model]] = {
        "agent": Agent,
        "relationship": AgentRelationship,
        "line": CreditLine,
        "order": SalesOrder,
        "order_line": SalesOrderLine,
        "loan": Loan,
        "decision": Decision,
        "disbursement": Disbursement,
        "repayment": Repayment,
        "entry": JournalEntry,
        "entry_line": JournalLine,
    }
    return Context(
        program=program,
        today=today,
        prefix=prefix,
        detail=detail,
        zone=ZoneInfo(program.time_zone),
        uscc_base=(digest % 10**5) * 10**8,
        tables={name: BulkRows(model) for name, model in models_by_name.items()},
    )
