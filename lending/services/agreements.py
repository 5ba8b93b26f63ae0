"""Agents' signed agreements under a program's tripartite terms.

``agreement_sign`` records an agent's signed agreement: the first, or a new version that
supersedes the active one and keeps its cap and cap usage (a different cap is a change to propose,
``tripartite_terms.terms_change_propose``). ``agreement_terminate`` ends it: the program then
declines the agent's requests (``agreement_missing``).

Locking as in ``tripartite_terms``: the terms row, then the agreement; the audit row in the same
transaction.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction

from orders.models import Agent, AgentRelationship, User
from scf import clock
from scf.errors import Conflict, NotFound, ValidationFailed

from ..locks import agreements_locked
from ..models import Agreement, AgreementStatus, Program
from .audit import audit_record
from .program_checks import _text
from .program_checks import changes_clean as _clean
from .tripartite_terms import (
    AGREEMENT_MAKER_CHECKED,
    AgreementCapChange,
    _lock_terms,
    _require,
    agreement_snapshot,
)


def check_agent_in_program(program: Program, agent: Agent) -> None:
    related = AgentRelationship.objects.filter(agent=agent, enterprise_id=program.enterprise_id)
    if not related.exists():
        message = "The agent is not a distributor of the program's core enterprise."
        raise ValidationFailed(message, fields={"agent": [message]})


@transaction.atomic
def agreement_sign(
    *,
    actor: User,
    program: Program,
    agent: Agent,
    signed_on: dt.date,
    agent_cap: Any = None,
    document_reference: str = "",
) -> Agreement:
    """Record an agent's signed agreement (a new version supersedes the active one).

    Raises ``ValidationFailed`` (bad cap or date, agent not the enterprise's), ``NotFound`` (no
    terms), ``agreement_cap_change`` (a new version with another cap: propose it instead).
    """
    _require(actor)
    check_agent_in_program(program, agent)
    if not isinstance(signed_on, dt.date) or signed_on > clock.now().date() + dt.timedelta(days=1):
        message = "The signing date must be a date, not in the future."
        raise ValidationFailed(message, fields={"signed_on": [message]})
    _lock_terms(program.pk)
    current = (
        agreements_locked()
        .filter(program=program, agent=agent, status=AgreementStatus.ACTIVE)
        .first()
    )
    cap = (
        _clean({"agent_cap": agent_cap}, AGREEMENT_MAKER_CHECKED)["agent_cap"]
        if (agent_cap is not None)
        else (current.agent_cap if current else None)
    )
    if cap is None:
        raise ValidationFailed("Give the agent's cap.", fields={"agent_cap": ["Required."]})
    if current is not None and cap != current.agent_cap:
        raise AgreementCapChange("A new cap is a change to propose for approval.")
    latest = Agreement.objects.filter(program=program, agent=agent).order_by("-version").first()
    used = current.agent_cap_used if current else Decimal("0.00")
    if current is not None:
        current.status, current.ended_at = AgreementStatus.SUPERSEDED, clock.now()
        current.save(update_fields=["status", "ended_at", "updated_at"])
    agreement = Agreement.objects.create(
        program=program,
        agent=agent,
        version=(latest.version + 1) if latest else 1,
        signed_on=signed_on,
        document_reference=_text(100)(document_reference) if document_reference else "",
        agent_cap=cap,
        agent_cap_used=used,
        created_by=actor,
    )
    audit_record(
        actor=actor,
        action="agreement.sign",
        obj=agreement,
        before=agreement_snapshot(current) if current else {},
        after=agreement_snapshot(agreement),
    )
    return agreement


@transaction.atomic
def agreement_terminate(*, actor: User, agreement_id: int, reason: str) -> Agreement:
    """End an active agreement: the program declines the agent's requests from now on."""
    _require(actor)
    reason = _clean({"reason": reason}, {"reason": _text(500)})["reason"]
    found = Agreement.objects.filter(pk=agreement_id).values_list("program_id", flat=True).first()
    if found is None:
        raise NotFound("No such agreement.")
    _lock_terms(found)
    agreement = agreements_locked().get(pk=agreement_id)
    if agreement.status != AgreementStatus.ACTIVE:
        raise Conflict(f"The agreement is {agreement.status}.")
    before = agreement_snapshot(agreement)
    agreement.status, agreement.ended_at = AgreementStatus.TERMINATED, clock.now()
    agreement.save(update_fields=["status", "ended_at", "updated_at"])
    audit_record(
        actor=actor,
        action="agreement.terminate",
        obj=agreement,
        before=before,
        after=agreement_snapshot(agreement),
        note=reason,
    )
    return agreement
