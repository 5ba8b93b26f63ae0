"""The bank dimension on the web pages and on the rules of ``lending.selectors.scope``.

The API's side is swept in ``test_idor.py`` (every API route with an id, every list) and in the
authorisation matrix. Here: every page route of the URL conf that takes an id (found by walking
the resolver, so a new page is swept as soon as it is routed), sent by a risk reviewer, a risk
approver and an operations admin of bank A with bank B's ids, by GET and by POST. A foreign id
must get exactly what an id that does not exist gets, never a page, a redirect or a file, and
no row may be written. The lists, the audit trail and the exports show none of bank B's rows.

And the two rules of the scope: a staff user without a bank sees nothing; a platform superuser
sees every bank.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver

from lending.models import AuditLog, Loan
from lending.services.audit import audit_record
from tests.conftest import client_for
from tests.lending.factories import CreditLineFactory
from tests.lending.loan_makers import disbursed_loan
from tests.orders.factories import UserFactory
from tests.security.test_idor import _routes, side_ids
from tests.security.world import Side, World, seed_world, snapshot_diff, table_snapshot

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

STAFF = ("risk_reviewer", "risk_approver", "ops_admin")
MISSING = 987654321
# Pages not of our apps (the Django admin has its own permission model: superusers only).
SKIP_PREFIXES = ("admin/", "api/")
BODY = {"reason": "bank sweep", "note": "bank sweep", "confirmed": "yes"}


def page_routes() -> list[str]:
    """Every page route (not the API, not the admin) with an ``<int:...>`` in its path."""
    found = []
    for route, pattern in _routes(get_resolver().url_patterns):
        assert isinstance(pattern, URLPattern)
        if route.startswith(SKIP_PREFIXES) or "<int:" not in route:
            continue
        found.append(route)
    return found


def _path(route: str, ids: dict[str, int]) -> str:
    return "/" + re.sub(r"<int:(\w+)>", lambda m: str(ids[m.group(1)]), route)


def _b_ids(world: World) -> list[dict[str, int]]:
    """Sets of path values naming side B's objects (each kind, every object)."""
    ids = side_ids(world.b)
    combos = []
    for n in range(max(len(v) for v in ids.values())):
        combo = {}
        for name, values in ids.items():
            ordered = sorted(values)
            combo[name] = ordered[n % len(ordered)] if ordered else MISSING
        combo["program_id"] = world.b.program.pk
        combos.append(combo)
    return combos


def _send(client: Client, method: str, path: str) -> Any:
    return client.get(path) if method == "get" else client.post(path, BODY)


@pytest.mark.parametrize("role", STAFF)
def test_every_page_with_an_id_treats_another_banks_object_as_missing(role):
    world = seed_world()
    routes = page_routes()
    names = {r.split("<")[0] for r in routes}
    assert {"loans/", "reviews/", "dashboard/", "orders/"} <= names, names
    client = client_for_web(world.user_for(role))
    before = table_snapshot()
    faults = []
    sent = 0
    for route in routes:
        missing = _path(route, dict.fromkeys(re.findall(r"<int:(\w+)>", route), MISSING))
        for method in ("get", "post"):
            expected = _send(client, method, missing).status_code
            for ids in _b_ids(world):
                path = _path(route, ids)
                status = _send(client, method, path).status_code
                sent += 1
                if status != expected or 200 <= status < 400:
                    faults.append(f"{role} {method.upper()} {path}: {status}, missing: {expected}")
    assert sent > len(routes) * 2
    assert not faults, "\n".join(faults[:40])
    assert snapshot_diff(before, table_snapshot()) == []


