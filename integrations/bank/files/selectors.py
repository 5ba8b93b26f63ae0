"""Reads for the operations pages and APIs of the file rail: the unapplied-credit queue, the
latest reconciliation runs and their breaks, the recent bank files."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from ...bank_models import (
    BankFile,
    ReconciliationRun,
    UnappliedCredit,
    UnappliedStatus,
)


def unapplied_credits(*, status: str | None = None) -> QuerySet[UnappliedCredit]:
    """The queue, oldest first; ``status`` filters (open by default on the page)."""
    rows = UnappliedCredit.objects.select_related("entry", "bank", "loan").order_by(
        "created_at", "id"
    )
    if status in UnappliedStatus.values:
        rows = rows.filter(status=status)
    return rows


def unapplied_credit_get(credit_id: int) -> UnappliedCredit | None:
    return unapplied_credits().filter(pk=credit_id).first()


def latest_reconciliations(limit: int = 30) -> list[ReconciliationRun]:
    """The latest run of each account and day, newest day first, with their breaks."""
    latest = ReconciliationRun.objects.filter(
        bank=OuterRef("bank"),
        account=OuterRef("account"),
        statement_date=OuterRef("statement_date"),
    ).order_by("-id")
    rows = (
        ReconciliationRun.objects.filter(pk=Subquery(latest.values("pk")[:1]))
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


def recent_bank_files(limit: int = 20) -> list[BankFile]:
    return list(BankFile.objects.select_related("bank").order_by("-created_at", "-id")[:limit])
