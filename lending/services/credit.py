"""Credit reservation on a line and its program, in the database, never in Python memory.

Locks follow ``lending.locks``: sales order -> credit line -> program. A line is locked by the
finance service before it decides (so the decision sees exact line figures); the program, shared
by every agent, is only touched by a conditional UPDATE as late as possible, so its row lock is
held for the shortest time. The CHECK constraints on both tables are the last line of defence:
no code path can leave ``outstanding + reserved > limit`` or a negative balance.

The reservation rule (it fits when ``limit >= outstanding + reserved + amount``, all in cents) is
written once, as the SQL of ``reservation_sql``: the ORM path here filters and updates with it,
and the finance click's single statement (``lending.services.finance_hotpath``) embeds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal

from django.db import connection
from django.db.models import BooleanField, DecimalField, F, Model
from django.db.models.expressions import CombinedExpression, RawSQL
from django.db.models.functions import Round

from scf.errors import Conflict

from ..models import CreditLine, Program


def _cents(expression: CombinedExpression) -> Round:
    """Round column arithmetic to the cent: SQLite evaluates NUMERIC in binary floating point,
    where 13000.80 - 8000.00 - 5000.80 is not zero. On PostgreSQL it changes nothing."""
    return Round(expression, 2)


class ProgramExhausted(Conflict):
    code = "insufficient_program_limit"


def reservation_sql() -> tuple[str, str]:
    """The reservation rule as SQL on a line's or a program's row, each with one ``%s`` for the
    amount: the condition that it fits, and the new ``reserved`` (both rounded to the cent, as
    ``_cents`` rounds)."""
    qn = connection.ops.quote_name
    fits = f"{qn('limit')} >= ROUND({qn('outstanding_principal')} + {qn('reserved')} + %s, 2)"
    return fits, f"ROUND({qn('reserved')} + %s, 2)"


def _reserve(model: type[Model], pk: int, amount: Decimal) -> bool:
    """Apply ``reservation_sql`` to one row through the ORM; False when it does not fit."""
    fits, reserved = reservation_sql()
    money: DecimalField[Decimal, Decimal] = DecimalField(max_digits=18, decimal_places=2)
    return bool(
        model._default_manager.filter(pk=pk)
        .filter(RawSQL(fits, (amount,), output_field=BooleanField()))  # noqa: S611 - SQL from code
        .update(reserved=RawSQL(reserved, (amount,), output_field=money))  # noqa: S611
    )


def program_reserve(*, program_id: int, amount: Decimal) -> None:
    """Reserve ``amount`` in the program if it fits, else ``ProgramExhausted``. Atomic on its own."""
    if not _reserve(Program, program_id, amount):
        raise ProgramExhausted("Not enough room left in the program.")


def line_reserve(*, line_id: int, amount: Decimal) -> None:
    """Reserve on a line the caller has locked (and checked)."""
    if not _reserve(CreditLine, line_id, amount):
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


def credits_repaid(*, principal: Mapping[tuple[int, int], Decimal]) -> None:
    """``credit_repaid`` for many (line id, program id) pairs at once (a bank file's
    repayments): every line in one statement, then each program once, in id order."""
    by_program: dict[int, Decimal] = defaultdict(Decimal)
    lines = sorted((line, amount) for (line, _), amount in principal.items() if amount > 0)
    for (_, program_id), amount in principal.items():
        if amount > 0:
            by_program[program_id] += amount
    if connection.vendor == "postgresql" and lines:
        values = ", ".join(["(%s::bigint, %s::numeric)"] * len(lines))
        qn = connection.ops.quote_name
        column = qn("outstanding_principal")
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {CreditLine._meta.db_table} AS l "  # noqa: S608 - names from code
                f"SET {column} = ROUND(l.{column} - v.amount, 2) "
                f"FROM (VALUES {values}) AS v (id, amount) WHERE l.id = v.id",
                [value for pair in lines for value in pair],
            )
    else:
        for line_id, amount in lines:
            CreditLine.objects.filter(pk=line_id).update(
                outstanding_principal=_cents(F("outstanding_principal") - amount)
            )
    for program_id, amount in sorted(by_program.items()):
        Program.objects.filter(pk=program_id).update(
            outstanding_principal=_cents(F("outstanding_principal") - amount)
        )
