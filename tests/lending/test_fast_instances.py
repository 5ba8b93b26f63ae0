"""``scf.hotpath.build`` and ``model_from_row`` make model instances without ``Model.__init__``:
they must be the instances Django makes, field by field, cache by cache."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models import Model, signals
from rest_framework.authtoken.models import Token

from lending.models import (
    AuditLog,
    CreditLine,
    Decision,
    Disbursement,
    Loan,
    LoanStatus,
    Program,
    Review,
    ReviewKind,
)
from orders.models import Agent, CoreEnterprise, SalesOrder, User
from scf.hotpath import build, execute_prepared, model_from_row, select_list
from tests.lending.factories import CreditLineFactory
from tests.orders.factories import OrderFactory, UserFactory

pytestmark = [pytest.mark.django_db]

NOW = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)


def _state(obj: Model) -> dict[str, Any]:
    """Everything an instance holds: its field values, its saved state and its related caches
    (by identity: the same objects, not equal copies)."""
    values = {k: v for k, v in vars(obj).items() if k != "_state"}
    cache = {name: id(value) for name, value in obj._state.fields_cache.items()}
    return {"values": values, "adding": obj._state.adding, "db": obj._state.db, "cache": cache}


@pytest.fixture
def parties() -> dict[str, Any]:
    line = CreditLineFactory()
    order = OrderFactory(agent=line.agent, enterprise=line.program.enterprise)
    user = UserFactory(agent=line.agent)
    return {"line": line, "program": line.program, "order": order, "user": user}


def _loan_fields(p: dict[str, Any], loan_id: int | None) -> dict[str, Any]:
    return {
        "id": loan_id,
        "program": p["program"],
        "credit_line": p["line"],
        "agent": p["order"].agent,
        "order": p["order"],
        "status": LoanStatus.DISBURSING,
        "currency": "CNY",
        "order_amount": Decimal("10000.00"),
        "principal": Decimal("8000.00"),
        "advance_rate": Decimal("0.8000"),
        "annual_rate": Decimal("0.060000"),
        "penalty_rate": Decimal("0.000500"),
        "day_count": "ACT/360",
        "tenor_days": 90,
        "grace_days": 3,
        "reserved_amount": Decimal("8000.00"),
        "due_date": dt.date(2027, 3, 3),
        "reference": "SCF0123456789AB",
        "requested_by": p["user"],
        "requested_at": NOW,
        "decided_at": NOW,
        "approved_at": NOW,
    }


@pytest.mark.parametrize("loan_id", [None, 987654])
def test_built_rows_equal_djangos_own(parties: dict[str, Any], loan_id: int | None) -> None:
    """The finance click's rows, with and without a reserved id, as Django makes them."""
    fields = _loan_fields(parties, loan_id)
    ours, theirs = build(Loan, **fields), Loan(**fields)
    assert _state(ours) == _state(theirs)
    assert ours.program is parties["program"] and ours.requested_by_id == parties["user"].pk

    dependents: list[tuple[type[Model], dict[str, Any]]] = [
        (Decision, {"outcome": "approved", "reasons": [], "rules": [{"rule": "x"}]}),
        (Review, {"kind": ReviewKind.REFERRAL, "created_at": NOW, "expires_at": NOW}),
        (Disbursement, {"end_to_end_id": "E2E1", "amount": Decimal("8000.00"), "currency": "CNY"}),
    ]
    for model, extra in dependents:
        mine, django = build(model, loan=ours, **extra), model(loan=theirs, **extra)
        assert _state(mine) | {"cache": {}} == _state(django) | {"cache": {}}, model
        assert mine.loan is ours and django.loan is theirs
    # A one-to-one also fills the reverse cache, as Django's descriptor does.
    assert ours.decision.outcome == "approved" and ours.disbursement.end_to_end_id == "E2E1"
    audit = {"action": "loan.approved", "object_type": "lending.loan", "before": {}, "after": {}}
    mine_a = build(AuditLog, actor=parties["user"], **audit)
    assert _state(mine_a) == _state(AuditLog(actor=parties["user"], **audit))


def test_defaults_attribute_names_and_bad_arguments(parties: dict[str, Any]) -> None:
    payout = build(Disbursement, loan_id=5, amount=Decimal("1.00"))
    assert _state(payout) == _state(Disbursement(loan_id=5, amount=Decimal("1.00")))
    assert payout.attempts == 0 and payout.status == Disbursement().status
    # Two instances never share a mutable default.
    assert build(AuditLog).before is not build(AuditLog).before

    # An unsaved related object: both instances take the default database, as Django's do.
    bare_ours, bare_theirs = Loan(), Loan()
    mine, django = build(Decision, loan=bare_ours), Decision(loan=bare_theirs)
    assert (mine._state.db, bare_ours._state.db) == (django._state.db, bare_theirs._state.db)
    assert mine._state.db == "default" and bare_ours.decision is mine

    with pytest.raises(TypeError, match="unexpected keyword arguments: \\['colour'\\]"):
        build(Loan, colour="red")
    with pytest.raises(ValueError, match=r"Loan\.program must be"):
        build(Loan, program=parties["line"])


def test_a_model_with_init_receivers_goes_through_init(parties: dict[str, Any]) -> None:
    seen: list[Model] = []

    def receiver(sender: type[Model], instance: Model, **kwargs: Any) -> None:
        seen.append(instance)

    signals.post_init.connect(receiver, sender=AuditLog)
    try:
        audit = build(AuditLog, action="x")
    finally:
        signals.post_init.disconnect(receiver, sender=AuditLog)
    assert seen == [audit]
    assert build(AuditLog, action="y") not in seen


@pytest.mark.parametrize(
    ("model", "pick"),
    [
        (SalesOrder, lambda p: p["order"]),
        (Agent, lambda p: p["order"].agent),
        (CreditLine, lambda p: p["line"]),
        (Program, lambda p: p["program"]),
        (CoreEnterprise, lambda p: p["program"].enterprise),
        (User, lambda p: p["user"]),
        (Token, lambda p: Token.objects.create(user=p["user"])),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_rows_read_equal_djangos_own(
    parties: dict[str, Any], model: type[Model], pick: Callable[[dict[str, Any]], Model]
) -> None:
    """Every model the hot paths read with ``model_from_row`` (the token lookup, the click)."""
    obj = pick(parties)
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    sql = f"SELECT {select_list(model, 'x')}, 1 FROM {table} x WHERE x.{pk} = %s"
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, [obj.pk])
        row = cursor.fetchone()
    ours, end = model_from_row(model, row)
    assert row[end] == 1
    theirs = model.objects.get(pk=obj.pk)
    assert _state(ours) == _state(theirs)
    assert ours == theirs and type(ours.pk) is type(theirs.pk)


def test_the_setting_sends_instances_through_django(settings, monkeypatch):
    """``SCF_FAST_INSTANCES`` off: ``build`` makes its instances with ``Model.__init__``."""
    made: list[str] = []
    django_init = AuditLog.__init__

    def counted(self: AuditLog, *args: Any, **kwargs: Any) -> None:
        made.append("init")
        django_init(self, *args, **kwargs)

    monkeypatch.setattr(AuditLog, "__init__", counted)
    settings.SCF_FAST_INSTANCES = False
    assert build(AuditLog, action="loan.approved").action == "loan.approved"
    assert made == ["init"]
    settings.SCF_FAST_INSTANCES = True
    assert build(AuditLog, action="loan.approved").action == "loan.approved"
    assert made == ["init"]
