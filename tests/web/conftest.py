"""Fixtures for the web pages: a small world of parties and users, and Debian's Chromium.

Browser tests (marked ``browser``) drive ``/usr/bin/chromium`` through pytest-playwright; its own
browser download is never used. Where Chromium is not installed they are skipped (and counted);
CI installs it, and fails on any skip.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from lending.models import CreditLine, Loan, Program
from orders.models import Agent, CoreEnterprise, SalesOrder, User
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, EnterpriseFactory, OrderFactory, UserFactory

CHROMIUM = Path(os.environ.get("SCF_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "pw-for-tests-1"  # what UserFactory sets
# An approved loan goes on to be paid out (others' services move it along): any of these.
APPROVED_OR_LATER = {"approved", "disbursing", "active", "disbursement_failed"}
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "img"
_refs = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives Debian's Chromium with Playwright against live_server"
    )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch Debian's Chromium, headless, with the flags this machine's closed network needs."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; CI does)")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="module")
def allow_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an event loop on the test thread while a page is open; the
    tests are plain synchronous code that also use the ORM (and pytest-django flushes the
    database after them), which Django would otherwise refuse there. Module-scoped, so that it
    is set before the database fixtures and lifted after their teardown."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@dataclass
class World:
    enterprise: CoreEnterprise
    program: Program
    agent: Agent
    line: CreditLine
    agent_user: User
    other_agent: Agent
    other_line: CreditLine
    other_agent_user: User
    enterprise_admin: User
    other_enterprise: CoreEnterprise
    other_program: Program
    other_admin: User
    reviewer: User
    approver: User
    approver2: User
    ops: User

    def user(self, role: str) -> User:
        return {
            "agent": self.agent_user,
            "enterprise_admin": self.enterprise_admin,
            "risk_reviewer": self.reviewer,
            "risk_approver": self.approver,
            "ops_admin": self.ops,
        }[role]

    def order(self, amount: str = "5000.00", **kwargs: Any) -> SalesOrder:
        kwargs.setdefault("agent", self.agent)
        return OrderFactory(enterprise=self.enterprise, amount=Decimal(amount), **kwargs)


def build_world(**program_terms: Any) -> World:
    enterprise = EnterpriseFactory()
    program = ProgramFactory(enterprise=enterprise, **program_terms)
    agent = AgentFactory(enterprises=[enterprise])
    other_agent = AgentFactory(enterprises=[enterprise])
    other_enterprise = EnterpriseFactory()
    return World(
        enterprise=enterprise,
        program=program,
        agent=agent,
        line=CreditLineFactory(agent=agent, program=program),
        agent_user=UserFactory(username="agent.one", role="agent", agent=agent),
        other_agent=other_agent,
        other_line=CreditLineFactory(agent=other_agent, program=program),
        other_agent_user=UserFactory(username="agent.two", role="agent", agent=other_agent),
        enterprise_admin=UserFactory(
            username="enterprise.admin", role="enterprise_admin", enterprise=enterprise
        ),
        other_enterprise=other_enterprise,
        other_program=ProgramFactory(enterprise=other_enterprise),
        other_admin=UserFactory(
            username="other.admin", role="enterprise_admin", enterprise=other_enterprise
        ),
        reviewer=UserFactory(username="risk.reviewer", role="risk_reviewer"),
        approver=UserFactory(username="risk.approver1", role="risk_approver"),
        approver2=UserFactory(username="risk.approver2", role="risk_approver"),
        ops=UserFactory(username="ops.admin", role="ops_admin", is_staff=True),
    )


@pytest.fixture
def world(db: Any) -> World:
    # Principal above 5,000 goes to review; above 20,000 it needs two approvals.
    return build_world(
        auto_approve_limit=Decimal("5000.00"), maker_checker_threshold=Decimal("20000.00")
    )


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_loan(
    line: CreditLine,
    status: str,
    principal: str,
    *,
    outstanding: str = "0.00",
    reserved: str = "0.00",
    dpd: int = 0,
) -> Loan:
    """A loan written straight to the table with the balances given (as others' services would
    leave it), on an order of its own."""
    from scf import clock

    amount = (Decimal(principal) / Decimal("0.8")).quantize(Decimal("0.01"))
    order = OrderFactory(agent=line.agent, enterprise=line.program.enterprise, amount=amount)
    now = clock.now()
    return Loan.objects.create(
        program=line.program,
        credit_line=line,
        agent=line.agent,
        order=order,
        status=status,
        currency=line.program.currency,
        order_amount=amount,
        principal=Decimal(principal),
        advance_rate=Decimal("0.8000"),
        annual_rate=line.program.annual_rate,
        penalty_rate=line.program.penalty_rate,
        day_count=line.program.day_count,
        tenor_days=line.program.tenor_days,
        grace_days=line.program.grace_days,
        reserved_amount=Decimal(reserved),
        outstanding_principal=Decimal(outstanding),
        days_past_due=dpd,
        due_date=now.date(),
        reference=f"WEB{next(_refs):09d}",
        requested_at=now,
        approved_at=now,
    )
