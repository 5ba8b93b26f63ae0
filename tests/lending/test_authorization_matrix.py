"""Authorization matrix: every lending endpoint x every role x own / other party's object.

Another party's object is always a 404 (never a 403 that would confirm it exists); a role that
may not use an endpoint at all gets 403; anonymous callers get 401. The bank dimension: side A's
program is with bank A and side B's with bank B; the risk reviewer, risk approver and operations
admin of bank A see side A's objects, those of bank B get a 404 on every one of them (403 where
their role may not use the endpoint at all, as for bank A's). The audit trail of an unapplied
credit (of the file rail) is read by the bank staff of the credit's bank. Recording a repayment is for
operations admins only (201 on side A's active loan); listing a loan's repayments is for anyone
who may see the loan.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from rest_framework.test import APIClient

from integrations.bank_models import BankFile, StatementEntry, UnappliedCredit
from lending.services.audit import audit_record
from lending.services.finance import loan_finance
from tests.conftest import client_for
from tests.lending.factories import BankFactory, CreditLineFactory, ProgramFactory
from tests.lending.loan_makers import disbursed_loan
from tests.orders.factories import AgentFactory, EnterpriseFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def _unapplied_credit(bank: Any) -> UnappliedCredit:
    """An unapplied credit at ``bank`` (what an imported camt.054 leaves), with an audit row."""
    now = dt.datetime.now(dt.UTC)
    bank_file = BankFile.objects.create(
        direction="inbound",
        kind="camt.054",
        bank=bank,
        sha256=f"{bank.pk:064d}",
        path=f"/inbound/{bank.code}.xml",
        status="imported",
        created_at=now,
    )
    entry = StatementEntry.objects.create(
        bank=bank,
        bank_file=bank_file,
        account=f"ACC-{bank.code}",
        amount="250.00",
        currency="CNY",
        credit=True,
        entry_reference=f"REF-{bank.code}",
        status="unapplied",
    )
    credit = UnappliedCredit.objects.create(
        entry=entry, bank=bank, amount="250.00", currency="CNY", reason="matrix", created_at=now
    )
    audit_record(actor=None, action="unapplied_credit.refund_requested", obj=credit)
    return credit


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    """Two enterprises, each with a program, an agent with a line, orders and a referred loan."""
    data: dict[str, Any] = {}
    banks = {"a": BankFactory(), "b": BankFactory(code="BANK-B", name="Second Bank")}
    for side in ("a", "b"):
        enterprise = EnterpriseFactory()
        program = ProgramFactory(
            enterprise=enterprise, bank=banks[side], auto_approve_limit="1000.00"
        )
        agent = AgentFactory(enterprises=[enterprise])
        line = CreditLineFactory(agent=agent, program=program)
        user = UserFactory(role="agent", agent=agent)
        order = OrderFactory(agent=agent, enterprise=enterprise)
        spare = OrderFactory(agent=agent, enterprise=enterprise)
        loan = loan_finance(user=user, order_id=order.pk)  # referred: above auto-approve
        today = dt.date.today()
        active = disbursed_loan(
            line, value_date=today - dt.timedelta(days=10), due_date=today + dt.timedelta(days=80)
        )
        data[side] = {
            "enterprise": enterprise,
            "program": program,
            "agent": agent,
            "user": user,
            "order": order,
            "spare": spare,
            "loan": loan,
            "active": active,
            "review": loan.reviews.get(),
            "admin": UserFactory(role="enterprise_admin", enterprise=enterprise),
            "credit": _unapplied_credit(banks[side]),
        }
    for suffix, bank in (("", banks["a"]), ("_b", banks["b"])):
        data[f"reviewer{suffix}"] = UserFactory(role="risk_reviewer", bank=bank)
        data[f"approver{suffix}"] = UserFactory(role="risk_approver", bank=bank)
        data[f"ops{suffix}"] = UserFactory(role="ops_admin", bank=bank)
    return data


# (method, path template, body) -- {x} placeholders are filled from side "a" (the object owner).
ENDPOINTS = {
    "order_detail": ("get", "/api/v1/orders/{order}/", None),
    "quote": ("post", "/api/v1/orders/{spare}/quote/", None),
    "finance": ("post", "/api/v1/orders/{spare}/finance/", {}),
    "loan_detail": ("get", "/api/v1/loans/{loan}/", None),
    "loan_ledger": ("get", "/api/v1/loans/{loan}/ledger/", None),
    "review_detail": ("get", "/api/v1/reviews/{review}/", None),
    "review_claim": ("post", "/api/v1/reviews/{review}/claim/", {}),
    "program_detail": ("get", "/api/v1/programs/{program}/", None),
    "dashboard": ("get", "/api/v1/programs/{program}/dashboard/", None),
    "credit_line": ("get", "/api/v1/agents/{agent}/credit-line/", None),
    "freeze": ("post", "/api/v1/agents/{agent}/credit-line/freeze/", {"reason": "matrix test"}),
    "repayments_list": ("get", "/api/v1/loans/{active}/repayments/", None),
    "unapplied_audit": ("get", "/api/v1/unapplied-credits/{credit}/audit/", None),
    "repayment_record": (
        "post",
        "/api/v1/loans/{active}/repayments/",
        {"amount": "100.00", "value_date": dt.date.today().isoformat(), "reference": "MATRIX-1"},
    ),
}

# Expected status per caller for each endpoint on side A's objects.
# Callers: agent_a (owner), agent_b, admin_a (owner's enterprise), admin_b, reviewer, approver, ops.
EXPECTED = {
    "order_detail": dict(
        agent_a=200, agent_b=404, admin_a=200, admin_b=404, reviewer=200, approver=200, ops=200
    ),
    "quote": dict(
        agent_a=200, agent_b=404, admin_a=403, admin_b=403, reviewer=403, approver=403, ops=403
    ),
    "finance": dict(
        agent_a=201, agent_b=404, admin_a=403, admin_b=403, reviewer=403, approver=403, ops=403
    ),
    "loan_detail": dict(
        agent_a=200, agent_b=404, admin_a=200, admin_b=404, reviewer=200, approver=200, ops=200
    ),
    "loan_ledger": dict(
        agent_a=200, agent_b=404, admin_a=200, admin_b=404, reviewer=200, approver=200, ops=200
    ),
    "review_detail": dict(
        agent_a=403, agent_b=403, admin_a=403, admin_b=403, reviewer=200, approver=200, ops=200
    ),
    "review_claim": dict(
        agent_a=403, agent_b=403, admin_a=403, admin_b=403, reviewer=200, approver=200, ops=403
    ),
    "program_detail": dict(
        agent_a=200, agent_b=404, admin_a=200, admin_b=404, reviewer=200, approver=200, ops=200
    ),
    "dashboard": dict(
        agent_a=404, agent_b=404, admin_a=200, admin_b=404, reviewer=200, approver=200, ops=200
    ),
    "credit_line": dict(
        agent_a=200, agent_b=404, admin_a=200, admin_b=404, reviewer=200, approver=200, ops=200
    ),
    "freeze": dict(
        agent_a=403, agent_b=403, admin_a=403, admin_b=403, reviewer=200, approver=200, ops=200
    ),
    "repayments_list": dict(
        agent_a=200, agent_b=404, admin_a=200, admin_b=404, reviewer=200, approver=200, ops=200
    ),
    "unapplied_audit": dict(
        agent_a=403, agent_b=403, admin_a=403, admin_b=403, reviewer=200, approver=200, ops=200
    ),
    # Only operations record repayments; for everyone else 403 whatever the loan.
    "repayment_record": dict(
        agent_a=403, agent_b=403, admin_a=403, admin_b=403, reviewer=403, approver=403, ops=201
    ),
}


# Bank B's staff on bank A's objects: 404 wherever bank A's staff may act, 403 where the role
# may not use the endpoint at all.
for _expected in EXPECTED.values():
    for _staff in ("reviewer", "approver", "ops"):
        _expected[f"{_staff}_b"] = 403 if _expected[_staff] == 403 else 404

STAFF_B = ["reviewer_b", "approver_b", "ops_b"]


def _caller(world: dict[str, Any], name: str) -> Any:
    if name.startswith(("agent_", "admin_")):
        kind, side = name.split("_")
        return world[side]["user" if kind == "agent" else "admin"]
    return world[name]


def _call(client: APIClient, world: dict[str, Any], endpoint: str) -> Any:
    method, template, body = ENDPOINTS[endpoint]
    a = world["a"]
    path = template.format(**{k: getattr(v, "pk", v) for k, v in a.items()})
    kwargs: dict[str, Any] = {"format": "json"}
    if endpoint == "finance":
        kwargs["HTTP_IDEMPOTENCY_KEY"] = "matrix"
    return (
        getattr(client, method)(path, body, **kwargs)
        if body is not None
        else getattr(client, method)(path, **kwargs)
    )


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize(
    "caller",
    ["agent_a", "agent_b", "admin_a", "admin_b", "reviewer", "approver", "ops", *STAFF_B],
)
def test_matrix(world, endpoint, caller):
    response = _call(client_for(_caller(world, caller)), world, endpoint)
    assert response.status_code == EXPECTED[endpoint][caller], response.content[:300]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_anonymous_is_401(world, endpoint):
    assert _call(APIClient(), world, endpoint).status_code == 401


@pytest.mark.parametrize(
    ("caller", "path", "own_key"),
    [
        ("agent_b", "/api/v1/orders/", "order"),
        ("agent_b", "/api/v1/loans/", "loan"),
        ("admin_b", "/api/v1/orders/", "order"),
        ("admin_b", "/api/v1/loans/", "loan"),
        ("admin_b", "/api/v1/programs/", "program"),
        ("agent_b", "/api/v1/programs/", "program"),
        *(
            (staff, path, key)
            for staff in STAFF_B
            for path, key in (
                ("/api/v1/orders/", "order"),
                ("/api/v1/loans/", "loan"),
                ("/api/v1/programs/", "program"),
                ("/api/v1/reviews/", "review"),
            )
        ),
    ],
)
def test_lists_never_include_the_other_sides_rows(world, caller, path, own_key):
    ids = {row["id"] for row in client_for(_caller(world, caller)).get(path).json()["results"]}
    assert world["a"][own_key].pk not in ids
    assert world["b"][own_key].pk in ids
