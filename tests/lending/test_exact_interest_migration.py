"""Migration 0008_exact_interest: the exact numerators are recomputed from the accrual rows,
reversed rows included, and the migration reverses to the 12-place sums the old code wrote."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from lending.models import Accrual, Loan
from lending.services.cob import cob_run
from lending.services.repayments import repayment_record
from tests.lending.active_loans import active_loan, money_line

D = Decimal
V = dt.date(2025, 1, 6)
BEFORE = [("lending", "0007_hot_path_indexes")]
AFTER = [("lending", "0008_exact_interest")]


def day(n: int) -> dt.date:
    return V + dt.timedelta(days=n)


def migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


def old_columns() -> tuple[dict[int, Decimal], dict[int, tuple[Decimal, Decimal]]]:
    def value(column: Any) -> Decimal:  # SQLite hands NUMERIC back as a float
        return D(str(column)).quantize(D("1E-12"))

    with connection.cursor() as cursor:
        cursor.execute("SELECT id, raw_cumulative FROM lending_accrual")
        rows = {pk: value(raw) for pk, raw in cursor.fetchall()}
        cursor.execute(
            "SELECT id, interest_raw_cumulative, penalty_raw_cumulative FROM lending_loan"
        )
        loans = {pk: (value(i), value(p)) for pk, i, p in cursor.fetchall()}
    return rows, loans


@pytest.mark.django_db(transaction=True)
def test_numerators_are_recomputed_from_the_rows_and_the_migration_reverses(
    agent: Any, enterprise: Any
) -> None:
    line = money_line(agent, enterprise)
    # 10,000.00 at 4.35% ACT/360 (435 a night), 12 nights, then 5,000.00 value-dated day 9:
    # nights 10-12 are reversed and replayed on 5,010.88.
    loan = active_loan(
        line, principal="10000.00", value_date=V, due_date=day(60), annual_rate=D("0.0435")
    )
    # 36,500.00 at 7.3% / penalty 10.95% ACT/365F, due day 3, no grace: penalty from night 5.
    late = active_loan(
        line,
        principal="36500.00",
        value_date=V,
        due_date=day(3),
        grace_days=0,
        annual_rate=D("0.073"),
        penalty_rate=D("0.1095"),
        day_count="ACT/365F",
    )
    for n in range(12):
        cob_run(program_id=line.program_id, business_date=day(n), today=day(12))
    repayment_record(
        loan=loan,
        amount=D("5000.00"),
        value_date=day(9),
        reference="BACK-1",
        source="api",
        actor=None,
        today=day(12),
    )
    numerators = dict(Accrual.objects.values_list("pk", "numerator"))
    loans = {x.pk: (x.interest_numerator, x.penalty_numerator) for x in Loan.objects.all()}
    reversed_last = Accrual.objects.get(loan=loan, business_date=day(11), reversed_at__isnull=False)
    active_last = Accrual.objects.get(loan=loan, business_date=day(11), reversed_at__isnull=True)
    assert numerators[reversed_last.pk] == D("5220")  # 12 x 435
    # 9 x 435 + 3 x 5,010.88 x 4.35% = 3,915 + 653.91984
    assert numerators[active_last.pk] == D("4568.91984") == loans[loan.pk][0]

    try:
        migrate(BEFORE)
        raw_rows, raw_loans = old_columns()
        # The old rule: each night half-even at 12 places, the nights summed.
        # 435 / 360 = 1.208333333333; 217.97328 / 360 = 0.605481333333
        assert raw_rows[reversed_last.pk] == 12 * D("1.208333333333")
        expected = 9 * D("1.208333333333") + 3 * D("0.605481333333")
        assert raw_rows[active_last.pk] == expected == raw_loans[loan.pk][0]
        # 36,500 x 10.95% / 365 = 10.95 a night of penalty, nights 5-12 (day 4 .. day 11)
        assert raw_loans[late.pk] == (12 * D("7.30"), 8 * D("10.95"))

        migrate(AFTER)
        assert dict(Accrual.objects.values_list("pk", "numerator")) == numerators
        assert {
            x.pk: (x.interest_numerator, x.penalty_numerator) for x in Loan.objects.all()
        } == loans
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
