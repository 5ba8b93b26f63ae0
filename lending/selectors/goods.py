"""Reads of the tripartite agreement's goods and claims: holds, releases, breaches, claims.

Who sees what follows the loans (``Loan.objects.visible_to``): an agent its own, an enterprise
admin its programs', bank staff all; a core enterprise's system (an integration principal, role
``integration``) its enterprise's. A row the caller may not see is ``None`` (a 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Exists, F, OuterRef, Prefetch, QuerySet

from ..models import (
    Agreement,
    AgreementStatus,
    BreachStatus,
    GoodsHold,
    GuaranteeClaim,
    HoldStatus,
    Loan,
    Release,
    ReleaseBreach,
    TripartiteTerms,
)
from .programs import programs_visible_to
from .scope import scope_for

INTEGRATION = "integration"
T = TypeVar("T", ReleaseBreach, GuaranteeClaim)


def loans_visible_to(principal: Any) -> QuerySet[Loan]:
    """Loans a person or an enterprise's system may see."""
    if getattr(principal, "role", None) == INTEGRATION:
        return Loan.objects.filter(program__enterprise_id=principal.enterprise.pk)
    return scope_for(principal, Loan.objects.visible_to(principal), "program__bank")


def loan_for_goods(*, principal: Any, loan_id: int) -> Loan | None:
    """One loan the caller may see, with its hold (``goods_hold`` when it has one)."""
    return (
        loans_visible_to(principal)
        .select_related("program", "order", "goods_hold")
        .filter(pk=loan_id)
        .first()
    )


def goods_hold_get(*, loan: Loan) -> GoodsHold | None:
    return GoodsHold.objects.filter(loan=loan).first()


def release_list(*, loan: Loan) -> QuerySet[Release]:
    """The loan's release requests, newest first (authorised and refused)."""
    return Release.objects.filter(hold__loan=loan).order_by("-created_at", "-id")


def open_breach_exists(*, agent_id: int) -> bool:
    return ReleaseBreach.objects.filter(agent_id=agent_id, status=BreachStatus.OPEN).exists()


def _for_party(rows: QuerySet[T], principal: Any, bank_path: str) -> QuerySet[T]:
    """Rows carrying ``enterprise_id`` and ``agent_id``: bank staff their bank's (``bank_path``
    leads to it), an enterprise admin its enterprise's, an agent its own."""
    if getattr(principal, "is_bank_staff", False):
        return scope_for(principal, rows, bank_path)
    role = getattr(principal, "role", None)
    if role == "enterprise_admin":
        return rows.filter(enterprise_id=principal.enterprise_id)
    if role == "agent":
        return rows.filter(agent_id=principal.agent_id)
    return rows.none()


def breaches_visible_to(principal: Any) -> QuerySet[ReleaseBreach]:
    breaches = ReleaseBreach.objects.select_related("order", "agent", "loan")
    return _for_party(breaches, principal, "loan__program__bank")


def claims_visible_to(principal: Any) -> QuerySet[GuaranteeClaim]:
    """Claims: bank staff their bank's, an enterprise admin those on its enterprise, an agent
    those on its loans."""
    claims = GuaranteeClaim.objects.select_related("loan", "agent", "enterprise", "program")
    return _for_party(claims, principal, "program__bank")


def claim_get(*, principal: Any, claim_id: int) -> GuaranteeClaim | None:
    return claims_visible_to(principal).filter(pk=claim_id).first()


def claim_list(*, principal: Any, status: str | None = None) -> QuerySet[GuaranteeClaim]:
    claims = claims_visible_to(principal)
    if status:
        claims = claims.filter(status=status)
    return claims.order_by("-raised_on", "-id")


def breach_list(*, principal: Any, status: str | None = None) -> QuerySet[ReleaseBreach]:
    breaches = breaches_visible_to(principal)
    if status:
        breaches = breaches.filter(status=status)
    return breaches.order_by("-detected_at", "-id")


def breach_visible(*, principal: Any, breach_id: int) -> bool:
    return breaches_visible_to(principal).filter(pk=breach_id).exists()


# --- the web pages ------------------------------------------------------------------------------


def holds_visible_to(principal: Any) -> QuerySet[GoodsHold]:
    """Goods holds of the loans the person may see, with loan and order, newest first."""
    loans = loans_visible_to(principal)
    return (
        GoodsHold.objects.filter(loan__in=loans)
        .select_related("loan__order", "loan__program", "agent")
        .annotate(available=F("releasable_value") - F("released_value"))
        .order_by("-created_at", "-id")
    )


def release_queue(*, principal: Any) -> QuerySet[GoodsHold]:
    """What the enterprise may ship now: holds with goods paid for and not yet released, and no
    claim raised on their loan."""
    claimed = GuaranteeClaim.objects.filter(loan_id=OuterRef("loan_id"))
    return (
        holds_visible_to(principal)
        .filter(status__in=[HoldStatus.HELD, HoldStatus.PARTLY_RELEASED])
        .filter(releasable_value__gt=F("released_value"))
        .filter(~Exists(claimed))
    )


def guarantee_usage(*, principal: Any) -> list[TripartiteTerms]:
    """The programs' tripartite terms (cap and use) with their agreements (agent cap and use)."""
    terms = TripartiteTerms.objects.filter(program__in=programs_visible_to(principal))
    agreements = Agreement.objects.filter(status=AgreementStatus.ACTIVE).select_related("agent")
    return list(
        terms.select_related("program")
        .prefetch_related(Prefetch("program__agreements", queryset=agreements, to_attr="active"))
        .order_by("program_id")
    )


@dataclass(frozen=True)
class LoanGoods:
    """A loan's goods, releases, breaches and claim, for the review case page."""

    hold: GoodsHold | None
    releases: list[Release]
    breaches: list[ReleaseBreach]
    claim: GuaranteeClaim | None


def loan_goods(*, loan: Loan) -> LoanGoods:
    """What the case page shows of the tripartite agreement. ``loan`` comes with its hold and
    claim (``select_related``); the releases are read for a loan with goods, the agent's
    breaches for a loan with goods or a request the engine referred for one. Nothing is read
    for other loans."""
    hold: GoodsHold | None = getattr(loan, "goods_hold", None)
    decision = getattr(loan, "decision", None)
    referred = decision is not None and any(
        r.get("code") == "release_breach_open" for r in decision.reasons
    )
    breaches: list[ReleaseBreach] = []
    if hold is not None or referred:
        rows = ReleaseBreach.objects.filter(agent_id=loan.agent_id).select_related("order")
        breaches = list(rows.order_by("-detected_at")[:20])
    return LoanGoods(
        hold=hold,
        releases=list(release_list(loan=loan)[:50]) if hold is not None else [],
        breaches=breaches,
        claim=getattr(loan, "guarantee_claim", None),
    )
