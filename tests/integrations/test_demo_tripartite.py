"""The demo's tripartite program: a newcomer signing in as one of its agents sees live loans with
goods held, a release, a breach and a claim; the book still agrees with the ledger."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from integrations.demo.contents import demo_contents
from lending.models import (
    Agreement,
    AgreementStatus,
    BreachStatus,
    ClaimStatus,
    GoodsHold,
    GuaranteeClaim,
    Loan,
    LoanStatus,
    MarginAccount,
    Release,
    ReleaseBreach,
    ReleaseStatus,
    TripartiteTerms,
)
from orders.models import Role
from scf import clock

pytestmark = pytest.mark.django_db

LIVE = (LoanStatus.ACTIVE, LoanStatus.OVERDUE)


@pytest.fixture
def demo(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "demo.json"
    # The default demo (as `make demo` seeds it), today as the clock has it, so the agents' first clicks finance their recent orders.
    today = clock.business_date("Asia/Shanghai")
    call_command(
        "seed_demo",
        "--out",
        str(path),
        "--today",
        today.isoformat(),
        "--no-credit-history",
        stdout=StringIO(),
    )
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_demo_has_a_tripartite_program_with_the_whole_flow(demo):
    terms = TripartiteTerms.objects.select_related("program").get()
    program = terms.program
    assert terms.enabled and terms.margin_ratio > 0
    agents_with_loans = set(
        Loan.objects.filter(program=program, status__in=LIVE, goods_hold__isnull=False)
        .values_list("agent__code", flat=True)
        .distinct()
    )
    logins = {u["agent_code"]: u for u in demo["users"] if u["role"] == Role.AGENT}
    signed = set(
        Agreement.objects.filter(program=program, status=AgreementStatus.ACTIVE).values_list(
            "agent__code", flat=True
        )
    )
    under = agents_with_loans & set(logins) & signed
    assert len(under) >= 2, (agents_with_loans, signed)
    assert MarginAccount.objects.filter(program=program, agent__code__in=under).count() == len(
        under
    )
    assert Release.objects.filter(
        hold__loan__program=program, status=ReleaseStatus.AUTHORISED
    ).exists()
    assert ReleaseBreach.objects.filter(loan__program=program, status=BreachStatus.OPEN).exists()
    claim = GuaranteeClaim.objects.select_related("loan").get(loan__program=program)
    assert claim.status == ClaimStatus.RAISED and claim.amount > 0
    assert claim.loan.agent.code in signed
    counts = demo_contents()
    assert (counts["agreements"], counts["breaches"], counts["claims"]) == (len(signed), 1, 1)
    assert counts["releases"] >= 1

    # What the agent sees in the portal's API: its loans and the goods they hold.
    code = sorted(under)[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {logins[code]['token']}")
    body = client.get("/api/v1/loans/", {"page_size": 100}).json()
    mine = {row["reference"] for row in body["results"]}
    held = GoodsHold.objects.filter(loan__agent__code=code, loan__status__in=LIVE)
    assert set(held.values_list("loan__reference", flat=True)) <= mine

    out = StringIO()
    call_command("ledger_check", stdout=out)
    assert "The book agrees with the ledger." in out.getvalue()
