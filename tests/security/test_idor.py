"""Scenario 14: IDOR sweep. Another party's ids get exactly what an id that does not exist gets.

The endpoints are not listed by hand: every API route of the URL conf that takes an object id
(``<int:...>`` in its path) is called with every HTTP method its view implements, so a new
endpoint is swept as soon as it is routed (and a new kind of id fails the sweep until it is
taught here which objects are whose).

Callers: agent A (enterprise X) against agent B's objects (enterprise Y) and against the other
agent of its own enterprise; enterprise X's admin against enterprise Y's objects; and the bank
dimension: a risk reviewer, a risk approver and an operations admin of bank A (side A's program)
against every object of bank B (side B's program, enterprise, agents, orders, loans, cases,
proposals). Each also
sends 1,000 random ids (small, huge, past 64 bits, zero-padded, negative-looking, uuid-like).
Every answer is 404 with the API's error shape: never 2xx, never 5xx, and never a 403 that
would tell a foreign id from a missing one. The one exception is an operation the caller's
role may not use at all (review actions, freezing a line, recording a repayment): 403 for
every id alike, its own included, so it confirms nothing. No row of our apps is written.

Lists (every routed API list) never include the other side's rows.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.bank_models import UnappliedCredit
from lending.models import (
    Agreement,
    GuaranteeClaim,
    IdempotencyRecord,
    LineProposal,
    Loan,
    MarginAccount,
    MarginWithdrawal,
    Program,
    ProposalStatus,
    ReleaseBreach,
    Review,
    TermsChange,
    TripartiteTerms,
)
from orders.models import AgentRelationship, SalesOrder
from orders.permissions import HasRole
from tests.conftest import client_for
from tests.security.world import Side, World, seed_world, snapshot_diff, table_snapshot

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

RANDOM_IDS = 1000
ID_KINDS = (
    "order_id",
    "loan_id",
    "review_id",
    "program_id",
    "agent_id",
    "proposal_id",
    "agreement_id",
    "change_id",
    "withdrawal_id",
    "claim_id",
    "breach_id",
    "credit_id",
)
# A body that passes each operation's validation, so the request reaches the object lookup.
BODIES: dict[str, dict[str, Any]] = {
    "freeze": {"reason": "idor sweep"},
    "unfreeze": {"reason": "idor sweep"},
    "decline": {"reason": "credit_risk", "note": "idor sweep"},
    "close": {"note": "idor sweep"},
    "reject": {"reason": "idor sweep"},
    "apply": {"loan": 1},
    "repayments": {"amount": "100.00", "value_date": "", "reference": "IDOR-SWEEP-1"},
    "agreements": {"agent": 1, "signed_on": "2026-01-05", "agent_cap": "1.00"},
    "terminate": {"reason": "idor sweep"},
    "deposits": {"amount": "1.00", "value_date": "", "reference": "IDOR-SWEEP-1", "program": 1},
    "withdrawals": {"amount": "1.00", "program": 1},
}


@dataclass(frozen=True)
class Endpoint:
    route: str  # "api/v1/orders/<int:order_id>/quote/"
    name: str
    method: str
    view_class: Any

    @property
    def params(self) -> list[str]:
        return re.findall(r"<int:(\w+)>", self.route)

    def path(self, value: object) -> str:
        return "/" + re.sub(r"<int:\w+>", str(value), self.route)

    def role_may_call(self, role: str) -> bool:
        """Whether the view's role permissions let ``role`` use this method at all."""
        view = self.view_class()
        view.request = SimpleNamespace(method=self.method.upper())
        return all(
            role in permission.roles
            for permission in view.get_permissions()
            if isinstance(permission, HasRole)
        )


def _routes(patterns: list[Any], prefix: str = "") -> list[tuple[str, URLPattern]]:
    found: list[tuple[str, URLPattern]] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            found += _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            found.append((prefix + str(entry.pattern), entry))
    return found


def api_endpoints() -> list[Endpoint]:
    """Every (route, method) of the API, from the URL conf."""
    endpoints = []
    for route, pattern in _routes(get_resolver().url_patterns):
        view_class = getattr(pattern.callback, "view_class", None)
        if not route.startswith("api/v1/") or view_class is None:
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view_class, method):
                endpoints.append(Endpoint(route, pattern.name or "", method, view_class))
    return endpoints


