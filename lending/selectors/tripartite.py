"""Reads for the tripartite agreement: terms, agreements, changes, margin accounts and movements.

Who sees what: bank staff their bank's (``scope_for``); an enterprise admin the agreements under its enterprise's
programs; an agent its own agreements and margin. A row the user may not see is ``None`` (the
API answers 404, never 403).
"""

from __future__ import annotations

from django.db.models import QuerySet

from orders.models import Agent, Role, User

from ..models import (
    Agreement,
    MarginAccount,
    MarginMovement,
    MarginWithdrawal,
    Program,
    TermsChange,
    TripartiteTerms,
)
from .programs import program_visible_to
from .scope import scope_for

MOVEMENTS_SHOWN = 100


def terms_for_program(*, user: User, program_id: int) -> TripartiteTerms | None:
    program = program_visible_to(user=user, program_id=program_id)
    if program is None:
        return None
    return TripartiteTerms.objects.filter(program=program).select_related("program").first()


def agreements_visible_to(user: User) -> QuerySet[Agreement]:
    rows = Agreement.objects.select_related("agent", "program")
    if getattr(user, "is_bank_staff", False):
        return scope_for(user, rows, "program__bank")
    role = getattr(user, "role", None)
    if role == Role.ENTERPRISE_ADMIN:
        return rows.filter(program__enterprise_id=user.enterprise_id)
    if role == Role.AGENT and user.agent_id is not None:
        return rows.filter(agent_id=user.agent_id)
    return rows.none()


def agreement_list(*, user: User, program_id: int) -> QuerySet[Agreement] | None:
    """The agreements under a program the user may see (``None`` if the program is hidden)."""
    if program_visible_to(user=user, program_id=program_id) is None:
        return None
    return (
        agreements_visible_to(user).filter(program_id=program_id).order_by("agent_id", "-version")
    )


def agreement_get(*, user: User, agreement_id: int) -> Agreement | None:
    return agreements_visible_to(user).filter(pk=agreement_id).first()


def agreement_active(*, program_id: int, agent_id: int) -> Agreement | None:
    return Agreement.objects.filter(
        program_id=program_id, agent_id=agent_id, status="active"
    ).first()


def terms_change_list(*, user: User) -> QuerySet[TermsChange]:
    if not getattr(user, "is_bank_staff", False):
        return TermsChange.objects.none()
    rows = TermsChange.objects.select_related("program", "agreement", "proposed_by", "decided_by")
    return scope_for(user, rows, "program__bank").order_by("-proposed_at", "-id")


def terms_change_get(*, user: User, change_id: int) -> TermsChange | None:
    return terms_change_list(user=user).filter(pk=change_id).first()


BIGINT_MAX = 2**63 - 1


def program_for_staff(*, user: User, program_id: int) -> Program | None:
    if not getattr(user, "is_bank_staff", False) or not 0 < program_id <= BIGINT_MAX:
        return None
    return scope_for(user, Program.objects.filter(pk=program_id), "bank").first()


def agent_for_staff(*, user: User, agent_id: int) -> Agent | None:
    if not getattr(user, "is_bank_staff", False) or not 0 < agent_id <= BIGINT_MAX:
        return None
    # An agent of the staff's bank: one with a credit line in one of its programs.
    return scope_for(user, Agent.objects.filter(pk=agent_id), "credit_lines__program__bank").first()


def _may_see_agent(user: User, agent_id: int) -> bool:
    if getattr(user, "is_bank_staff", False):
        return True  # narrowed to the staff's bank's programs below
    return getattr(user, "role", None) == Role.AGENT and user.agent_id == agent_id


def margin_accounts_of_agent(*, user: User, agent_id: int) -> QuerySet[MarginAccount] | None:
    """The agent's margin accounts (one per program), or ``None`` if the user may not see them."""
    if not _may_see_agent(user, agent_id):
        return None
    rows = MarginAccount.objects.filter(agent_id=agent_id).select_related("program")
    return scope_for(user, rows, "program__bank")


def margin_account_get(
    *, user: User, agent_id: int, program_id: int | None
) -> MarginAccount | None:
    accounts = margin_accounts_of_agent(user=user, agent_id=agent_id)
    if accounts is None:
        return None
    if program_id is not None:
        accounts = accounts.filter(program_id=program_id)
    return accounts.order_by("program_id").first()


def margin_account_by_id(account_id: int) -> MarginAccount:
    return MarginAccount.objects.select_related("program").get(pk=account_id)


def margin_movements(account: MarginAccount) -> list[MarginMovement]:
    rows = MarginMovement.objects.filter(account=account).order_by("-created_at", "-id")
    return list(rows[:MOVEMENTS_SHOWN])


def margin_account_for_reference(reference: str) -> MarginAccount | None:
    """The margin account a bank credit's remittance information names, if any."""
    cleaned = (reference or "").strip().upper()
    if not cleaned.startswith("MG-"):
        return None
    return MarginAccount.objects.filter(reference=cleaned).select_related("program").first()


def margin_account_for_reference_visible(*, user: User, reference: str) -> MarginAccount | None:
    """The margin account ``reference`` names, if ``user`` may see it (another bank's: None)."""
    account = margin_account_for_reference(reference)
    if account is None:
        return None
    visible = margin_accounts_of_agent(user=user, agent_id=account.agent_id)
    return account if visible is not None and visible.filter(pk=account.pk).exists() else None


def margin_withdrawal_get(*, user: User, withdrawal_id: int) -> MarginWithdrawal | None:
    if not getattr(user, "is_bank_staff", False):
        return None
    rows = MarginWithdrawal.objects.filter(pk=withdrawal_id)
    return scope_for(user, rows, "account__program__bank").first()
