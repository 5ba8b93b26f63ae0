"""The finance decision's rows: one ``WITH`` statement on PostgreSQL, the ORM one row at a time
elsewhere (``lending.services.finance_record``). Both must write exactly the same thing.

Each test decides the same kind of order twice, once per path, and compares every row written:
loan, decision, review, disbursement, audit rows, and what moved on the line and the program.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from lending.models import (
    AuditLog,
    CreditLine,
    Decision,
    Disbursement,
    IdempotencyRecord,
    Loan,
    Program,
    Review,
)
from lending.services import finance, finance_hotpath
from lending.services.book_check import book_check
from lending.services.idempotency import IdempotencyKeyReused
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

VOLATILE = {
    "id",
    "order",
    "reference",
    "requested_at",
    "decided_at",
    "approved_at",
    "created_at",
    "expires_at",
}


def _fields(obj: Any, drop: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    skip = VOLATILE | drop
    return {
        f.attname: getattr(obj, f.attname)
        for f in obj._meta.concrete_fields
        if f.name not in skip and f.attname not in PARTIES
    }


# Each path has its own agent, line and user: compare what they are, not their ids.
PARTIES = {"loan_id", "order_id", "agent_id", "credit_line_id", "requested_by_id"}


def _written(loan: Loan) -> dict[str, Any]:
    """Everything a decision wrote, without ids and timestamps."""
    loan = Loan.objects.get(pk=loan.pk)
    disbursement = Disbursement.objects.filter(loan=loan).first()
    audits = AuditLog.objects.filter(object_type="lending.loan", object_id=str(loan.pk))
    decision = _fields(Decision.objects.get(loan=loan))
    for varies in ("order_id", "program_available"):  # the other path's order, and its reservation
        decision["inputs"].pop(varies)
    return {
        "loan": _fields(loan),
        "decision": decision,
        "reviews": [_fields(r) for r in Review.objects.filter(loan=loan)],
        "disbursement": _fields(disbursement, {"end_to_end_id"}) if disbursement else None,
        "e2e_is_loan_id": disbursement.end_to_end_id.endswith(f"{loan.pk:012d}")
        if disbursement
        else None,
        "audits": [
            (
                a.action,
                a.actor_id == loan.requested_by_id,
                a.actor_label.split(":")[0],
                a.before,
                {k: v for k, v in a.after.items() if k != "end_to_end_id"},
            )
            for a in audits.order_by("id")
        ],
    }


@pytest.fixture
def program(enterprise: Any) -> Program:
    return ProgramFactory(enterprise=enterprise, limit=Decimal("5000000.00"))


def _agent_world(program: Program, enterprise: Any) -> Any:
    """An agent with a line of 1,000,000 in ``program``: one per path, so both start equal."""
    agent = AgentFactory(enterprises=[enterprise])
    line = CreditLineFactory(agent=agent, program=program, limit=Decimal("1000000.00"))
    user = UserFactory(role="agent", agent=agent)
    return program, line, user, enterprise


@pytest.fixture
def world(program: Program, enterprise: Any) -> Any:
    return _agent_world(program, enterprise)


def _decide(world: Any, amount: str, single: bool, monkeypatch: Any, callbacks: Any) -> Any:
    _program, line, user, enterprise = world
    monkeypatch.setattr(finance, "SINGLE_STATEMENT", single)
    order = OrderFactory(agent=line.agent, enterprise=enterprise, amount=Decimal(amount))
    before = _headroom(line)
    with callbacks() as queued:
        loan = finance.loan_finance(user=user, order_id=order.pk)
    after = _headroom(line)
    moved = tuple(b - a for a, b in zip(before, after, strict=True))
    return loan, moved, len(queued)


def _headroom(line: CreditLine) -> tuple[Decimal, ...]:
    line = CreditLine.objects.get(pk=line.pk)
    program = Program.objects.get(pk=line.program_id)
    return line.reserved, line.outstanding_principal, program.reserved


@pytest.mark.parametrize(
    ("amount", "outcome"),
    [
        ("10000.00", "disbursing"),  # approved: paid out at once
        ("700000.00", "in_review"),  # above the auto-approve limit: referred (two approvers)
        ("1500000.00", "declined"),  # more than the line and the program maximum
        ("500.00", "declined"),  # below the program minimum
    ],
)
def test_both_paths_write_the_same_rows(
    program, enterprise, amount, outcome, monkeypatch, django_capture_on_commit_callbacks
):
    one, one_moved, one_queued = _decide(
        _agent_world(program, enterprise),
        amount,
        True,
        monkeypatch,
        django_capture_on_commit_callbacks,
    )
    orm, orm_moved, orm_queued = _decide(
        _agent_world(program, enterprise),
        amount,
        False,
        monkeypatch,
        django_capture_on_commit_callbacks,
    )
    assert one.status == orm.status == outcome
    assert _written(one) == _written(orm)
    assert one_moved == orm_moved
    assert one_queued == orm_queued == (1 if outcome == "disbursing" else 0)
    # The instance returned is the saved row, with its decision.
    assert Loan.objects.filter(pk=one.pk, status=one.status).exists()
    assert one.decision.pk == Decision.objects.get(loan_id=one.pk).pk
    assert book_check() == []


@pytest.mark.parametrize("single", [True, False])
def test_a_program_that_ran_out_after_the_decision_writes_a_decline_only(
    world, single, monkeypatch, django_capture_on_commit_callbacks
):
    """The decision saw room in the program, the reservation no longer fits: nothing of the
    approval is written, the request is decided again and declined."""
    program, _line, _user, enterprise = world
    # Another agent's referred loan holds all but 5,000 of the program.
    other = _agent_world(program, enterprise)
    big = OrderFactory(agent=other[1].agent, enterprise=enterprise, amount=Decimal("700000.00"))
    assert finance.loan_finance(user=other[2], order_id=big.pk).status == "in_review"
    Program.objects.filter(pk=program.pk).update(limit=Decimal("565000.00"))
    real = finance._program_and_line

    def stale(order: Any, *, lock: bool) -> Any:
        found_program, found_line, facts = real(order, lock=lock)
        found_program.reserved = Decimal("0.00")  # as another agent's click left it, just before
        return found_program, found_line, facts

    monkeypatch.setattr(finance, "_program_and_line", stale)
    loan, moved, queued = _decide(
        world, "10000.00", single, monkeypatch, django_capture_on_commit_callbacks
    )
    assert loan.status == "declined"
    assert [r["code"] for r in loan.decision.reasons] == ["insufficient_program_limit"]
    assert moved == (Decimal("0.00"),) * 3 and queued == 0
    assert Loan.objects.filter(order_id=loan.order_id).count() == 1
    assert Decision.objects.filter(loan__order_id=loan.order_id).count() == 1
    assert not Disbursement.objects.exists()
    assert not Review.objects.filter(loan=loan).exists()
    actions = list(
        AuditLog.objects.filter(object_type="lending.loan", object_id=str(loan.pk)).values_list(
            "action", flat=True
        )
    )
    assert actions == ["loan.declined"]
    assert book_check() == []


def _stored(user: Any, key: str) -> tuple[int | None, Any]:
    record = IdempotencyRecord.objects.get(user=user, key=key)
    return record.response_status, record.response_body


@pytest.mark.parametrize("single", [True, False])
@pytest.mark.parametrize("amount", ["10000.00", "700000.00", "1500000.00"])
def test_the_idempotent_click_stores_the_reply_it_gives(world, single, amount, monkeypatch):
    """``loan_finance_once``: the reply is written with the rows (one statement) or after them
    (the ORM path); either way the stored reply is the one given, and a replay returns it."""
    _program, line, user, enterprise = world
    monkeypatch.setattr(finance, "SINGLE_STATEMENT", single)
    order = OrderFactory(agent=line.agent, enterprise=enterprise, amount=Decimal(amount))
    reply = finance.loan_finance_once(user=user, order_id=order.pk, key="k1", body={})
    loan = Loan.objects.get(order=order)
    assert reply.status == 201
    assert reply.body["loan"]["id"] == loan.pk
    assert reply.body["loan"]["status"] == loan.status
    assert reply.body["decision"]["outcome"] == Decision.objects.get(loan=loan).outcome
    assert _stored(user, "k1") == (201, reply.body)
    again = finance.loan_finance_once(user=user, order_id=order.pk, key="k1", body={})
    assert again == reply
    assert Loan.objects.filter(order=order).count() == 1
    assert book_check() == []


@pytest.mark.parametrize("single", [True, False])
def test_an_error_reply_is_stored_and_nothing_else_written(world, single, monkeypatch):
    """A 409 (the order is financed already) is decided after the claim, with no savepoint:
    the claim keeps the error reply, no loan or reservation is added, and it replays."""
    _program, line, user, enterprise = world
    monkeypatch.setattr(finance, "SINGLE_STATEMENT", single)
    order = OrderFactory(agent=line.agent, enterprise=enterprise, amount=Decimal("10000.00"))
    assert finance.loan_finance_once(user=user, order_id=order.pk, key="a", body={}).status == 201
    before = _headroom(line)
    second = finance.loan_finance_once(user=user, order_id=order.pk, key="b", body={})
    assert second.status == 409
    assert second.body["code"] == "order_already_financed"
    assert _stored(user, "b") == (409, second.body)
    assert _headroom(line) == before
    assert Loan.objects.filter(order=order).count() == 1
    assert finance.loan_finance_once(user=user, order_id=order.pk, key="b", body={}) == second
    missing = finance.loan_finance_once(user=user, order_id=order.pk + 10**6, key="c", body={})
    assert (missing.status, missing.body["code"]) == (404, "not_found")
    assert _stored(user, "c") == (404, missing.body)
    assert finance.loan_finance_once(user=user, order_id=order.pk + 10**6, key="c", body={}) == (
        missing
    )
    # A key already used for another order, sent with an order that is not the agent's: 422.
    with pytest.raises(IdempotencyKeyReused):
        finance.loan_finance_once(user=user, order_id=order.pk + 10**6, key="a", body={})
    assert IdempotencyRecord.objects.filter(user=user).count() == 3


@pytest.mark.parametrize("amount", ["10000.00", "700000.00", "1500000.00"])
def test_values_sent_as_they_are_equal_what_django_prepares(world, amount, monkeypatch):
    """``insert_select`` skips ``get_db_prep_save`` for values it would return unchanged; for
    every row a decision writes, its parameters equal the ones Django's preparation gives."""
    _program, line, user, enterprise = world
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)  # auto_now_add fields: one instant
    order = OrderFactory(agent=line.agent, enterprise=enterprise, amount=Decimal(amount))
    seen: list[Any] = []
    real = finance_hotpath.insert_select

    def compared(obj: Any, *, source: Any = None) -> Any:
        sql, params = real(obj, source=source)
        fields = [f for f in obj._meta.concrete_fields if obj.pk is not None or not f.primary_key]
        prepared = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
        assert [_plain(p) for p in params] == [_plain(p) for p in prepared]
        seen.append(type(obj).__name__)
        return sql, params

    monkeypatch.setattr(finance_hotpath, "insert_select", compared)
    finance.loan_finance(user=user, order_id=order.pk)
    assert "Loan" in seen and "Decision" in seen and "AuditLog" in seen


def _plain(value: Any) -> Any:
    """A JSON adapter's payload (adapters have no equality of their own)."""
    return getattr(value, "adapted", value)