def id_endpoints() -> list[Endpoint]:
    return [e for e in api_endpoints() if e.params]


def list_endpoints() -> list[Endpoint]:
    return [e for e in api_endpoints() if not e.params and e.method == "get"]


def _proposal(side: Side) -> LineProposal:
    line = side.line
    return LineProposal.objects.create(
        credit_line=line,
        agent=line.agent,
        program=line.program,
        as_of=dt.date.today(),
        grade="B",
        current_limit=line.limit,
        proposed_limit=line.limit + Decimal("100000.00"),
        utilisation=Decimal("0.00"),
        status=ProposalStatus.AWAITING_APPROVAL,
        created_at=timezone.now(),
    )


def _tripartite(side: Side, ops: Any) -> None:
    """Side's program under tripartite terms: an agreement, a change proposed to its cap, a
    margin account with a withdrawal waiting for approval."""
    program, agent = side.program, side.agent
    TripartiteTerms.objects.create(program=program, enabled=True, margin_ratio=Decimal("0.3"))
    agreement = Agreement.objects.create(
        program=program, agent=agent, signed_on=dt.date.today(), agent_cap=Decimal("1000.00")
    )
    TermsChange.objects.create(
        program=program,
        agreement=agreement,
        changes={"agent_cap": "2000.00"},
        before={"agent_cap": "1000.00"},
        proposed_by=ops,
        proposed_at=timezone.now(),
    )
    account = MarginAccount.objects.create(
        program=program, agent=agent, currency="CNY", reference=f"MG-{program.pk}-{agent.pk}"
    )
    MarginWithdrawal.objects.create(
        account=account,
        amount=Decimal("1.00"),
        currency="CNY",
        end_to_end_id=f"MWIDOR{account.pk}",
        creditor_name="x",
        creditor_account="1",
        status="awaiting_approval",
        requested_by=ops,
        requested_at=timezone.now(),
    )


def side_ids(side: Side) -> dict[str, set[int]]:
    """Every id of one side's objects, by path parameter (the loans' own orders included)."""
    enterprise = side.enterprise
    return {
        "order_id": set(
            SalesOrder.objects.filter(enterprise=enterprise).values_list("pk", flat=True)
        ),
        "loan_id": set(
            Loan.objects.filter(program__enterprise=enterprise).values_list("pk", flat=True)
        ),
        "review_id": set(
            Review.objects.filter(loan__program__enterprise=enterprise).values_list("pk", flat=True)
        ),
        "program_id": set(
            Program.objects.filter(enterprise=enterprise).values_list("pk", flat=True)
        ),
        "agent_id": set(
            AgentRelationship.objects.filter(enterprise=enterprise).values_list(
                "agent_id", flat=True
            )
        ),
        "proposal_id": set(
            LineProposal.objects.filter(program__enterprise=enterprise).values_list("pk", flat=True)
        ),
        "agreement_id": set(
            Agreement.objects.filter(program__enterprise=enterprise).values_list("pk", flat=True)
        ),
        "change_id": set(
            TermsChange.objects.filter(program__enterprise=enterprise).values_list("pk", flat=True)
        ),
        "withdrawal_id": set(
            MarginWithdrawal.objects.filter(account__program__enterprise=enterprise).values_list(
                "pk", flat=True
            )
        ),
        "claim_id": set(
            GuaranteeClaim.objects.filter(enterprise=enterprise).values_list("pk", flat=True)
        ),
        "breach_id": set(
            ReleaseBreach.objects.filter(enterprise=enterprise).values_list("pk", flat=True)
        ),
        # Unapplied bank credits belong to the side's bank (of its file and account): operations
        # of the other bank get the 404 of a missing id, agents and enterprise admins the 403
        # of an endpoint their role may not call, for every id alike.
        "credit_id": set(
            UnappliedCredit.objects.filter(bank=side.program.bank).values_list("pk", flat=True)
        ),
    }


def foreign_ids(world: World, caller: str) -> dict[str, list[int]]:
    """The ids the caller must not reach: side B's everything; for agent A also what belongs to
    the other agent of its own enterprise."""
    ids = {name: sorted(values) for name, values in side_ids(world.b).items()}
    if caller == "agent":
        ids["agent_id"].append(world.a.other_agent.pk)
        ids["order_id"].append(world.a.other_order.pk)
    return ids


