"""Repayment reminders: before the due date, on it, when overdue (day 1, then every 7 days) and
on acceleration; each sent once, recorded in the database, a rerun sends nothing new."""

from __future__ import annotations

import datetime as dt
import smtplib
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.core.mail import EmailMessage

from integrations.models import Notification
from integrations.notifications import (
    notification_send,
    notifications_send_due,
    reminders_due,
)
from integrations.tasks_events import send_reminders
from lending.models import Bank, Loan, LoanStatus
from lending.selectors.programs import repayment_account
from scf import clock
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.lending.loan_makers import disbursed_loan, pending_loan
from tests.lending.test_acceleration import order_cancelled

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.UTC)  # 09:00 on 2026-03-10 in Shanghai
VALUE_DATE = dt.date(2025, 12, 1)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: T0)


@pytest.fixture
def line(agent: Any, enterprise: Any) -> Any:
    return CreditLineFactory(agent=agent, program=ProgramFactory(enterprise=enterprise))


def loan_due(line: Any, due: dt.date, **fields: Any) -> Loan:
    return disbursed_loan(line, value_date=VALUE_DATE, due_date=due, **fields)


def sent_kinds() -> list[tuple[str, str]]:
    """(kind, reminder date) of every notification sent, oldest first."""
    rows = Notification.objects.filter(sent_at__isnull=False).order_by("pk")
    return [(n.kind, n.dedup_key.rsplit(":", 1)[1]) for n in rows]


def test_reminder_before_the_due_date_is_sent_once_and_recorded(line, agent):
    loan = loan_due(
        line,
        dt.date(2026, 3, 13),
        accrued_interest=Decimal("118.80"),
        accrued_penalty=Decimal("0.00"),
        accrued_through=dt.date(2026, 3, 9),
    )
    assert notifications_send_due(today=dt.date(2026, 3, 10)) == 1
    [message] = mail.outbox
    assert message.to == [agent.email]
    assert message.subject == f"Loan {loan.reference}: repayment due in 3 days"
    body = message.body
    assert f"Your loan {loan.reference} is due in 3 days, on 2026-03-13." in body
    assert f"Loan reference: {loan.reference} (quote it as the payment reference)" in body
    assert "Due date: 2026-03-13" in body and "Amount owed as of 2026-03-09:" in body
    # 8,000.00 principal + 118.80 interest + 0.00 penalty = 8,118.80
    assert "principal         8,000.00 CNY" in body
    assert "interest            118.80 CNY" in body
    assert "total             8,118.80 CNY" in body
    assert f"account {settings.LENDER_SETTLEMENT_ACCOUNT}, reference {loan.reference}" in body
    [record] = Notification.objects.all()
    assert record.dedup_key == f"reminder:{loan.pk}:before_due:2026-03-10"
    assert (record.kind, record.loan_id, record.agent_id) == ("before_due", loan.pk, agent.pk)
    assert (record.recipient, record.sent_at, record.body) == (agent.email, T0, body)
    assert notifications_send_due(today=dt.date(2026, 3, 10)) == 0
    assert len(mail.outbox) == 1 and Notification.objects.count() == 1


def test_due_and_overdue_reminders_follow_the_schedule_and_reruns_send_nothing(line):
    loan = loan_due(line, dt.date(2026, 3, 1))
    day = dt.date(2026, 2, 20)
    while day <= dt.date(2026, 3, 24):
        if day > loan.due_date:
            Loan.objects.filter(pk=loan.pk).update(status=LoanStatus.OVERDUE)
        notifications_send_due(today=day)
        notifications_send_due(today=day)  # a rerun the same day
        day += dt.timedelta(days=1)
    assert sent_kinds() == [
        ("before_due", "2026-02-26"),
        ("due", "2026-03-01"),
        ("overdue", "2026-03-02"),  # day 1
        ("overdue", "2026-03-09"),  # day 8
        ("overdue", "2026-03-16"),  # day 15
        ("overdue", "2026-03-23"),  # day 22
    ]
    assert len(mail.outbox) == 6
    overdue = mail.outbox[3]
    assert overdue.subject == f"Loan {loan.reference}: repayment 8 days overdue"
    assert "is 8 days past its due date of 2026-03-01" in overdue.body
    assert "after 3 days of grace" in overdue.body


def test_loans_not_owing_or_not_paid_out_get_no_reminder(line):
    due = dt.date(2026, 3, 10)
    for status in (LoanStatus.IN_REVIEW, LoanStatus.APPROVED, LoanStatus.DISBURSING):
        Loan.objects.filter(pk=pending_loan(line, status=status).pk).update(due_date=due)
    loan_due(line, due, status=LoanStatus.REPAID)
    loan_due(line, due, outstanding_principal=Decimal("0.00"))
    assert reminders_due(today=due) == []
    assert notifications_send_due(today=due) == 0 and mail.outbox == []


