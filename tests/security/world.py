"""A seeded world for the adversarial API tests (schema fuzzing, bad money input, IDOR sweep).

Two sides, ``a`` (enterprise X) and ``b`` (enterprise Y), each with a program, two agents with
credit lines, orders in several states and loans in several states (in review with its open
case, approved and not paid out, active with a repayment, overdue), an enterprise admin and an
agent user. Each side's program is with its own bank (``a`` with the factories' default bank,
``b`` with a second one); the bank staff (risk reviewer, risk approver, operations admin) work
for side ``a``'s bank and see only that side.

Every object is made by the same services or test makers the rest of the suite uses, so the
credit lines, programs and ledger agree (``ledger_check`` is green on the seeded world).

Also here: ``table_snapshot`` (every row of every table of our apps, to prove "0 rows written")
and ``money_counts`` (row counts of the money tables).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db import models
from django.utils import timezone
from rest_framework.authtoken.models import Token

from integrations.bank_models import (
    BankFile,
    BreakKind,
    ReconciliationBreak,
    ReconciliationRun,
    StatementEntry,
    UnappliedCredit,
)
from lending.models import (
    Accrual,
    Disbursement,
    JournalEntry,
    JournalLine,
    Loan,
    LoanStatus,
    Repayment,
)
from lending.services.repayments import repayment_record
from orders.models import SalesOrder, SalesOrderLine, User
from tests.lending.factories import BankFactory, CreditLineFactory, ProgramFactory
from tests.lending.loan_makers import disbursed_loan, pending_loan
from tests.orders.factories import AgentFactory, EnterpriseFactory, OrderFactory, UserFactory

ROLES = ("agent", "enterprise_admin", "risk_reviewer", "risk_approver", "ops_admin")
# The tables that hold money or money movements: bad money input must change none of them.
MONEY_MODELS: tuple[type[models.Model], ...] = (
    SalesOrder,
    SalesOrderLine,
    Loan,
    JournalEntry,
    JournalLine,
    Repayment,
    Accrual,
    Disbursement,
)
# Apps whose every row the IDOR sweep snapshots (auth tokens and sessions are not ours to check).
SNAPSHOT_APPS = ("orders", "lending", "integrations")


@dataclass
class Side:
    """One enterprise and everything hanging off it."""

    enterprise: Any
    program: Any
    agent: Any
    other_agent: Any
    line: Any
    user: User
    other_user: User
    admin: User
    orders: dict[str, Any] = field(default_factory=dict)
    loans: dict[str, Loan] = field(default_factory=dict)
    review: Any = None
    repayment: Repayment | None = None
    other_order: Any = None  # the other agent's, in the same enterprise
    credit: Any = None  # an open unapplied credit at the side's bank, from an imported camt.054
    bank_file: Any = None
    run: Any = None  # a reconciliation run of the side's bank, with a break


@dataclass
class World:
    a: Side
    b: Side
    reviewer: User
    approver: User
    ops: User

    def user_for(self, role: str) -> User:
        return {
            "agent": self.a.user,
            "enterprise_admin": self.a.admin,
            "risk_reviewer": self.reviewer,
            "risk_approver": self.approver,
            "ops_admin": self.ops,
        }[role]

    def token_for(self, role: str) -> str:
        return token_key(self.user_for(role))


def token_key(user: User) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def _side(today: dt.date, bank: Any) -> Side:
    enterprise = EnterpriseFactory()
    # Loans above 1,000.00 are referred, so finance requests of the fuzzer land in review.
    program = ProgramFactory(
        enterprise=enterprise, bank=bank, auto_approve_limit=Decimal("1000.00")
    )
    agent = AgentFactory(enterprises=[enterprise])
    other_agent = AgentFactory(enterprises=[enterprise])
    line = CreditLineFactory(agent=agent, program=program)
    CreditLineFactory(agent=other_agent, program=program)
    side = Side(
        enterprise=enterprise,
        program=program,
        agent=agent,
        other_agent=other_agent,
        line=line,
        user=UserFactory(role="agent", agent=agent),
        other_user=UserFactory(role="agent", agent=other_agent),
        admin=UserFactory(role="enterprise_admin", enterprise=enterprise),
    )
    side.orders = {
        status: OrderFactory(agent=agent, enterprise=enterprise, status=status)
        for status in ("confirmed", "shipped", "cancelled")
    }
    side.orders["usd"] = OrderFactory(agent=agent, enterprise=enterprise, currency="USD")
    side.other_order = OrderFactory(agent=other_agent, enterprise=enterprise)
    side.loans["in_review"] = pending_loan(line, status=LoanStatus.IN_REVIEW)
    side.loans["approved"] = pending_loan(line)
    side.loans["active"] = disbursed_loan(
        line, value_date=today - dt.timedelta(days=10), due_date=today + dt.timedelta(days=80)
    )
    side.loans["overdue"] = disbursed_loan(
        line,
        value_date=today - dt.timedelta(days=100),
        due_date=today - dt.timedelta(days=10),
        status=LoanStatus.OVERDUE,
        days_past_due=10,
    )
    side.review = side.loans["in_review"].reviews.get()
    side.repayment = repayment_record(
        loan=side.loans["active"],
        amount=Decimal("100.00"),
        value_date=today,
        reference=f"SEED-{side.loans['active'].pk}",
        source="api",
        actor=None,
    )
    _bank_file_rows(side, today)
    return side


def _bank_file_rows(side: Side, today: dt.date) -> None:
    """What the file rail leaves at the side's bank: an imported camt.054 with a credit no loan
    claimed (open in the unapplied queue, refundable) and a reconciliation run with a break.
    Every text names the bank, so a page that leaks another bank's rows shows its code."""
    bank = side.program.bank
    now = timezone.now()
    side.bank_file = BankFile.objects.create(
        direction="inbound",
        kind="camt.054",
        bank=bank,
        message_id=f"MSG-{bank.code}",
        sha256=f"{bank.pk:064d}",
        path=f"/inbound/{bank.code}.xml",
        status="imported",
        transactions=1,
        created_at=now,
        imported_at=now,
    )
    entry = StatementEntry.objects.create(
        bank=bank,
        bank_file=side.bank_file,
        account=f"ACC-{bank.code}",
        booking_date=today,
        value_date=today,
        amount=Decimal("250.00"),
        currency="CNY",
        credit=True,
        entry_reference=f"REF-{bank.code}",
        remittance=f"Unknown payer at {bank.code}",
        debtor_name="Payer",
        debtor_account=f"CN-PAYER-{bank.code}",
        status="unapplied",
    )
    side.credit = UnappliedCredit.objects.create(
        entry=entry,
        bank=bank,
        amount=entry.amount,
        currency="CNY",
        reason="No loan has the reference",
        created_at=now,
    )
    side.run = ReconciliationRun.objects.create(
        bank=bank,
        account=f"ACC-{bank.code}",
        statement_date=today,
        book_opening=Decimal("0.00"),
        book_closing=Decimal("0.00"),
        entries=1,
        breaks_count=1,
        ran_at=now,
    )
    ReconciliationBreak.objects.create(
        run=side.run, kind=BreakKind.ENTRY_NOT_IN_BOOK, reference=f"BRK-{bank.code}"
    )


