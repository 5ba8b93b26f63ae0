"""The lender's repayment account is one rule (``lending.selectors.programs.repayment_account``):
the bank's payment order, the reminder e-mail and the portal's loan page all quote the same
account, the program's bank's settlement account or else the platform's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from integrations.bank.disbursement import _request_for
from integrations.notifications import notifications_send_due
from lending.models import Bank, Disbursement
from lending.selectors.programs import repayment_account
from scf import clock
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.lending.loan_makers import disbursed_loan
from tests.orders.factories import UserFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.UTC)  # 09:00 on 2026-03-10 in Shanghai
DUE = dt.date(2026, 3, 13)  # the before-due reminder goes out on T0


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: T0)


def _surfaces(line: Any) -> dict[str, str]:
    """The account each surface tells, for one loan of ``line``."""
    loan = disbursed_loan(line, value_date=dt.date(2025, 12, 1), due_date=DUE)
    payment = _request_for(
        Disbursement.objects.select_related("loan__program__bank").get(loan=loan)
    )
    assert notifications_send_due(today=dt.date(2026, 3, 10)) == 1
    [message] = mail.outbox
    reminder = message.body.split("account ", 1)[1].split(",", 1)[0]
    client = Client()
    client.force_login(UserFactory(role="agent", agent=line.agent))
    page = client.get(f"/loans/{loan.pk}/").content.decode()
    instructions = page[page.index('id="repay-instructions"') : page.index('id="history"')]
    shown = instructions.split("Account</dt><dd>", 1)[1].split("</dd>", 1)[0]
    return {
        "rule": repayment_account(loan.program),
        "bank payment order": payment.debtor_account,
        "reminder": reminder,
        # No account to quote: the page says to ask (its words for the empty account).
        "loan page": "" if "relationship manager" in shown else shown,
    }


@pytest.mark.parametrize(
    ("bank_account", "platform_account", "quoted"),
    [
        ("6222-BANK-0001", "6222-PLATFORM-0009", "6222-BANK-0001"),
        ("", "6222-PLATFORM-0009", "6222-PLATFORM-0009"),
        ("", "", ""),
    ],
)
def test_the_bank_the_reminder_and_the_loan_page_quote_one_account(
    agent: Any,
    enterprise: Any,
    settings: Any,
    bank_account: str,
    platform_account: str,
    quoted: str,
) -> None:
    settings.LENDER_SETTLEMENT_ACCOUNT = platform_account
    line = CreditLineFactory(agent=agent, program=ProgramFactory(enterprise=enterprise))
    Bank.objects.filter(pk=line.program.bank_id).update(settlement_account_no=bank_account)
    seen = _surfaces(line)
    assert set(seen.values()) == {quoted}, seen
