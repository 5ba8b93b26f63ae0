"""Migration 0011_bank_staff_membership: on a platform with one bank its existing staff join it
(they saw every bank before, which was that one); with several banks nobody can tell whose staff
is whose, so they join none and see nothing until an administrator assigns them."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from lending.models import Bank, BankMembership
from tests.orders.factories import UserFactory

BEFORE = [("lending", "0010_money_checks_in_cents")]
AFTER = [("lending", "0011_bank_staff_membership")]


def migrate(targets: list[tuple[str, str]]) -> None:
    MigrationExecutor(connection).migrate(targets)


def migrate_to_latest() -> None:
    """Back to every app's latest migration (not just AFTER: other migrations may follow it, and
    the tests after this one need their tables)."""
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def _people() -> dict[str, Any]:
    return {
        role: UserFactory(role=role, bank=False)
        for role in ("risk_reviewer", "risk_approver", "ops_admin")
    }


@pytest.mark.django_db(transaction=True)
def test_with_one_bank_the_existing_staff_join_it(agent: Any) -> None:
    migrate(BEFORE)
    try:
        bank = Bank.objects.create(code="ONLY", name="The only bank")
        staff = _people()
        dealer = UserFactory(role="agent", agent=agent, bank=False)
        migrate(AFTER)
        members = dict(BankMembership.objects.values_list("user_id", "bank_id"))
        assert members == {user.pk: bank.pk for user in staff.values()}
        assert dealer.pk not in members
    finally:
        migrate_to_latest()


@pytest.mark.django_db(transaction=True)
def test_with_several_banks_nobody_is_assigned() -> None:
    migrate(BEFORE)
    try:
        Bank.objects.create(code="ONE", name="One")
        Bank.objects.create(code="TWO", name="Two")
        _people()
        migrate(AFTER)
        assert not BankMembership.objects.exists()
    finally:
        migrate_to_latest()
