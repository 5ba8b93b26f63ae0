"""The audit trail: every decision, review action, line change and money movement writes a row
naming who acted (a user, an integration, or the system), and PostgreSQL keeps it append-only."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, transaction

from lending.models import AuditLog, Loan, LoanStatus, Review
from lending.services.audit import audit_record
from lending.services.cob import cob_run
from lending.services.finance import loan_finance
from lending.services.lines import credit_line_freeze, credit_line_unfreeze, credit_line_update
from lending.services.repayments import repayment_record
from lending.services.reviews import review_approve, review_claim, review_decline
from tests.lending.active_loans import active_loan, money_line
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

V = dt.date(2025, 1, 6)


def rows(obj: Any, action: str) -> list[AuditLog]:
    return list(
        AuditLog.objects.filter(
            object_type=obj._meta.label_lower, object_id=str(obj.pk), action=action
        )
    )


def one_row(obj: Any, action: str, actor: Any) -> AuditLog:
    found = rows(obj, action)
    assert len(found) == 1, (action, [r.action for r in AuditLog.objects.all()])
    row = found[0]
    if isinstance(actor, str):
        assert row.actor_id is None and row.actor_label == actor
    else:
        assert row.actor_id == actor.pk
        assert row.actor_label == f"{actor.role}:{actor.get_username()}"
    return row


@pytest.fixture
def program(enterprise: Any) -> Any:
    # Above 5,000 of principal is referred to review.
    return ProgramFactory(enterprise=enterprise, auto_approve_limit=Decimal("5000.00"))


@pytest.fixture
def line(agent: Any, program: Any) -> Any:
    return CreditLineFactory(agent=agent, program=program)


def request_finance(agent_user: Any, enterprise: Any, amount: str) -> Loan:
    order = OrderFactory(agent=agent_user.agent, enterprise=enterprise, amount=Decimal(amount))
    return loan_finance(user=agent_user, order_id=order.pk)


def test_every_decision_outcome_is_audited_with_the_agent(
    agent_user: Any, enterprise: Any, line: Any, ops_user: Any
) -> None:
    approved = request_finance(agent_user, enterprise, "5000.00")
    referred = request_finance(agent_user, enterprise, "10000.00")
    assert (approved.status, referred.status) == (LoanStatus.DISBURSING, LoanStatus.IN_REVIEW)
    row = one_row(approved, "loan.approved", agent_user)
    assert row.after["principal"] == str(approved.principal)
    one_row(referred, "loan.in_review", agent_user)

    credit_line_freeze(actor=ops_user, line=line, reason="fraud check")
    declined = request_finance(agent_user, enterprise, "1000.00")
    assert declined.status == LoanStatus.DECLINED
    row = one_row(declined, "loan.declined", agent_user)
    assert "line_frozen" in str(row.after["reasons"])


def test_disbursement_is_audited_from_request_to_settlement(
    agent_user: Any, enterprise: Any, line: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        loan = request_finance(agent_user, enterprise, "5000.00")
    loan.refresh_from_db()
    assert loan.status == LoanStatus.ACTIVE
    one_row(loan, "loan.disbursing", agent_user)
    assert len(rows(loan, "loan.disbursed")) == 1


def test_review_actions_are_audited_with_the_reviewer(
    agent_user: Any, enterprise: Any, line: Any
) -> None:
    reviewer = UserFactory(role="risk_reviewer")
    approver = UserFactory(role="risk_approver")
    first = Review.objects.get(loan=request_finance(agent_user, enterprise, "10000.00"))
    second = Review.objects.get(loan=request_finance(agent_user, enterprise, "9000.00"))

    review_claim(user=approver, review_id=first.pk)
    review_approve(user=approver, review_id=first.pk, note="fine")
    review_claim(user=reviewer, review_id=second.pk)
    review_decline(user=reviewer, review_id=second.pk, reason="credit_risk", note="no")

    one_row(first, "review.claim", approver)
    assert one_row(first, "review.approve", approver).note == "fine"
    one_row(first.loan, "loan.approved", approver)  # the loan moved too, by the same person
    one_row(second, "review.claim", reviewer)
    one_row(second, "review.decline", reviewer)
    one_row(second.loan, "loan.declined", reviewer)


def test_credit_line_changes_are_audited_with_before_and_after(line: Any, ops_user: Any) -> None:
    old_limit = line.limit
    credit_line_update(actor=ops_user, line=line, limit=old_limit + Decimal("1000.00"))
    credit_line_freeze(actor=ops_user, line=line, reason="overdue elsewhere")
    credit_line_unfreeze(actor=ops_user, line=line, reason="cleared")

    update = one_row(line, "credit_line.update", ops_user)
    assert Decimal(update.before["limit"]) == old_limit
    assert Decimal(update.after["limit"]) == old_limit + Decimal("1000.00")
    assert one_row(line, "credit_line.freeze", ops_user).after["frozen"] is True
    assert one_row(line, "credit_line.unfreeze", ops_user).after["frozen"] is False


def test_repayments_cob_runs_and_backdated_reversals_are_audited(
    agent: Any, enterprise: Any, ops_user: Any
) -> None:
    line = money_line(agent, enterprise)
    loan = active_loan(line, principal="100000.00", value_date=V)
    for n in (0, 1, 2, 3):
        day = V + dt.timedelta(days=n)
        assert cob_run(program_id=line.program_id, business_date=day, today=day).ran
    runs = AuditLog.objects.filter(action="cob_run", object_type="lending.cobrun")
    assert runs.count() == 4 and {r.actor_label for r in runs} == {"system"}

    on_time = repayment_record(
        loan=loan,
        amount=Decimal("100.00"),
        value_date=V + dt.timedelta(days=4),
        reference="AUD-1",
        source="api",
        actor=ops_user,
        today=V + dt.timedelta(days=4),
    )
    row = one_row(on_time, "repayment_recorded", ops_user)
    assert row.after["amount"] == "100.00" and row.after["backdated"] is False

    # Backdated into closed days: accruals are reversed and replayed, and that is on record.
    backdated = repayment_record(
        loan=loan,
        amount=Decimal("200.00"),
        value_date=V + dt.timedelta(days=1),
        reference="AUD-2",
        source="bank_statement",
        actor="integration:bank-statement",
        today=V + dt.timedelta(days=4),
    )
    row = one_row(backdated, "repayment_recorded", "integration:bank-statement")
    assert row.after["backdated"] is True


@pytest.mark.postgres
def test_audit_rows_cannot_be_updated_or_deleted_on_postgresql(ops_user: Any, line: Any) -> None:
    row = audit_record(actor=ops_user, action="test.append_only", obj=line, note="original")
    with pytest.raises(DatabaseError, match="Cannot update"), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).update(note="rewritten")
    with pytest.raises(DatabaseError, match="Cannot update"), transaction.atomic():
        row.note = "rewritten"
        row.save()
    with pytest.raises(DatabaseError, match="Cannot delete"), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).delete()
    with pytest.raises(DatabaseError, match="Cannot delete"), transaction.atomic():
        AuditLog.objects.get(pk=row.pk).delete()
    assert AuditLog.objects.get(pk=row.pk).note == "original"
