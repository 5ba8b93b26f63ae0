"""Credit reservation is one rule (``lending.services.credit.reservation_sql``), applied by the
ORM path (``program_reserve``, ``line_reserve``) and by the finance click's single statement
(``finance_hotpath.reserve_members``): on the same figures both reserve, or refuse, alike."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction

from lending.models import CreditLine, Program
from lending.services.credit import ProgramExhausted, line_reserve, program_reserve
from lending.services.finance_hotpath import reserve_members
from scf.errors import Conflict
from scf.hotpath import with_statement
from tests.lending.factories import CreditLineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

D = Decimal
CASES = [
    # limit, outstanding, reserved, amount
    (D("1000.00"), D("400.00"), D("100.00"), D("500.00")),  # fits to the cent
    (D("1000.00"), D("400.00"), D("100.00"), D("500.01")),  # one cent over
    (D("13000.80"), D("8000.00"), D("0.00"), D("5000.80")),  # not exact in binary floating point
    (D("13000.80"), D("8000.00"), D("0.00"), D("5000.81")),
    (D("500.00"), D("0.00"), D("0.00"), D("0.01")),
    (D("99999999.99"), D("99999999.98"), D("0.00"), D("0.01")),
    (D("99999999.99"), D("99999999.98"), D("0.01"), D("0.01")),
]


def _line(limit: Decimal, outstanding: Decimal, reserved: Decimal) -> CreditLine:
    line = CreditLineFactory()
    for model, pk in ((Program, line.program_id), (CreditLine, line.pk)):
        model.objects.filter(pk=pk).update(
            limit=limit, outstanding_principal=outstanding, reserved=reserved
        )
    return line


def _figures(line: CreditLine) -> tuple[Decimal, Decimal]:
    return (
        Program.objects.values_list("reserved", flat=True).get(pk=line.program_id),
        CreditLine.objects.values_list("reserved", flat=True).get(pk=line.pk),
    )


def _orm(line: CreditLine, amount: Decimal) -> tuple[bool, tuple[Decimal, Decimal]]:
    try:
        with transaction.atomic():
            program_reserve(program_id=line.program_id, amount=amount)
            line_reserve(line_id=line.pk, amount=amount)
    except (ProgramExhausted, Conflict):
        return False, _figures(line)
    return True, _figures(line)


def _single_statement(line: CreditLine, amount: Decimal) -> tuple[bool, tuple[Decimal, Decimal]]:
    members = reserve_members(program_id=line.program_id, line_id=line.pk, amount=amount)
    sql, params = with_statement(
        members, "SELECT (SELECT count(*) FROM prog), (SELECT count(*) FROM line)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        program_moved, line_moved = cursor.fetchone()
    assert program_moved == line_moved  # the line moves only behind the program
    return bool(program_moved), _figures(line)


@pytest.mark.parametrize(("limit", "outstanding", "reserved", "amount"), CASES)
def test_the_orm_and_the_single_statement_reserve_alike(
    limit: Decimal, outstanding: Decimal, reserved: Decimal, amount: Decimal
) -> None:
    by_orm = _orm(_line(limit, outstanding, reserved), amount)
    by_statement = _single_statement(_line(limit, outstanding, reserved), amount)
    assert by_orm == by_statement
    fits = outstanding + reserved + amount <= limit
    expected = (reserved + amount, reserved + amount) if fits else (reserved, reserved)
    assert by_orm == (fits, expected)
