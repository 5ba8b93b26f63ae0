"""Changes to programs and credit lines by bank staff: terms, limits, grades, freezes.

Every function here is one transaction that locks the row it changes (``lending.locks``),
validates the change against the locked figures (``lending.services.program_checks``), saves
only the changed columns (``save(update_fields=...)``) and writes an audit row (who, old values,
new values) in the same transaction. Holding the row lock matters for limits: the finance service reserves credit under
the same lock (the line) or with a conditional UPDATE (the program), so a limit can never be cut
below what is outstanding plus reserved, even while requests are being decided. The CHECK
constraints on both tables stay the last line of defence.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from orders.models import Agent, AgentRelationship, CoreEnterprise, User
from scf.errors import Conflict, ValidationFailed

from ..locks import line_lock, program_row_lock
from ..models import Bank, CreditLine, Program
from .audit import audit_record
from .program_checks import (
    LINE_CHECKS,
    PROGRAM_CHECKS,
    PROGRAM_CREATE_ONLY,
    PROGRAM_REQUIRED,
    changes_clean,
    credit_line_validate,
    principal_range_check,
    program_validate,
)

MAX_REASON = 500


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _as_json(values: dict[str, Any]) -> dict[str, Any]:
    return {field: _jsonable(value) for field, value in values.items()}


def _apply(
    row: Program | CreditLine, cleaned: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the values that differ; return (before, after) of exactly those fields."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field, value in cleaned.items():
        old = getattr(row, field)
        if old == value:
            continue
        before[field], after[field] = _jsonable(old), _jsonable(value)
        setattr(row, field, value)
    return before, after


@transaction.atomic
def program_update(*, actor: User | None, program: Program, **changes: Any) -> Program:
    """Change a program's terms or limit and audit it.

    Locks the program row (``lending.locks``): reservations, which take the same row lock
    through their conditional UPDATE, wait, so the limit check sees final figures. Raises
    ``ValidationFailed`` (422; ``limit_below_utilisation`` for a limit under outstanding plus
    reserved). Returns the locked, updated row; unchanged values write nothing.
    """
    locked = program_row_lock(program.pk)
    cleaned = program_validate(program=locked, changes=changes)
    before, after = _apply(locked, cleaned)
    if not after:
        return locked
    locked.save(update_fields=list(after))
    audit_record(actor=actor, action="program.update", obj=locked, before=before, after=after)
    return locked


@transaction.atomic
def program_create(
    *, actor: User | None, bank: Bank, enterprise: CoreEnterprise, **fields: Any
) -> Program:
    """Create a program with validated terms and audit it (after = every value set).

    Nothing to lock: the unique constraint on ``code`` decides between concurrent creations
    (a savepoint turns the loser's violation into a 409 ``program_code_taken``).
    """
    create_only = {k: fields.pop(k) for k in list(fields) if k in PROGRAM_CREATE_ONLY}
    cleaned = {
        **changes_clean(create_only, PROGRAM_CREATE_ONLY),
        **changes_clean(fields, PROGRAM_CHECKS),
    }
    missing = [f for f in PROGRAM_REQUIRED if f not in cleaned]
    if missing:
        raise ValidationFailed(
            "Some values are missing.", fields={f: ["This field is required."] for f in missing}
        )
    program = Program(bank=bank, enterprise=enterprise, **cleaned)
    principal_range_check(program, {})
    try:
        with transaction.atomic():
            program.save()
    except IntegrityError:
        raise Conflict("A program with this code exists.", code="program_code_taken") from None
    after = {"bank": bank.code, "enterprise": enterprise.code, **_as_json(cleaned)}
    audit_record(actor=actor, action="program.create", obj=program, after=after)
    return program


@transaction.atomic
def credit_line_create(
    *, actor: User | None, agent: Agent, program: Program, limit: Any, risk_grade: str
) -> CreditLine:
    """Open an agent's line in a program and audit it.

    Nothing to lock: the unique constraint on (agent, program) decides between concurrent
    creations (a savepoint turns the loser's violation into a 409 ``credit_line_exists``). The
    agent must buy from the program's enterprise.
    """
    cleaned = changes_clean({"limit": limit, "risk_grade": risk_grade}, LINE_CHECKS)
    if not AgentRelationship.objects.filter(
        agent=agent, enterprise_id=program.enterprise_id
    ).exists():
        message = "The agent does not buy from this program's enterprise."
        raise ValidationFailed(
            message, code="agent_not_with_enterprise", fields={"agent": [message]}
        )
    try:
        with transaction.atomic():
            line = CreditLine.objects.create(agent=agent, program=program, **cleaned)
    except IntegrityError:
        message = "The agent already has a line in this program."
        raise Conflict(message, code="credit_line_exists") from None
    after = {"agent": agent.code, "program": program.code, **_as_json(cleaned)}
    audit_record(actor=actor, action="credit_line.create", obj=line, after=after)
    return line


@transaction.atomic
def credit_line_update(*, actor: User | None, line: CreditLine, **changes: Any) -> CreditLine:
    """Change a line's limit or risk grade and audit it.

    Locks the line row (``lending.locks``), the same lock the finance service holds while
    it decides and reserves, so a cut limit is checked against final figures. Raises
    ``ValidationFailed`` (422; ``limit_below_utilisation``). Freezing has its own functions.
    """
    locked = line_lock(line.pk)
    cleaned = credit_line_validate(line=locked, changes=changes)
    before, after = _apply(locked, cleaned)
    if not after:
        return locked
    locked.save(update_fields=[*after, "updated_at"])
    audit_record(actor=actor, action="credit_line.update", obj=locked, before=before, after=after)
    return locked


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        message = "Give a reason."
        raise ValidationFailed(message, fields={"reason": [message]})
    if len(reason.strip()) > MAX_REASON:
        message = f"At most {MAX_REASON} characters."
        raise ValidationFailed(message, fields={"reason": [message]})
    return reason.strip()


def _set_frozen(actor: User | None, line: CreditLine, frozen: bool, reason: Any) -> CreditLine:
    """Lock the line, check the transition, save and audit (inside the caller's transaction)."""
    text = _reason(reason)
    locked = line_lock(line.pk)
    if locked.frozen == frozen:
        state = "frozen" if frozen else "unfrozen"
        raise Conflict(f"The line is already {state}.", code=f"line_already_{state}")
    before = {"frozen": locked.frozen, "frozen_reason": locked.frozen_reason}
    locked.frozen, locked.frozen_reason = frozen, text if frozen else ""
    locked.save(update_fields=["frozen", "frozen_reason", "updated_at"])
    after = {"frozen": locked.frozen, "frozen_reason": locked.frozen_reason}
    action = "credit_line.freeze" if frozen else "credit_line.unfreeze"
    audit_record(actor=actor, action=action, obj=locked, before=before, after=after, note=text)
    return locked


def credit_line_freeze_validate(*, line: CreditLine, reason: Any) -> str:
    """What ``credit_line_freeze`` would refuse, checked without a lock (to ask for confirmation
    only when the freeze can go ahead). Returns the cleaned reason; the freeze checks again."""
    text = _reason(reason)
    if line.frozen:
        raise Conflict("The line is already frozen.", code="line_already_frozen")
    return text


@transaction.atomic
def credit_line_freeze(*, actor: User | None, line: CreditLine, reason: str) -> CreditLine:
    """Freeze a line: new finance requests on it are declined with ``line_frozen``.

    Locks the line row (``lending.locks``): a request being decided on it finishes first,
    every later one sees the freeze. Raises ``ValidationFailed`` without a reason, ``Conflict``
    ``line_already_frozen``. Loans already approved are not touched.
    """
    return _set_frozen(actor, line, True, reason)


@transaction.atomic
def credit_line_unfreeze(*, actor: User | None, line: CreditLine, reason: str) -> CreditLine:
    """Lift a freeze. Locks the line row; raises ``ValidationFailed`` without a reason,
    ``Conflict`` ``line_already_unfrozen`` when the line is not frozen."""
    return _set_frozen(actor, line, False, reason)
