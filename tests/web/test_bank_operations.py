"""The bank operations page in a real browser: an operations admin finds it from the review
queue, sees an unapplied credit, applies it to a loan by its reference, in English and Chinese."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from integrations import bank as bank_package
from integrations.bank.files.inbound import bank_files_import
from integrations.bank_models import UnappliedCredit
from tests.integrations.bankfiles.rail import BANK_CODE, Rail
from tests.lending.active_loans import active_loan
from tests.web.conftest import World
from tests.web.test_browser import open_page, world  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("allow_orm_beside_playwright"),
]


@pytest.fixture
def credit(
    settings: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    world: World,  # noqa: F811
) -> Any:
    settings.BANK_RAILS = {BANK_CODE: "files"}
    settings.BANK_FILES_OUTBOUND_DIR = str(tmp_path / "outbound")
    settings.BANK_FILES_INBOUND_DIR = str(tmp_path / "inbound")
    monkeypatch.setattr(bank_package, "_adapters", {})
    rail = Rail()
    rail.pay_in("250.00", remittance="for order SO-77 (reference forgotten)")
    bank_files_import()
    loan = active_loan(world.line, principal="4000.00", value_date=rail.today)
    return UnappliedCredit.objects.get(), loan


def test_operations_apply_an_unapplied_credit_from_the_page(
    world: World,  # noqa: F811
    open_page: Any,  # noqa: F811
    credit: Any,
) -> None:
    unapplied, loan = credit
    page = open_page(world.ops)
    page.goto("/reviews/")
    page.click("#bank-operations-link")
    expect(page.locator("h1")).to_have_text("Bank operations")
    row = page.locator(f'tr[data-credit="{unapplied.pk}"]')
    expect(row).to_contain_text("250.00")
    expect(row).to_contain_text("no loan matches the reference")
    row.locator("input[name=loan_reference]").fill(loan.reference)
    row.locator("button", has_text="Apply").click()
    expect(page.locator("body")).to_contain_text(f"Credit applied to loan {loan.reference}.")
    expect(page.locator(f'tr[data-credit="{unapplied.pk}"]')).to_have_count(0)
    unapplied.refresh_from_db()
    assert unapplied.status == "applied"


def test_the_page_speaks_chinese(world: World, open_page: Any, credit: Any) -> None:  # noqa: F811
    page = open_page(world.ops, locale="zh-CN")
    page.goto("/reviews/bank/")
    expect(page.locator("h1")).to_have_text("银行运营")
    expect(page.locator("#unapplied-credits h2")).to_have_text("待处理来账")