def random_ids(rng: random.Random, avoid: set[int], n: int) -> list[str]:
    """Ids of every shape a path segment can take; numbers the caller may own are skipped."""
    ids: list[str] = []
    while len(ids) < n:
        shape = rng.randrange(8)
        if shape == 0:
            value = str(rng.randrange(1, 10_000))
        elif shape == 1:
            value = str(rng.randrange(10_000, 2**31))
        elif shape == 2:
            value = str(rng.choice([2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64]))
        elif shape == 3:
            value = str(rng.randrange(2**64, 10**40))
        elif shape == 4:
            value = "0" * rng.randrange(1, 6) + str(rng.randrange(1, 100))
        elif shape == 5:
            value = "0"
        elif shape == 6:
            value = f"-{rng.randrange(1, 10**6)}"
        else:
            value = str(uuid.UUID(int=rng.getrandbits(128)))
        if value.isdigit() and int(value) in avoid:
            continue
        ids.append(value)
    return ids


def _call(client: APIClient, endpoint: Endpoint, value: object) -> Any:
    body = dict(BODIES.get(endpoint.route.rstrip("/").rsplit("/", 1)[-1], {}))
    if "value_date" in body:
        body["value_date"] = dt.date.today().isoformat()
    send = getattr(client, endpoint.method)
    if endpoint.method == "get":
        return send(endpoint.path(value))
    return send(endpoint.path(value), body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))


def _expected(endpoint: Endpoint, role: str, value: object) -> int:
    routed = str(value).isdigit()  # "<int:>" routes only digits; anything else is no route
    return 403 if routed and not endpoint.role_may_call(role) else 404


