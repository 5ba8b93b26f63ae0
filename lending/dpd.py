"""Days past due (DPD): when a loan counts as past due, and its bucket. The one definition.

A loan is past due when it is open (active or overdue) and either its status is ``overdue`` or its
days past due are above zero. Its bucket is ``1-30``, ``31-60``, ``61-90`` or ``90+`` by its days
past due; an overdue loan still at 0 DPD (its status changed before a close of business counted
a day) is in the first. The program dashboard, its chart and the loan API all bucket with this
module: ``dpd_bucket`` on a loan's figures, ``past_due_in_bucket`` in the database.
"""

from __future__ import annotations

from django.db.models import Q

from .models import OPEN, LoanStatus

# (label, lowest DPD, highest DPD or None), in order.
DPD_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("1-30", 1, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("90+", 91, None),
)
DPD_LABELS: tuple[str, ...] = tuple(label for label, _, _ in DPD_BUCKETS)
PAST_DUE = Q(status__in=OPEN) & (Q(status=LoanStatus.OVERDUE) | Q(days_past_due__gt=0))


def dpd_bucket(days_past_due: int, *, overdue: bool = False) -> str | None:
    """The bucket of ``days_past_due``; None when not past due.

    ``overdue`` (the loan's status says so) puts a loan still at 0 DPD in the first bucket.
    """
    days = max(days_past_due, 1) if overdue else days_past_due
    for label, low, high in DPD_BUCKETS:
        if days >= low and (high is None or days <= high):
            return label
    return None


def loan_dpd_bucket(*, status: str, days_past_due: int) -> str | None:
    """A loan's bucket from its status and DPD: None unless it is open and past due."""
    if status not in OPEN:
        return None
    return dpd_bucket(days_past_due, overdue=status == LoanStatus.OVERDUE)


def past_due_in_bucket(label: str) -> Q:
    """The loans ``loan_dpd_bucket`` puts in bucket ``label``, as a filter on ``Loan``."""
    for index, (name, low, high) in enumerate(DPD_BUCKETS):
        if name == label:
            condition = PAST_DUE & Q(days_past_due__gte=0 if index == 0 else low)
            return condition & Q(days_past_due__lte=high) if high is not None else condition
    raise ValueError(f"unknown DPD bucket {label!r}")
