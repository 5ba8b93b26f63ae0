"""Repayment reminders to agents by email: before the due date, on it, and while overdue.

Design
------
* **Which reminders are due** on a business date ``today`` (per program time zone, or one date
  given by the caller), for open loans that still owe something:

  - ``before_due``: ``due_date = today + REMINDER_DAYS_BEFORE_DUE`` (default 3);
  - ``due``: ``due_date = today``;
  - ``overdue``: ``today - due_date`` is 1, 8, 15, ... days (day one, then every 7 days),
    counted from the due date, not the stored ``days_past_due`` (COB may not have closed
    yesterday yet). The matching due dates are listed in the query, back to the earliest;
  - ``accelerated``: the loan was accelerated (its order was cancelled) in the last
    ``ACCELERATED_WINDOW``; sent once per loan (keyed by the new due date).

  One query per time zone selects them all (``reminders_due``); no loop over loans in SQL.
* **Once per key.** Each reminder has ``dedup_key = "reminder:<loan>:<kind>:<date>"``. The rows
  are inserted first (``ON CONFLICT DO NOTHING``; ``Notification.dedup_key`` is unique), then
  each unsent row is sent under its row lock (``SKIP LOCKED``: concurrent runs share the work)
  and marked sent in the same transaction. A rerun finds the rows sent and sends nothing. A
  failed send keeps ``last_error`` and leaves the row unsent for the next run. Email has no
  idempotency key, so a crash after the mail server accepted and before the commit can send
  one reminder twice; nothing can send it more often.
* **The message** quotes the loan reference (to use as the payment reference), the amounts owed
  as of the last accrual (principal + interest + penalty), the due date and the lender's
  repayment account (``lending.selectors.programs.repayment_account``, as the loan page and the
  bank's payment order quote it).
"""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Min, Q, QuerySet

from lending.models import OPEN, Loan, Program
from lending.selectors.programs import repayment_account
from scf import clock

from .models import Notification

OVERDUE_EVERY_DAYS = 7
ACCELERATED_WINDOW = dt.timedelta(days=7)
KEY_CHUNK = 1000


class ReminderKind(StrEnum):
    BEFORE_DUE = "before_due"
    DUE = "due"
    OVERDUE = "overdue"
    ACCELERATED = "accelerated"


@dataclass(frozen=True)
class Reminder:
    loan: Loan
    kind: ReminderKind
    today: dt.date

    @property
    def key_date(self) -> dt.date:
        return self.loan.due_date if self.kind == ReminderKind.ACCELERATED else self.today

    @property
    def dedup_key(self) -> str:
        return f"reminder:{self.loan.pk}:{self.kind}:{self.key_date.isoformat()}"


def days_before_due() -> int:
    return int(settings.REMINDER_DAYS_BEFORE_DUE)


def _owing(zone: str) -> QuerySet[Loan]:
    return Loan.objects.filter(status__in=OPEN, program__time_zone=zone).filter(
        Q(outstanding_principal__gt=0) | Q(accrued_interest__gt=0) | Q(accrued_penalty__gt=0)
    )


def _overdue_due_dates(today: dt.date, earliest: dt.date | None) -> list[dt.date]:
    """Due dates 1, 8, 15, ... days before ``today``, back to ``earliest``."""
    if earliest is None:
        return []
    dates, day = [], today - dt.timedelta(days=1)
    while day >= earliest:
        dates.append(day)
        day -= dt.timedelta(days=OVERDUE_EVERY_DAYS)
    return dates


def _classify(loan: Loan, today: dt.date, now: dt.datetime) -> Iterator[Reminder]:
    if loan.due_date == today + dt.timedelta(days=days_before_due()):
        yield Reminder(loan, ReminderKind.BEFORE_DUE, today)
    elif loan.due_date == today:
        yield Reminder(loan, ReminderKind.DUE, today)
    elif loan.due_date < today and (today - loan.due_date).days % OVERDUE_EVERY_DAYS == 1:
        yield Reminder(loan, ReminderKind.OVERDUE, today)
    if loan.accelerated_at is not None and loan.accelerated_at >= now - ACCELERATED_WINDOW:
        yield Reminder(loan, ReminderKind.ACCELERATED, today)


def _zone_reminders(zone: str, today: dt.date, now: dt.datetime) -> list[Reminder]:
    owing = _owing(zone)
    earliest = owing.filter(due_date__lt=today).aggregate(first=Min("due_date"))["first"]
    due_dates = [
        today + dt.timedelta(days=days_before_due()),
        today,
        *_overdue_due_dates(today, earliest),
    ]
    loans = (
        owing.filter(Q(due_date__in=due_dates) | Q(accelerated_at__gte=now - ACCELERATED_WINDOW))
        .select_related("agent", "order", "program__bank")
        .order_by("pk")
    )
    return [reminder for loan in loans for reminder in _classify(loan, today, now)]