def seed_world() -> World:
    """Both sides and the bank staff (of side ``a``'s bank); call inside a test with database
    access."""
    today = dt.date.today()
    return World(
        a=_side(today, BankFactory()),
        b=_side(today, BankFactory(code="BANK-B", name="Second Commercial Bank")),
        reviewer=UserFactory(role="risk_reviewer"),
        approver=UserFactory(role="risk_approver"),
        ops=UserFactory(role="ops_admin"),
    )


def money_counts() -> dict[str, int]:
    """Row counts of every money table, by model name."""
    return {model.__name__: model.objects.count() for model in MONEY_MODELS}


def table_snapshot() -> dict[str, list[str]]:
    """Every row of every table of our apps, in primary-key order (a written row shows up)."""
    snapshot: dict[str, list[str]] = {}
    for app in SNAPSHOT_APPS:
        for model in apps.get_app_config(app).get_models():
            if model._meta.managed and not model._meta.proxy:
                rows = model._base_manager.order_by("pk").values_list()
                # repr: JSON columns hold dicts and lists, which are not hashable.
                snapshot[model._meta.label] = [repr(row) for row in rows]
    return snapshot


def snapshot_diff(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """Tables whose rows differ, with a count of changed rows (empty when nothing was written)."""
    changed = []
    for label, rows in after.items():
        old = before.get(label, [])
        if rows != old:
            differing = len(set(rows) ^ set(old))
            changed.append(f"{label}: {len(old)} -> {len(rows)} rows, {differing} differ")
    return changed
