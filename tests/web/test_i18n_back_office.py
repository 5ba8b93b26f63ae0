"""The review queue, a case, the audit trail and the back office in Simplified Chinese: the engine's
rule details, the audit trail's actions and the models' names are translated (no known English
left in the text a person reads), and the back office's names read well in English too."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client

from lending.models import CreditLine, Review
from lending.services.finance import loan_finance
from orders.models import User
from tests.orders.factories import UserFactory
from tests.web.conftest import World, login

pytestmark = pytest.mark.django_db

# English the pages showed in Chinese before: the engine's stored rule details, audit action
# codes and their English names, model and app names (singular, plural, in admin titles).
RULE_DETAILS_EN = [
    "is above the auto-approve limit",
    "Grade D is below C",
    "Automatic approval limit",
    "Automatic approval grade",
]
AUDIT_ACTIONS_EN = [
    "review.claim",
    "review.line_freeze",
    "loan.in_review",
    "credit_line.freeze",
    "Case claimed",
    "Loan referred to review",
    "Credit line frozen",
    "Line frozen",
]
MODEL_NAMES_EN = [
    "review case",
    "credit line",
    "audit trail entr",
    "audit log",
    "journal entr",
    "financing program",
    "sales order",
    "core enterprise",
    "Lending",
    "Orders and parties",
    "Integrations",
]
ADMIN_PAGES = [
    "/admin/",
    "/admin/lending/creditline/",
    "/admin/lending/review/",
    "/admin/lending/auditlog/",
    "/admin/lending/journalentry/",
    "/admin/lending/program/",
    "/admin/orders/salesorder/",
]


class _Text(HTMLParser):
    """The text a reader sees: no tags or attributes, no scripts, and not the identifiers shown
    as ``<code>`` (rule and input codes, order numbers)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "code"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    parser = _Text()
    parser.feed(response.content.decode())
    return " ".join(" ".join(parser.parts).split())


def english_left(text: str, strings: list[str]) -> list[str]:
    """Those of ``strings`` (as written, or capitalised) found in ``text``."""
    return [s for s in strings if s in text or s[:1].upper() + s[1:] in text]


def chinese(user: User) -> Client:
    client = login(user)
    client.post("/accounts/language/", {"language": "zh-hans"})
    return client


@pytest.fixture
def case(world: World) -> Review:
    """A case referred by two rules (amount and grade), claimed, its line frozen from the case."""
    CreditLine.objects.filter(pk=world.line.pk).update(risk_grade="D")  # program refers below C
    loan = loan_finance(user=world.agent_user, order_id=world.order("10000.00").pk)
    review = Review.objects.get(loan=loan)
    client = login(world.reviewer)
    client.post(f"/reviews/{review.pk}/claim/", {"note": ""})
    client.post(f"/reviews/{review.pk}/line/freeze/", {"reason": "court order", "confirmed": "yes"})
    return review


@pytest.fixture
def superuser(db: Any) -> User:
    return UserFactory(username="root", role="ops_admin", is_staff=True, is_superuser=True)


def test_queue_case_and_audit_trail_in_chinese_leave_no_known_english(
    world: World, case: Review
) -> None:
    client = chinese(world.reviewer)
    queue = visible_text(client, "/reviews/")
    assert "审核队列" in queue and "截止时间" in queue
    page = visible_text(client, f"/reviews/{case.pk}/")
    assert "超过自动批准上限" in page and "等级 D 低于 C" in page  # the rule details
    assert "在案件中冻结额度" not in page and "额度已冻结" in page  # the note's action
    trail = visible_text(client, "/reviews/audit/")
    assert "案件已认领" in trail and "贷款转人工审核" in trail and "授信额度已冻结" in trail
    assert "审核案件 #" in trail  # the object's type, by its model's name
    for url, text in (("queue", queue), ("case", page), ("audit", trail)):
        assert english_left(text, RULE_DETAILS_EN + AUDIT_ACTIONS_EN + MODEL_NAMES_EN) == [], url


def test_back_office_model_names_in_chinese(superuser: User, case: Review) -> None:
    client = chinese(superuser)
    index = visible_text(client, "/admin/")
    for name in (
        "信贷",
        "授信额度",
        "审核案件",
        "审计记录",
        "会计分录",
        "融资项目",
        "订单与参与方",
    ):
        assert name in index, name
    for url in ADMIN_PAGES:
        assert english_left(visible_text(client, url), MODEL_NAMES_EN) == [], url


def test_back_office_model_names_read_well_in_english(superuser: User, case: Review) -> None:
    index = visible_text(login(superuser), "/admin/")
    for name in (
        "Journal entries",
        "Audit trail",
        "Review cases",
        "Financing programs",
        "Credit lines",
        "Engine decisions",
        "Core enterprises",
        "Orders and parties",
    ):
        assert name in index, name
    assert "Journal entrys" not in index and "Audit logs" not in index
    lines = visible_text(login(superuser), "/admin/lending/creditline/")
    assert "Select credit line to change" in lines