def reminders_due(*, today: dt.date | None = None) -> list[Reminder]:
    """Every reminder due on ``today`` (default: each program zone's business date now)."""
    now = clock.now()
    zones = Program.objects.order_by("time_zone").values_list("time_zone", flat=True).distinct()
    reminders: list[Reminder] = []
    for zone in zones:
        reminders += _zone_reminders(zone, today or clock.business_date(zone, now), now)
    return reminders


def _headline(reminder: Reminder) -> tuple[str, str]:
    loan, today = reminder.loan, reminder.today
    due = loan.due_date.isoformat()
    if reminder.kind == ReminderKind.BEFORE_DUE:
        days = (loan.due_date - today).days
        return f"due in {days} days", f"Your loan {loan.reference} is due in {days} days, on {due}."
    if reminder.kind == ReminderKind.DUE:
        return "due today", f"Your loan {loan.reference} is due today, {due}."
    if reminder.kind == ReminderKind.OVERDUE:
        days = (today - loan.due_date).days
        return f"{days} days overdue", (
            f"Your loan {loan.reference} is {days} days past its due date of {due}. Penalty "
            f"interest accrues on overdue principal after {loan.grace_days} days of grace."
        )
    return "now due", (
        f"Order {loan.order.external_id} financed by loan {loan.reference} was cancelled, so the "
        f"loan is due at once: its due date is now {due}."
    )


def _message(reminder: Reminder) -> tuple[str, str]:
    """Subject and body of a reminder."""
    loan = reminder.loan
    bank = loan.program.bank
    total = loan.outstanding_principal + loan.accrued_interest + loan.accrued_penalty
    as_of = loan.accrued_through or loan.value_date or reminder.today
    status, headline = _headline(reminder)

    def row(label: str, amount: Decimal) -> str:
        return f"  {label:<10}{amount:>16,.2f} {loan.currency}"

    body = "\n".join(
        [
            f"Dear {loan.agent.name},",
            "",
            headline,
            "",
            f"Loan reference: {loan.reference} (quote it as the payment reference)",
            f"Order: {loan.order.external_id}",
            f"Due date: {loan.due_date.isoformat()}",
            f"Amount owed as of {as_of.isoformat()}:",
            row("principal", loan.outstanding_principal),
            row("interest", loan.accrued_interest),
            row("penalty", loan.accrued_penalty),
            row("total", total),
            "Interest accrues daily until the loan is repaid.",
            "",
            f"Pay to: {bank.name}, account {repayment_account(loan.program)}, "
            f"reference {loan.reference}.",
        ]
    )
    return f"Loan {loan.reference}: repayment {status}", body


def _notification(reminder: Reminder, now: dt.datetime) -> Notification:
    subject, body = _message(reminder)
    return Notification(
        dedup_key=reminder.dedup_key,
        kind=str(reminder.kind),
        agent=reminder.loan.agent,
        loan_id=reminder.loan.pk,
        channel="email",
        recipient=reminder.loan.agent.email,
        subject=subject[:200],
        body=body,
        created_at=now,
    )


@transaction.atomic
def notification_send(*, dedup_key: str) -> bool:
    """Send one recorded, unsent notification under its row lock; True if this call sent it."""
    notification = (
        Notification.objects.select_for_update(skip_locked=True)
        .filter(dedup_key=dedup_key, sent_at__isnull=True)
        .first()
    )
    if notification is None:
        return False
    if not notification.recipient:
        notification.last_error = "The agent has no email address."
        notification.save(update_fields=["last_error"])
        return False
    message = EmailMessage(notification.subject, notification.body, to=[notification.recipient])
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        notification.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        notification.save(update_fields=["last_error"])
        return False
    notification.sent_at, notification.last_error = clock.now(), ""
    notification.save(update_fields=["sent_at", "last_error"])
    return True


def _already_sent(keys: list[str]) -> set[str]:
    sent: set[str] = set()
    for start in range(0, len(keys), KEY_CHUNK):
        chunk = keys[start : start + KEY_CHUNK]
        sent.update(
            Notification.objects.filter(dedup_key__in=chunk, sent_at__isnull=False).values_list(
                "dedup_key", flat=True
            )
        )
    return sent


def notifications_send_due(*, today: dt.date | None = None) -> int:
    """Record and send every reminder due on ``today`` not sent before; how many were sent.

    Safe to rerun and to run concurrently (see the module docstring).
    """
    reminders = reminders_due(today=today)
    sent = _already_sent([r.dedup_key for r in reminders])
    todo = [r for r in reminders if r.dedup_key not in sent]
    now = clock.now()
    Notification.objects.bulk_create(
        [_notification(r, now) for r in todo], ignore_conflicts=True, batch_size=KEY_CHUNK
    )
    return sum(notification_send(dedup_key=r.dedup_key) for r in todo)