def test_a_recorded_notification_is_sent_at_most_once(line):
    loan_due(line, dt.date(2026, 3, 10))
    notifications_send_due(today=dt.date(2026, 3, 10))
    [record] = Notification.objects.all()
    # A second worker holding the same key (a duplicate task, a concurrent run) sends nothing.
    assert notification_send(dedup_key=record.dedup_key) is False
    assert len(mail.outbox) == 1


def test_failed_send_is_recorded_and_sent_by_the_next_run(line, monkeypatch):
    loan_due(line, dt.date(2026, 3, 10))

    def refuse(self: EmailMessage, fail_silently: bool = False) -> int:
        raise smtplib.SMTPServerDisconnected("connection lost")

    with monkeypatch.context() as patched:
        patched.setattr(EmailMessage, "send", refuse)
        assert notifications_send_due(today=dt.date(2026, 3, 10)) == 0
    [record] = Notification.objects.all()
    assert record.sent_at is None
    assert record.last_error == "SMTPServerDisconnected: connection lost"
    assert notifications_send_due(today=dt.date(2026, 3, 10)) == 1
    record.refresh_from_db()
    assert (record.sent_at, record.last_error) == (T0, "")
    assert notifications_send_due(today=dt.date(2026, 3, 10)) == 0
    assert len(mail.outbox) == 1 and Notification.objects.count() == 1


def test_agent_without_email_is_recorded_not_sent(line, agent):
    agent.email = ""
    agent.save()
    loan_due(line, dt.date(2026, 3, 10))
    assert notifications_send_due(today=dt.date(2026, 3, 10)) == 0
    [record] = Notification.objects.all()
    assert record.sent_at is None and record.last_error == "The agent has no email address."
    assert mail.outbox == []


def test_accelerated_loan_gets_one_notice_and_the_due_reminder(line):
    loan = loan_due(line, dt.date(2026, 5, 4))
    order_cancelled(loan)
    assert notifications_send_due() == 2  # today from the clock: 2026-03-10 in Shanghai
    assert sent_kinds() == [("due", "2026-03-10"), ("accelerated", "2026-03-10")]
    notice = mail.outbox[1]
    assert notice.subject == f"Loan {loan.reference}: repayment now due"
    assert f"Order {loan.order.external_id} financed by loan {loan.reference} was cancelled" in (
        notice.body
    )
    assert notifications_send_due(today=dt.date(2026, 3, 11)) == 1  # overdue day 1 only
    assert sent_kinds()[-1] == ("overdue", "2026-03-11")
    assert notifications_send_due(today=dt.date(2026, 3, 12)) == 0


def test_today_is_each_program_zone_business_date(monkeypatch, agent, enterprise):
    late = dt.datetime(2026, 3, 10, 17, 0, tzinfo=dt.UTC)  # 03-11 in Shanghai, 03-10 in London
    monkeypatch.setattr(clock, "now", lambda: late)
    shanghai = CreditLineFactory(agent=agent, program=ProgramFactory(enterprise=enterprise))
    london_program = ProgramFactory(enterprise=enterprise, time_zone="Europe/London")
    london = CreditLineFactory(agent=agent, program=london_program)
    in_shanghai = loan_due(shanghai, dt.date(2026, 3, 11))
    in_london = loan_due(london, dt.date(2026, 3, 10))
    found = {(r.loan.pk, r.kind, r.today) for r in reminders_due()}
    assert found == {
        (in_shanghai.pk, "due", dt.date(2026, 3, 11)),
        (in_london.pk, "due", dt.date(2026, 3, 10)),
    }


def test_selection_is_a_fixed_number_of_queries(line, django_assert_max_num_queries):
    for offset in range(20):
        loan_due(line, dt.date(2026, 3, 10) - dt.timedelta(days=offset))
    with django_assert_max_num_queries(3):  # zones; earliest overdue due date; the loans
        reminders = reminders_due(today=dt.date(2026, 3, 10))
    days = sorted((r.today - r.loan.due_date).days for r in reminders)
    assert days == [0, 1, 8, 15]


def test_repayment_account_comes_from_the_bank_then_settings(line, settings):
    loan_due(line, dt.date(2026, 3, 10))
    settings.LENDER_SETTLEMENT_ACCOUNT = "6222-SETTINGS"
    [reminder] = reminders_due(today=dt.date(2026, 3, 10))
    assert repayment_account(reminder.loan.program) == "6222-SETTINGS"
    Bank.objects.filter(pk=line.program.bank_id).update(settlement_account_no="6222-BANK")
    [reminder] = reminders_due(today=dt.date(2026, 3, 10))
    assert repayment_account(reminder.loan.program) == "6222-BANK"


def test_daily_task_takes_an_iso_date(line):
    loan_due(line, dt.date(2026, 3, 13))
    assert send_reminders("2026-03-10") == 1
    assert send_reminders("2026-03-10") == 0
    assert sent_kinds() == [("before_due", "2026-03-10")]
