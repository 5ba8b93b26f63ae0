"""Credit reservation on a line and its program, in the database, never in Python memory.

Locks are always taken in one order: sales order -> credit line -> program. A line is locked with
``SELECT ... FOR UPDATE`` by the finance service (so the decision sees exact line figures); the
program, shared by every agent, is only touched by a conditional UPDATE as late as possible, so
its row lock is held for the shortest time. The CHECK constraints on both tables are the last line
of defence: no code path can leave ``outstanding + reserved > limit`` or a negative balance.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Round

from scf.errors import Conflict

from ..models import CreditLine, Program


def _cents(expression: CombinedExpression) -> Round:
    """Round column arithmetic to the cent: SQLite evaluates NUMERIC in binary floating point,
    where 13000.80 - 8000.00 - 5000.80 is not zero. On PostgreSQL it changes nothing."""
    return Round(expression, 2)


class ProgramExhausted(Conflict):
    code = "insufficient_program_limit"


def program_reserve(*, program_id: int, amount: Decimal) -> None:
    """Reserve ``amount`` in the program if it fits, else ``ProgramExhausted``. Atomic on its own."""
    updated = Program.objects.filter(
        pk=program_id, limit__gte=_cents(F("outstanding_principal") + F("reserved") + amount)
    ).update(reserved=_cents(F("reserved") + amount))
    if not updated:
        raise ProgramExhausted("Not enough room left in the program.")


def line_reserve(*, line_id: int, amount: Decimal) -> None:
    """Reserve on a line the caller has locked (and checked)."""
    updated = CreditLine.objects.filter(
        pk=line_id, limit__gte=_cents(F("outstanding_principal") + F("reserved") + amount)
    ).update(reserved=_cents(F("reserved") + amount))
    if not updated:
        raise Conflict("Not enough credit left on the line.", code="insufficient_credit_line")


def credit_release(*, line_id: int, program_id: int, amount: Decimal) -> None:
    """Give back a reservation (decline, expiry, failed disbursement). Line first, then program."""
    if amount <= 0:
        return
    CreditLine.objects.filter(pk=line_id).update(reserved=_cents(F("reserved") - amount))
    Program.objects.filter(pk=program_id).update(reserved=_cents(F("reserved") - amount))


def credit_consume(*, line_id: int, program_id: int, reserved: Decimal, principal: Decimal) -> None:
    """A disbursement settled: the reservation becomes outstanding principal."""
    CreditLine.objects.filter(pk=line_id).update(
        reserved=_cents(F("reserved") - reserved),
        outstanding_principal=_cents(F("outstanding_principal") + principal),
    )
    Program.objects.filter(pk=program_id).update(
        reserved=_cents(F("reserved") - reserved),
        outstanding_principal=_cents(F("outstanding_principal") + principal),
    )


def credit_repaid(*, line_id: int, program_id: int, principal: Decimal) -> None:
    """Principal repaid: the line and program get that headroom back."""
    if principal <= 0:
        return
    CreditLine.objects.filter(pk=line_id).update(
        outstanding_principal=_cents(F("outstanding_principal") - principal)
    )
    Program.objects.filter(pk=program_id).update(
        outstanding_principal=_cents(F("outstanding_principal") - principal)
    )
