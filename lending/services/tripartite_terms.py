"""Tripartite terms and agents' agreements: set up by operations, caps and ratios maker-checked.

* ``terms_create`` sets up a program's terms once; ``terms_update`` changes the fields that are
  not money controls (enabled, guarantee type, trigger, claim window) directly.
* Caps and ratios (``MAKER_CHECKED``: margin and security ratios, the program cap, the margin
  withdrawal threshold; an agreement's cap) change only through a ``TermsChange``: one person
  proposes, another approves, and the approval applies it in the same transaction. A change is
  refused as stale when the row no longer has the values it was proposed against, and a cap is
  never cut below what is used (the CHECK ``used <= cap`` backs this up).
* Agents' signed agreements are recorded and ended in ``agreements``, under the same locks.

Locking: the terms row, then the agreement, then the change; every action writes its audit row
in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from orders.models import Role, User
from scf import clock
from scf.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from ..locks import (
    agreements_locked,
    program_row_lock,
    terms_change_lock,
    tripartite_terms_lock,
)
from ..models import (
    Agreement,
    AgreementStatus,
    GuaranteeType,
    Program,
    TermsChange,
    TermsChangeStatus,
    TripartiteTerms,
)
from .audit import audit_record
from .program_checks import Checker, _choice, _decimal, _money, _text, _whole
from .program_checks import changes_clean as _clean

ACTING_ROLES = (Role.OPS_ADMIN,)
CHECKER_ROLES = (Role.OPS_ADMIN, Role.RISK_APPROVER)


def _ratio(*, below_one: bool) -> Checker:
    def check(value: Any) -> Decimal:
        number = _decimal(value, 4)
        if number < 0 or number > 1 or (below_one and number == 1):
            raise ValueError("Must be at least 0 and below 1." if below_one else "Must be 0 to 1.")
        return number

    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("Must be true or false.")
    return value


DIRECT: dict[str, Checker] = {
    "enabled": _flag,
    "guarantee_type": _choice(GuaranteeType.values),
    "trigger_dpd": _whole(1, 3650),
    "claim_window_days": _whole(1, 3650),
}
MAKER_CHECKED: dict[str, Checker] = {
    "margin_ratio": _ratio(below_one=True),
    "security_ratio": _ratio(below_one=False),
    "program_cap": _money,
    "margin_withdraw_approval_threshold": _money,
}
AGREEMENT_MAKER_CHECKED: dict[str, Checker] = {"agent_cap": _money}


class TermsExist(Conflict):
    code = "tripartite_terms_exist"


class TermsChangeClosed(Conflict):
    code = "terms_change_closed"


class TermsChangeStale(Conflict):
    code = "terms_change_stale"


class TermsChangeWaiting(Conflict):
    code = "terms_change_waiting"


class MakerCheckerSameUser(Conflict):
    code = "maker_checker_same_user"


class CapBelowUsage(Conflict):
    code = "cap_below_usage"


class AgreementCapChange(Conflict):
    code = "agreement_cap_change"


def _require(user: User, roles: tuple[str, ...] = ACTING_ROLES) -> None:
    if getattr(user, "role", None) not in roles:
        raise PermissionDenied("Only operations change tripartite terms and agreements.")


def _as_json(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: str(value) if isinstance(value, Decimal) else value for name, value in values.items()
    }


def terms_snapshot(terms: TripartiteTerms) -> dict[str, Any]:
    names = [*DIRECT, *MAKER_CHECKED, "program_cap_used", "version"]
    return _as_json({name: getattr(terms, name) for name in names})


def agreement_snapshot(agreement: Agreement) -> dict[str, Any]:
    names = ["version", "signed_on", "agent_cap", "agent_cap_used", "status"]
    values = {name: getattr(agreement, name) for name in names}
    values["signed_on"] = agreement.signed_on.isoformat()
    return _as_json(values)


def _lock_terms(program_id: int) -> TripartiteTerms:
    terms = tripartite_terms_lock(program_id)
    if terms is None:
        raise NotFound("The program has no tripartite terms.")
    return terms


@transaction.atomic
def terms_create(*, actor: User, program: Program, values: dict[str, Any]) -> TripartiteTerms:
    """Set up a program's terms (once). Raises ``ValidationFailed``, ``tripartite_terms_exist``."""
    _require(actor)
    cleaned = _clean(values, {**DIRECT, **MAKER_CHECKED})
    program_row_lock(program.pk)
    if TripartiteTerms.objects.filter(program=program).exists():
        raise TermsExist("The program has tripartite terms already: change them instead.")
    terms = TripartiteTerms.objects.create(program=program, **cleaned)
    audit_record(
        actor=actor, action="tripartite_terms.create", obj=terms, after=terms_snapshot(terms)
    )
    return terms


@transaction.atomic
def terms_update(*, actor: User, program: Program, changes: dict[str, Any]) -> TripartiteTerms:
    """Change the terms' fields that are not caps or ratios (those are proposed for approval)."""
    _require(actor)
    controlled = sorted(set(changes) & set(MAKER_CHECKED))
    if controlled:
        message = "Caps and ratios change through a proposal approved by another person."
        raise ValidationFailed(message, fields={name: [message] for name in controlled})
    cleaned = _clean(changes, DIRECT)
    terms = _lock_terms(program.pk)
    before = terms_snapshot(terms)
    for name, value in cleaned.items():
        setattr(terms, name, value)
    terms.version += 1
    terms.save(update_fields=[*cleaned, "version", "updated_at"])
    audit_record(
        actor=actor,
        action="tripartite_terms.update",
        obj=terms,
        before=before,
        after=terms_snapshot(terms),
    )
    return terms