def client_for_web(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _names(side: Side) -> list[str]:
    """Texts that identify one side's rows on a page or in a CSV."""
    return [
        *(loan.reference for loan in side.loans.values()),
        side.program.code,
        side.agent.code,
    ]


def test_pages_lists_audit_and_exports_show_none_of_another_banks_rows():
    world = seed_world()
    for side in (world.a, world.b):  # an audited change on each side's line and program
        audit_record(actor=None, action="credit_line.update", obj=side.line)
        audit_record(actor=None, action="program.update", obj=side.program)
    pid = world.a.program.pk
    pages = [
        "/reviews/",
        "/reviews/?status=",
        "/loans/",
        "/orders/",
        "/dashboard/",  # one program of the bank's: straight to its dashboard
        "/reviews/audit/",
        "/reviews/audit.csv",
        f"/dashboard/{pid}/",
        f"/dashboard/{pid}/loans.csv",
        f"/dashboard/{pid}/orders.csv",
    ]
    for role in STAFF:
        client = client_for_web(world.user_for(role))
        seen_own = set()
        for page in pages:
            response = client.get(page, follow=True)
            assert response.status_code == 200, (role, page)
            text = b"".join(response.streaming_content) if response.streaming else response.content
            body = text.decode()
            leaked = [name for name in _names(world.b) if name in body]
            assert leaked == [], (role, page, leaked)
            seen_own |= {name for name in _names(world.a) if name in body}
        # The pages are not empty for want of rows: side A's loans, program and agent show.
        assert set(_names(world.a)) <= seen_own, set(_names(world.a)) - seen_own


def test_a_staff_member_without_a_bank_sees_nothing():
    world = seed_world()
    lost = UserFactory(role="risk_reviewer", bank=False)
    api = client_for(lost)
    for path in ("/api/v1/loans/", "/api/v1/programs/", "/api/v1/reviews/", "/api/v1/orders/"):
        assert api.get(path).json()["count"] == 0, path
    assert api.get(f"/api/v1/loans/{world.a.loans['active'].pk}/").status_code == 404
    assert api.get(f"/api/v1/reviews/{world.a.review.pk}/").status_code == 404
    web = client_for_web(lost)
    assert web.get(f"/reviews/{world.a.review.pk}/").status_code == 404
    assert AuditLog.objects.exists()
    assert world.a.loans["active"].reference not in web.get("/reviews/audit/").content.decode()


def test_a_platform_superuser_sees_every_bank():
    world = seed_world()
    root = UserFactory(role="ops_admin", bank=False, is_superuser=True, is_staff=True)
    loans = client_for(root).get("/api/v1/loans/", {"page_size": 100}).json()
    assert loans["count"] == Loan.objects.count()
    for side in (world.a, world.b):
        assert client_for(root).get(f"/api/v1/reviews/{side.review.pk}/").status_code == 200


def test_a_cases_agent_history_holds_only_the_reviewers_banks_business():
    world = seed_world()
    # Side A's agent also borrows from bank B (a line in side B's program).
    line_b = CreditLineFactory(agent=world.a.agent, program=world.b.program)
    elsewhere = disbursed_loan(
        line_b,
        value_date=dt.date.today() - dt.timedelta(days=5),
        due_date=dt.date.today() + dt.timedelta(days=85),
    )
    own = Loan.objects.filter(agent=world.a.agent, program=world.a.program).count()
    for role in STAFF:
        user = world.user_for(role)
        body = client_for(user).get(f"/api/v1/reviews/{world.a.review.pk}/").json()
        assert body["agent_history"]["loans_count"] == own, role
        page = client_for_web(user).get(f"/reviews/{world.a.review.pk}/").content.decode()
        assert world.a.loans["active"].reference in page
        assert elsewhere.reference not in page, role
    root = UserFactory(role="risk_reviewer", bank=False, is_superuser=True)
    body = client_for(root).get(f"/api/v1/reviews/{world.a.review.pk}/").json()
    assert body["agent_history"]["loans_count"] == own + 1


def _bank_file_names(side: Side) -> list[str]:
    """Texts of one side's bank-file rows on the operations page: its unapplied credit, its
    reconciliation run's break and account, its bank file."""
    return [
        side.credit.entry.entry_reference,
        side.credit.entry.debtor_account,
        side.run.account,
        side.run.breaks.get().reference,
        side.bank_file.message_id,
    ]


def test_the_bank_operations_page_shows_only_the_operators_bank():
    world = seed_world()
    web = client_for_web(world.ops)
    body = web.get("/reviews/bank/?status=open").content.decode()
    assert [name for name in _bank_file_names(world.b) if name in body] == []
    assert [name for name in _bank_file_names(world.a) if name not in body] == []
    listed = client_for(world.ops).get("/api/v1/unapplied-credits/").json()
    assert [row["id"] for row in listed["results"]] == [world.a.credit.pk]


@pytest.mark.parametrize("action", ["apply", "refund"])
def test_another_banks_unapplied_credit_is_missing_to_operations(action):
    world = seed_world()
    credit = world.b.credit
    loan = world.b.loans["active"]  # of the credit's own bank: only the operator is wrong
    api = client_for(world.ops)
    web = client_for_web(world.ops)  # signing in stamps the user's last login: before the snapshot
    before = table_snapshot()
    body = {"loan": loan.pk} if action == "apply" else {}
    response = api.post(f"/api/v1/unapplied-credits/{credit.pk}/{action}/", body, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    page = web.post(
        f"/reviews/bank/credits/{credit.pk}/{action}/", {"loan_reference": loan.reference}
    )
    assert page.status_code == 404
    assert snapshot_diff(before, table_snapshot()) == []
    credit.refresh_from_db()
    assert credit.status == "open"
    # The operator's own bank's credit is theirs to work.
    own = api.post(f"/api/v1/unapplied-credits/{world.a.credit.pk}/refund/")
    assert own.status_code == 200, own.content
    assert own.json()["status"] == "refunding"


def test_the_page_names_no_loan_of_another_bank_when_applying():
    world = seed_world()
    web = client_for_web(world.ops)
    before = table_snapshot()
    foreign = world.b.loans["active"].reference
    response = web.post(
        f"/reviews/bank/credits/{world.a.credit.pk}/apply/",
        {"loan_reference": foreign},
        follow=True,
    )
    body = response.content.decode()
    assert f"No loan has the reference {foreign}" in body
    assert snapshot_diff(before, table_snapshot()) == []


def test_operations_read_the_audit_trail_of_their_banks_unapplied_credits_only():
    world = seed_world()
    for side in (world.a, world.b):
        audit_record(
            actor=None,
            action="unapplied_credit.refund_requested",
            obj=side.credit,
            after={"end_to_end_id": f"REFUND-{side.program.bank.code}"},
        )
    own, other = world.a.credit, world.b.credit
    for role in STAFF:
        api = client_for(world.user_for(role))
        rows = api.get(f"/api/v1/unapplied-credits/{own.pk}/audit/")
        assert rows.status_code == 200, (role, rows.content)
        [row] = rows.json()
        assert row["action"] == "unapplied_credit.refund_requested"
        assert row["after"]["end_to_end_id"] == f"REFUND-{world.a.program.bank.code}"
        missing = api.get(f"/api/v1/unapplied-credits/{other.pk}/audit/")
        assert missing.status_code == 404, role
        assert missing.json()["code"] == "not_found"
        # The audit trail page lists the own bank's credit rows, never the other bank's.
        page = client_for_web(world.user_for(role)).get(
            "/reviews/audit/", {"object_type": "integrations.unappliedcredit"}
        )
        body = page.content.decode()
        assert f"REFUND-{world.a.program.bank.code}" in body, role
        assert f"REFUND-{world.b.program.bank.code}" not in body, role
    # A reviewer of bank B reads bank B's trail, and gets 404 on bank A's.
    reviewer_b = UserFactory(role="risk_reviewer", bank=world.b.program.bank)
    api = client_for(reviewer_b)
    assert api.get(f"/api/v1/unapplied-credits/{other.pk}/audit/").status_code == 200
    assert api.get(f"/api/v1/unapplied-credits/{own.pk}/audit/").status_code == 404
    assert (
        client_for(world.a.user).get(f"/api/v1/unapplied-credits/{own.pk}/audit/").status_code
        == 403
    )