def _sweep(world: World, caller: str, user: Any) -> tuple[int, list[str]]:
    """Send the caller at every id endpoint with foreign and random ids; return (requests, faults)."""
    client = client_for(user)
    endpoints = id_endpoints()
    foreign = foreign_ids(world, caller)
    avoid = side_ids(world.a)  # random ids skip the caller's own side (it may see some)
    rng = random.Random(f"idor-{caller}")
    faults: list[str] = []
    sent = 0
    calls: list[tuple[Endpoint, object, str]] = []
    for endpoint in endpoints:
        (param,) = endpoint.params
        calls += [(endpoint, value, "foreign") for value in foreign[param]]
    # 1,000 random ids spread over every endpoint, round robin.
    per_endpoint = -(-RANDOM_IDS // len(endpoints))
    for endpoint in endpoints:
        (param,) = endpoint.params
        calls += [
            (endpoint, value, "random") for value in random_ids(rng, avoid[param], per_endpoint)
        ]
    statuses: Counter[tuple[str, int]] = Counter()
    for endpoint, value, kind in calls:
        response = _call(client, endpoint, value)
        sent += 1
        statuses[(f"{endpoint.method.upper()} {endpoint.name}", response.status_code)] += 1
        expected = _expected(endpoint, user.role, value)
        body = response.json() if response["Content-Type"].startswith("application/json") else {}
        if response.status_code != expected or set(body) != {"code", "detail", "fields"}:
            faults.append(
                f"{caller} {endpoint.method.upper()} {endpoint.path(value)} ({kind}): "
                f"{response.status_code}, expected {expected}: {response.content[:200]!r}"
            )
    print(f"\nIDOR sweep as {caller}: {sent} requests, by endpoint and status: {dict(statuses)}")
    return sent, faults


def test_every_object_id_endpoint_is_swept():
    names = {e.name for e in id_endpoints()}
    for needed in (
        "orders-detail",
        "orders-quote",
        "orders-finance",
        "loans-detail",
        "loans-ledger",
        "loans-repayments",
        "reviews-detail",
        "reviews-claim",
        "reviews-approve",
        "reviews-decline",
        "programs-detail",
        "programs-dashboard",
        "agents-credit-line",
        "agents-credit-line-freeze",
        "line-proposals-detail",
    ):
        assert needed in names
    for endpoint in id_endpoints():
        assert len(endpoint.params) == 1, endpoint.route
        assert endpoint.params[0] in ID_KINDS, (
            f"teach the sweep whose {endpoint.params[0]} is whose"
        )
    methods = {(e.name, e.method) for e in id_endpoints()}
    assert {("loans-repayments", "get"), ("loans-repayments", "post")} <= methods


CALLERS = ["agent", "enterprise_admin", "risk_reviewer", "risk_approver", "ops_admin"]


@pytest.mark.parametrize("caller", CALLERS)
def test_foreign_and_random_ids_are_404_and_write_nothing(caller):
    world = seed_world()
    user = world.user_for(caller)
    _proposal(world.b)
    _tripartite(world.b, world.ops)
    records_before = set(IdempotencyRecord.objects.values_list("pk", flat=True))
    before = table_snapshot()
    sent, faults = _sweep(world, caller, user)
    after = table_snapshot()
    # The finance endpoint stores its reply under the caller's own Idempotency-Key, a 404
    # included, so that a retry gets the same answer: the only rows a sweep may leave.
    new_records = IdempotencyRecord.objects.exclude(pk__in=records_before)
    assert all(r.user_id == user.pk for r in new_records)
    assert {r.response_status for r in new_records} <= {404}, [
        (r.scope, r.response_body) for r in new_records if r.response_status != 404
    ]
    label = IdempotencyRecord._meta.label
    before.pop(label)
    after.pop(label)
    assert sent >= RANDOM_IDS + len(id_endpoints())
    assert not faults, f"{len(faults)} of {sent} requests leaked or failed:\n" + "\n".join(
        faults[:40]
    )
    assert snapshot_diff(before, after) == []


def _rows(client: APIClient, path: str) -> list[dict[str, Any]]:
    response = client.get(path, {"page_size": 500})
    if response.status_code != 200:
        return []
    data = response.json()
    return data["results"] if isinstance(data, dict) and "results" in data else []


def _mentions(rows: list[dict[str, Any]], side: Side, own_kind: str | None) -> list[str]:
    """Where a row of a list refers to one of ``side``'s objects."""
    agents = {side.agent.pk, side.other_agent.pk}
    kinds = {
        "orders-list": {o.pk for o in side.orders.values()},
        "loans-list": {loan.pk for loan in side.loans.values()},
        "programs-list": {side.program.pk},
        "reviews-list": {side.review.pk},
        "line-proposals-list": set(
            LineProposal.objects.filter(program=side.program).values_list("pk", flat=True)
        ),
        "unapplied-credits-list": {side.credit.pk},
    }
    found = []
    for row in rows:
        if own_kind in kinds and row.get("id") in kinds[own_kind]:
            found.append(f"id {row['id']}")
        if row.get("agent") in agents or row.get("agent_id") in agents:
            found.append(f"agent of row {row.get('id')}")
        for key in ("program", "program_id"):
            if row.get(key) == side.program.pk or (
                isinstance(row.get(key), dict) and row[key].get("id") == side.program.pk
            ):
                found.append(f"program of row {row.get('id')}")
        loan = row.get("loan")
        if isinstance(loan, dict) and loan.get("id") in {x.pk for x in side.loans.values()}:
            found.append(f"loan of row {row.get('id')}")
        enterprise = row.get("enterprise")
        if enterprise in (side.enterprise.code, side.enterprise.pk) or (
            isinstance(enterprise, dict) and enterprise.get("id") == side.enterprise.pk
        ):
            found.append(f"enterprise of row {row.get('id')}")
    return found


@pytest.mark.parametrize("caller", CALLERS)
def test_lists_never_include_the_other_sides_rows(caller):
    world = seed_world()
    _proposal(world.a)
    _proposal(world.b)
    user = world.user_for(caller)
    client = client_for(user)
    lists = list_endpoints()
    assert {"orders-list", "loans-list", "programs-list"} <= {e.name for e in lists}
    for endpoint in lists:
        rows = _rows(client, "/" + endpoint.route)
        assert _mentions(rows, world.b, endpoint.name) == [], endpoint.route
        if caller == "agent":  # nor another agent's of the same enterprise
            ids = [row.get("id") for row in rows if endpoint.name == "orders-list"]
            assert world.a.other_order.pk not in ids
            assert not {row.get("agent") for row in rows} & {world.a.other_agent.pk}
    # The lists are not empty for want of rows: the caller's own side is in them.
    own = ["orders-list", "loans-list", "programs-list"]
    if user.is_bank_staff:
        own += ["reviews-list", "line-proposals-list"]
    if caller == "ops_admin":
        own.append("unapplied-credits-list")
    paths = {e.name: "/" + e.route for e in lists}
    for name in own:
        assert _mentions(_rows(client, paths[name]), world.a, name), name
