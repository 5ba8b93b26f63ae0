"""Reads for the operations pages and APIs of the file rail: the unapplied-credit queue, the
latest reconciliation runs and their breaks, the recent bank files.

Each belongs to one bank (the bank whose file or account it came from), so every read a staff
user makes is narrowed to that user's bank with ``scope_for``: another bank's credit is missing
(a 404 on its actions), its runs and files are not listed."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from lending.models import AuditLog
from lending.selectors.audit import audit_scope, object_audit
from lending.selectors.scope import scope_for

from ...bank_models import (
    BankFile,
    ReconciliationRun,
    UnappliedCredit,
    UnappliedStatus,
)


def unapplied_credits(*, user: Any, status: str | None = None) -> QuerySet[UnappliedCredit]:
    """The queue of the user's bank, oldest first; ``status`` filters (open by default on the
    page)."""
    rows = scope_for(
        user,
        UnappliedCredit.objects.select_related("entry", "bank", "loan", "margin_account"),
        "bank",
    ).order_by("created_at", "id")
    if status in UnappliedStatus.values:
        rows = rows.filter(status=status)
    return rows


def unapplied_credit_get(*, user: Any, credit_id: int) -> UnappliedCredit | None:
    """The credit if the user's bank holds it; ``None`` for another bank's, as for a missing one."""
    return unapplied_credits(user=user).filter(pk=credit_id).first()


def unapplied_credit_audit(*, user: Any, credit_id: int) -> QuerySet[AuditLog] | None:
    """The audit trail of a credit of the user's bank, oldest first, with its actors;
    ``None`` for another bank's credit, as for a missing one."""
    credit = scope_for(user, UnappliedCredit.objects.all(), "bank").filter(pk=credit_id).first()
    if credit is None:
        return None
    return audit_scope(user, object_audit(obj=credit)).select_related("actor")


def latest_reconciliations(*, user: Any, limit: int = 30) -> list[ReconciliationRun]:
    """The latest run of each of the user's bank's accounts and days, newest day first, with
    their breaks."""
    latest = ReconciliationRun.objects.filter(
        bank=OuterRef("bank"),
        account=OuterRef("account"),
        statement_date=OuterRef("statement_date"),
    ).order_by("-id")
    rows = (
        scope_for(user, ReconciliationRun.objects.all(), "bank")
        .filter(pk=Subquery(latest.values("pk")[:1]))
        .select_related("bank")
        .prefetch_related("breaks")
        .order_by("-statement_date", "bank__code", "account")
    )
    return list(rows[:limit])


def latest_break_counts() -> list[tuple[str, str, int]]:
    """(bank code, account, breaks) of each account's latest run, for the metric."""
    latest = ReconciliationRun.objects.filter(
        bank=OuterRef("bank"), account=OuterRef("account")
    ).order_by("-statement_date", "-id")
    rows = ReconciliationRun.objects.filter(pk=Subquery(latest.values("pk")[:1])).values_list(
        "bank__code", "account", "breaks_count"
    )
    return list(rows)


def recent_bank_files(*, user: Any, limit: int = 20) -> list[BankFile]:
    rows = scope_for(user, BankFile.objects.select_related("bank"), "bank")
    return list(rows.order_by("-created_at", "-id")[:limit])