def _target_values(terms: TripartiteTerms, agreement: Agreement | None, names: list[str]) -> dict:
    row: Any = agreement if agreement is not None else terms
    return _as_json({name: getattr(row, name) for name in names})


@transaction.atomic
def terms_change_propose(
    *,
    actor: User,
    program: Program,
    changes: dict[str, Any],
    agreement: Agreement | None = None,
    reason: str = "",
) -> TermsChange:
    """Propose new caps or ratios for the terms, or a new cap for one agent's agreement.

    Raises ``ValidationFailed`` (unknown field, bad value, no change), ``terms_change_waiting``
    (one proposal at a time per target), ``NotFound`` (no terms).
    """
    _require(actor)
    checks = AGREEMENT_MAKER_CHECKED if agreement is not None else MAKER_CHECKED
    if not changes:
        raise ValidationFailed("Propose at least one change.", fields={"changes": ["Empty."]})
    cleaned = _clean(changes, checks)
    reason = _text(500)(reason) if reason else ""
    terms = _lock_terms(program.pk)
    if agreement is not None:
        agreement = agreements_locked().get(pk=agreement.pk)
        if agreement.program_id != program.pk or agreement.status != AgreementStatus.ACTIVE:
            raise NotFound("No such active agreement under this program.")
    before = _target_values(terms, agreement, list(cleaned))
    if before == _as_json(cleaned):
        raise ValidationFailed("Nothing would change.", fields={"changes": ["Same as now."]})
    try:
        with transaction.atomic():
            change = TermsChange.objects.create(
                program=program,
                agreement=agreement,
                changes=_as_json(cleaned),
                before=before,
                proposed_by=actor,
                proposed_at=clock.now(),
                reason=reason,
            )
    except IntegrityError:
        raise TermsChangeWaiting("A change is already waiting for approval here.") from None
    audit_record(
        actor=actor,
        action="terms_change.propose",
        obj=change,
        before=before,
        after=change.changes,
        note=reason,
    )
    return change


def _lock_change(change_id: int) -> tuple[TermsChange, TripartiteTerms, Agreement | None]:
    found = TermsChange.objects.filter(pk=change_id).values("program_id", "agreement_id").first()
    if found is None:
        raise NotFound("No such terms change.")
    terms = _lock_terms(found["program_id"])
    agreement = None
    if found["agreement_id"] is not None:
        agreement = agreements_locked().get(pk=found["agreement_id"])
    change = terms_change_lock(change_id)
    if change.status != TermsChangeStatus.AWAITING_APPROVAL:
        raise TermsChangeClosed(f"The change is {change.status}.")
    return change, terms, agreement


def _apply(change: TermsChange, terms: TripartiteTerms, agreement: Agreement | None) -> None:
    checks = AGREEMENT_MAKER_CHECKED if agreement is not None else MAKER_CHECKED
    cleaned = _clean(change.changes, checks)
    if agreement is not None and agreement.status != AgreementStatus.ACTIVE:
        raise TermsChangeStale(f"The agreement is {agreement.status} now: propose again.")
    if _target_values(terms, agreement, list(cleaned)) != change.before:
        raise TermsChangeStale("The values changed since this was proposed: propose again.")
    row: Any = agreement if agreement is not None else terms
    used, cap = (
        ("agent_cap_used", "agent_cap") if agreement else ("program_cap_used", "program_cap")
    )
    if cap in cleaned and cleaned[cap] < getattr(row, used):
        raise CapBelowUsage(f"{getattr(row, used):.2f} of the cap is in use already.")
    for name, value in cleaned.items():
        setattr(row, name, value)
    row.save(update_fields=[*cleaned, "updated_at"])
    if agreement is None:
        TripartiteTerms.objects.filter(pk=terms.pk).update(version=terms.version + 1)


def _decide(change: TermsChange, actor: User, status: str, note: str) -> None:
    change.status, change.decided_by, change.decided_at = status, actor, clock.now()
    change.decision_note = note
    change.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])


@transaction.atomic
def terms_change_approve(*, actor: User, change_id: int, note: str = "") -> TermsChange:
    """The checker's approval: applies the change. Raises ``maker_checker_same_user``,
    ``terms_change_closed``, ``terms_change_stale``, ``cap_below_usage``."""
    _require(actor, CHECKER_ROLES)
    change, terms, agreement = _lock_change(change_id)
    if change.proposed_by_id == actor.pk:
        raise MakerCheckerSameUser("The approval must come from another person.")
    _apply(change, terms, agreement)
    _decide(change, actor, TermsChangeStatus.APPROVED, note)
    audit_record(
        actor=actor,
        action="terms_change.approve",
        obj=change,
        before=change.before,
        after=change.changes,
        note=note,
    )
    return change


@transaction.atomic
def terms_change_reject(*, actor: User, change_id: int, reason: str) -> TermsChange:
    """Reject a waiting change: another person's, as approving it would be."""
    _require(actor, CHECKER_ROLES)
    reason = _clean({"reason": reason}, {"reason": _text(500)})["reason"]
    change, _terms, _agreement = _lock_change(change_id)
    if change.proposed_by_id == actor.pk:
        raise MakerCheckerSameUser("The decision must come from another person.")
    _decide(change, actor, TermsChangeStatus.REJECTED, reason)
    audit_record(actor=actor, action="terms_change.reject", obj=change, note=reason)
    return change
