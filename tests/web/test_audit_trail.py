"""The audit trail page and its CSV: names instead of ids, links to the objects, filters by date
(the platform's local days), actor and action, pages, and an export that follows the filters."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from lending.models import AuditLog, Review
from lending.services.audit import audit_record
from lending.services.finance import loan_finance
from tests.web.conftest import World, login

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def refer(world: World) -> Review:
    loan = loan_finance(user=world.agent_user, order_id=world.order("10000.00").pk)
    return Review.objects.get(loan=loan)


@contextmanager
def written_at(when: dt.datetime, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Audit rows written inside are stamped ``when`` (``created_at`` is set on insert, and the
    table refuses updates)."""
    with monkeypatch.context() as patch:
        patch.setattr(timezone, "now", lambda: when)
        yield


def csv_rows(response: Any) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return list(csv.reader(io.StringIO(text)))


def test_the_trail_names_people_and_objects_and_links_them(world: World) -> None:
    world.reviewer.first_name, world.reviewer.last_name = "Li", "Na"
    world.reviewer.save(update_fields=["first_name", "last_name"])
    review = refer(world)
    login(world.reviewer).post(f"/reviews/{review.pk}/claim/", {"note": "mine"})
    body = login(world.ops).get("/reviews/audit/").content.decode()
    claim = body[body.index('data-action="review.claim"') :].split("</tr>", 1)[0]
    assert "<td>Li Na (Risk reviewer)</td>" in claim
    assert ">Case claimed</td>" in claim
    assert (
        f'<a href="/reviews/{review.pk}/" data-object="lending.review:{review.pk}">'
        f"Review case #{review.pk} · {review.loan.reference}</a>"
    ) in claim
    assert "Claimed by: Li Na" in claim and f"Claimed by: {world.reviewer.pk}" not in claim
    referred = body[body.index('data-action="loan.in_review"') :].split("</tr>", 1)[0]
    assert f'<a href="/loans/{review.loan_id}/"' in referred
    assert f"Loan {review.loan.reference} · {world.agent.code}</a>" in referred
    assert "<td>agent.one (Agent)</td>" in referred


def test_a_credit_line_links_to_the_back_office_for_staff_and_to_its_history_otherwise(
    world: World,
) -> None:
    audit_record(actor=world.ops, action="credit_line.update", obj=world.line)
    staff = login(world.ops).get("/reviews/audit/").content.decode()
    assert f'href="/admin/lending/creditline/{world.line.pk}/change/"' in staff
    reviewer = login(world.reviewer).get("/reviews/audit/").content.decode()
    history = f'href="/reviews/audit/?object_type=lending.creditline&amp;object_id={world.line.pk}"'
    assert history in reviewer
    assert f"{world.agent.code} {world.agent.name} · {world.program.code}</a>" in reviewer


def test_dates_filter_by_local_days(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # 23:30 in Shanghai on the 2nd is still the 2nd there (15:30 UTC).
    for action, local in (
        ("test.first", dt.datetime(2026, 3, 1, 12, 0)),
        ("test.late_on_second", dt.datetime(2026, 3, 2, 23, 30)),
        ("test.third", dt.datetime(2026, 3, 3, 0, 30)),
    ):
        with written_at(local.replace(tzinfo=SHANGHAI).astimezone(dt.UTC), monkeypatch):
            audit_record(actor=world.ops, action=action, obj=world.program)
    client = login(world.ops)

    def actions(**query: str) -> list[str]:
        body = client.get("/reviews/audit/", {"action": "test.", **query}).content.decode()
        return [part.split('"', 1)[0] for part in body.split('data-action="')[1:]]

    assert actions() == ["test.third", "test.late_on_second", "test.first"]
    assert actions(date_from="2026-03-02", date_to="2026-03-02") == ["test.late_on_second"]
    assert actions(date_from="2026-03-02") == ["test.third", "test.late_on_second"]
    assert actions(date_to="2026-03-01") == ["test.first"]
    bad = client.get("/reviews/audit/", {"action": "test.", "date_from": "March"}).content.decode()
    assert 'id="date-error"' in bad and bad.count('data-action="test.') == 3


def test_action_and_actor_filters(world: World) -> None:
    world.approver.first_name = "Wang"
    world.approver.save(update_fields=["first_name"])
    audit_record(actor=world.approver, action="credit_line.freeze", obj=world.line)
    audit_record(actor=world.ops, action="credit_line.freeze", obj=world.other_line)
    audit_record(actor=world.approver, action="program.update", obj=world.program)
    client = login(world.ops)
    body = client.get("/reviews/audit/", {"action": "credit_line.freeze"}).content.decode()
    assert body.count("<tr data-action=") == 2
    assert '<option value="credit_line.freeze" selected>Credit line frozen</option>' in body
    by_name = client.get("/reviews/audit/", {"actor": "wang"}).content.decode()
    assert by_name.count("<tr data-action=") == 2
    both = client.get("/reviews/audit/", {"actor": "wang", "action": "program."}).content.decode()
    assert both.count("<tr data-action=") == 1 and 'data-action="program.update"' in both


def test_the_trail_is_paginated(world: World) -> None:
    for _ in range(51):
        audit_record(actor=world.ops, action="program.update", obj=world.program)
    client = login(world.ops)
    first = client.get("/reviews/audit/").content.decode()
    assert first.count("<tr data-action=") == 50 and "Page 1 of 2" in first
    assert "51 entries" in first
    second = client.get("/reviews/audit/", {"page": "2"}).content.decode()
    assert second.count("<tr data-action=") == 1


def test_the_csv_follows_the_filters_in_local_time_with_names(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    review = refer(world)
    login(world.reviewer).post(f"/reviews/{review.pk}/claim/", {"note": "=cmd()"})
    when = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)
    with written_at(when, monkeypatch):
        audit_record(actor=world.ops, action="credit_line.freeze", obj=world.line, note="fraud")
    client = login(world.ops)
    page = client.get("/reviews/audit/", {"action": "review."}).content.decode()
    assert 'href="/reviews/audit.csv?action=review."' in page
    rows = csv_rows(client.get("/reviews/audit.csv", {"action": "review."}))
    assert rows[0] == [
        "When (Asia/Shanghai)",
        "Who",
        "Action",
        "Action code",
        "Object type",
        "Object",
        "Object id",
        "What changed",
        "Note",
    ]
    assert len(rows) == 2
    claim = rows[1]
    assert claim[1:7] == [
        "risk.reviewer (Risk reviewer)",
        "Case claimed",
        "review.claim",
        "Review case",
        f"#{review.pk} · {review.loan.reference}",
        str(review.pk),
    ]
    assert "Claimed by: risk.reviewer" in claim[7]
    assert claim[8] == "'=cmd()"  # a note a spreadsheet would run is quoted
    assert claim[0].endswith("+08:00")
    frozen = csv_rows(client.get("/reviews/audit.csv", {"date_from": "2026-03-02"}))
    assert [row[0] for row in frozen[1:]] != []
    assert ["2026-03-02T23:30:00+08:00", "credit_line.freeze"] in [
        [row[0], row[3]] for row in frozen[1:]
    ]
    dated = csv_rows(
        client.get("/reviews/audit.csv", {"date_from": "2026-03-02", "date_to": "2026-03-02"})
    )
    assert [row[3] for row in dated[1:]] == ["credit_line.freeze"]
    assert AuditLog.objects.filter(action="credit_line.freeze").count() == 1


def test_only_bank_staff_read_the_trail(world: World) -> None:
    for user in (world.agent_user, world.enterprise_admin):
        assert login(user).get("/reviews/audit.csv").status_code == 403
