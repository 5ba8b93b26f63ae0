"""Days past due: the dashboard API, the page's chart, the loans CSV and the loan API bucket alike.

``lending.dpd`` is the one definition; each reader below is asked on its own, and they must give
the same buckets for the same book (and the hand-computed figures).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from lending.apis.repayments import RepaymentLoanOutput
from lending.dpd import DPD_LABELS, dpd_bucket, loan_dpd_bucket
from tests.conftest import client_for
from tests.web.conftest import World, login, make_loan

pytestmark = pytest.mark.django_db

# (status, principal = outstanding, DPD). Edges 30/31, 60/61, 90/91; an overdue loan still at 0
# DPD; an active loan with DPD (COB counted it before the status caught up); closed loans whose
# stored DPD must not count.
BOOK = [
    ("overdue", "1000.00", 0),
    ("active", "2000.00", 5),
    ("overdue", "3000.00", 30),
    ("overdue", "4000.00", 31),
    ("overdue", "5000.00", 60),
    ("overdue", "6000.00", 61),
    ("overdue", "7000.00", 90),
    ("overdue", "8000.00", 91),
    ("active", "9000.00", 0),
    ("written_off", "10000.00", 200),
    ("repaid", "11000.00", 12),
]
EXPECTED = {
    "1-30": (3, "6000.00"),
    "31-60": (2, "9000.00"),
    "61-90": (2, "13000.00"),
    "90+": (1, "8000.00"),
}


def _chart(body: str) -> dict[str, Any]:
    marker = '<script id="chart-data" type="application/json">'
    start = body.index(marker) + len(marker)
    return json.loads(body[start : body.index("</script>", start)])


def _csv_rows(response: Any) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def test_the_first_bucket_takes_an_overdue_loan_at_zero_days() -> None:
    assert dpd_bucket(0) is None
    assert dpd_bucket(0, overdue=True) == "1-30"
    assert loan_dpd_bucket(status="overdue", days_past_due=0) == "1-30"
    assert loan_dpd_bucket(status="active", days_past_due=0) is None
    assert loan_dpd_bucket(status="written_off", days_past_due=200) is None
    assert loan_dpd_bucket(status="active", days_past_due=61) == "61-90"


def test_dashboard_chart_export_and_loan_api_bucket_alike(world: World) -> None:
    loans = [
        make_loan(world.other_line, status, amount, outstanding=amount, dpd=dpd)
        for status, amount, dpd in BOOK
    ]
    expected = [
        {"bucket": label, "count": count, "outstanding": amount}
        for label, (count, amount) in EXPECTED.items()
    ]

    api = client_for(world.enterprise_admin).get(f"/api/v1/programs/{world.program.pk}/dashboard/")
    assert api.status_code == 200, api.content
    assert api.json()["overdue"] == expected

    page = login(world.enterprise_admin).get(f"/dashboard/{world.program.pk}/")
    chart = _chart(page.content.decode())["overdue"]
    assert chart["labels"] == list(DPD_LABELS)
    assert chart["counts"] == [count for count, _ in EXPECTED.values()]
    assert chart["outstanding"] == [amount for _, amount in EXPECTED.values()]

    export = login(world.enterprise_admin).get(f"/dashboard/{world.program.pk}/loans.csv")
    per_bucket: dict[str, list[Decimal]] = defaultdict(list)
    for row in _csv_rows(export):
        bucket = loan_dpd_bucket(status=row["Status"], days_past_due=int(row["Days past due"]))
        if bucket is not None:
            per_bucket[bucket].append(Decimal(row["Outstanding principal"]))
    assert {
        label: (len(amounts), f"{sum(amounts):.2f}") for label, amounts in per_bucket.items()
    } == EXPECTED

    by_api = defaultdict(int)
    for loan in loans:
        bucket = RepaymentLoanOutput(loan).data["dpd_bucket"]
        if bucket is not None:
            by_api[bucket] += 1
    assert dict(by_api) == {label: count for label, (count, _) in EXPECTED.items()}
