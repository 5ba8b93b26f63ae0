"""Two workers importing the same bytes at the same moment, on PostgreSQL with real threads:
the digest's unique index makes one of them wait and then find the file already imported."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from integrations.bank.files.inbound import bank_file_import
from integrations.bank.files.matched import matched_credits_apply
from integrations.bank_models import BankFile, StatementEntry
from lending.models import Bank, Repayment
from lending.selectors.repayment_refs import repayment_reference_for
from tests.lending.active_loans import active_loan

from .rail import BANK_CODE, Rail

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_workers_importing_one_file_at_once_apply_it_once(line: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks and unique-index waits are PostgreSQL's")
    rail = Rail()
    loan = active_loan(line, principal="5000.00", value_date=rail.today)
    [path] = rail.pay_in("1200.00", creditor_reference=repayment_reference_for(line.pk))
    twin = path.with_name("twin-" + path.name)
    twin.write_bytes(path.read_bytes())  # the same notification delivered under two names
    bank = Bank.objects.get(code=BANK_CODE)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def worker(target: Any) -> None:
        try:
            barrier.wait()
            outcomes.append(bank_file_import(bank=bank, path=target))
            matched_credits_apply(bank=bank)  # both then record the matched repayments
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(p,)) for p in (path, twin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(outcomes) == ["duplicate", "imported"]
    assert Repayment.objects.filter(loan=loan).count() == 1
    assert Repayment.objects.get(loan=loan).amount == Decimal("1200.00")
    assert StatementEntry.objects.count() == 1 and BankFile.objects.count() == 1
    assert not path.exists() and not twin.exists()  # both moved out of the inbound directory
