"""Quotes for a page of orders: the engine in quote mode on every row, in three queries.

Under programs with tripartite terms enabled, three more queries read the agents' margin,
agreements and open release breaches, so a page refuses (or refers) what the click would
(``agreement_missing``, ``insufficient_margin``, ``release_breach_open``).

``loan_quote`` answers for one order (the quote API and the portal's dialog). A list of orders
asks the same question of each row, so that "Finance this order" is offered only where the click
would not be refused, and a refusal says why. ``loan_quotes`` builds the same ``DecisionInputs``
for a whole page and runs the same ``engine.decide``; only the reads differ, batched:

1. the programs of the orders' enterprises (the first active one in the order's currency the
   agent has a line in, else ``pick_program``'s: as ``program_for_order`` for one order);
2. the agents' credit lines in them, each with "is the agent's relationship with the enterprise
   active";
3. the loans that hold one of the orders, together with the agents' loans past due (the worst
   days past due per agent, and which loans to repay).

A test compares ``loan_quotes`` with ``loan_quote`` order by order over every kind of refusal.
Nothing is locked or written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, OuterRef

from orders.models import AgentRelationship, SalesOrder
from scf import clock
from scf.errors import ApplicationError

from .. import engine
from ..models import (
    HOLDS_ORDER,
    OPEN,
    Agreement,
    AgreementStatus,
    BreachStatus,
    CreditLine,
    Loan,
    MarginAccount,
    Program,
    ProgramStatus,
    ReleaseBreach,
    TripartiteTerms,
)
from ..selectors.loans import loans_past_due
from .finance import NO_CREDIT_LINE, NotConfigured, decision_inputs, pick_program
from .finance_hotpath import Facts
from .margin_finance import MarginRead, TripartiteFacts
from .terms import Terms, terms_for


@dataclass(frozen=True)
class LoanRef:
    """A loan a page links to: the one holding an order, or one to repay first."""

    id: int
    reference: str
    status: str
    days_past_due: int

    @classmethod
    def of(cls, loan: Loan) -> LoanRef:
        return cls(loan.pk, loan.reference, loan.status, loan.days_past_due)


@dataclass(frozen=True)
class OrderQuote:
    """What financing one order would give now: the engine's decision on current figures, or
    the reason no program or line can decide it (``error_code``: ``no_program`` or
    ``no_credit_line``)."""

    order: SalesOrder
    program: Program | None = None
    terms: Terms | None = None
    decision: engine.DecisionResult | None = None
    error_code: str = ""
    error: str = ""
    financed_by: LoanRef | None = None  # the loan holding the order
    past_due: tuple[LoanRef, ...] = ()  # the agent's loans past due, worst first

    @property
    def outcome(self) -> str:
        """``approved``, ``in_review``, ``declined``; ``unavailable`` with no program or line."""
        return self.decision.outcome if self.decision is not None else "unavailable"

    @property
    def to_repay(self) -> tuple[LoanRef, ...]:
        """The loans past the program's tolerance: repaying them lifts ``agent_overdue``."""
        if self.program is None:
            return ()
        return tuple(r for r in self.past_due if r.days_past_due > self.program.max_dpd_tolerated)


def loan_quotes(*, orders: Sequence[SalesOrder]) -> dict[int, OrderQuote]:
    """The quote of every order (loaded with its agent), by order id; three queries in all."""
    if not orders:
        return {}
    agent_ids = {order.agent_id for order in orders}
    programs: dict[int, list[Program]] = defaultdict(list)
    for program in (
        Program.objects.filter(enterprise_id__in={order.enterprise_id for order in orders})
        .select_related("tripartite")
        .order_by("id")
    ):
        programs[program.enterprise_id].append(program)
    margins = _margins(agent_ids, [p for ps in programs.values() for p in ps])
    lines = _lines(agent_ids, [p.pk for ps in programs.values() for p in ps])
    financed_by, past_due = _loans([order.pk for order in orders], agent_ids)
    quotes = {}
    for order in orders:
        found = financed_by.get(order.pk)
        try:
            program = _first_offer(programs.get(order.enterprise_id, []), order, lines)
        except ApplicationError as exc:
            quotes[order.pk] = OrderQuote(
                order, error_code=exc.code, error=exc.detail, financed_by=found
            )
            continue
        line = lines.get((order.agent_id, program.pk))
        if line is None:
            error = NotConfigured(NO_CREDIT_LINE, code="no_credit_line")
            quotes[order.pk] = OrderQuote(
                order, program, error_code=error.code, error=error.detail, financed_by=found
            )
            continue
        agent_loans = past_due.get(order.agent_id, ())
        facts = Facts(
            already_financed=found is not None,
            relationship_active=bool(line.relationship_active),  # type: ignore[attr-defined]
            agent_max_dpd=max((r.days_past_due for r in agent_loans), default=0),
            loan_id=None,
        )
        terms = terms_for(program, order.amount, clock.business_date(program.time_zone))
        read = margins.get((order.agent_id, program.pk))
        tri = TripartiteFacts.from_read(read, order.amount, terms.principal) if read else None
        inputs = decision_inputs(order, program, line, terms.principal, facts, tripartite=tri)
        decision = engine.decide(inputs)
        quotes[order.pk] = OrderQuote(
            order, program, terms, decision, financed_by=found, past_due=tuple(agent_loans)
        )
    return quotes


def _terms_of(program: Program) -> TripartiteTerms | None:
    try:
        terms = program.tripartite
    except TripartiteTerms.DoesNotExist:
        return None
    return terms if terms.enabled else None


def _margins(agent_ids: set[int], programs: list[Program]) -> dict[tuple[int, int], MarginRead]:
    """Under the programs with tripartite terms enabled, each agent's free margin, whether its
    agreement is active and whether it has an open release breach (three more queries, only
    when there are such programs)."""
    enabled = {p.pk: t for p in programs if (t := _terms_of(p)) is not None}
    if not enabled:
        return {}
    free = {
        (agent, program): (account, amount)
        for account, agent, program, amount in MarginAccount.objects.filter(
            agent_id__in=agent_ids, program_id__in=list(enabled)
        ).values_list("pk", "agent_id", "program_id", "free")
    }
    signed = set(
        Agreement.objects.filter(
            agent_id__in=agent_ids, program_id__in=list(enabled), status=AgreementStatus.ACTIVE
        ).values_list("agent_id", "program_id")
    )
    breached = set(
        ReleaseBreach.objects.filter(agent_id__in=agent_ids, status=BreachStatus.OPEN)
        .values_list("agent_id", flat=True)
        .distinct()
    )
    return {
        (agent, program): MarginRead(
            True,
            terms.margin_ratio,
            terms.security_ratio,
            free.get((agent, program), (None, None))[0],
            free.get((agent, program), (None, Decimal("0.00")))[1],
            (agent, program) in signed,
            agent in breached,
        )
        for agent in agent_ids
        for program, terms in enabled.items()
    }


def _first_offer(
    programs: list[Program], order: SalesOrder, lines: dict[tuple[int, int], CreditLine]
) -> Program:
    """The program of the order's first offer (``program_for_order``'s choice, from the page's
    rows): the first active one in its currency the agent has a line in."""
    for program in programs:
        offered = program.currency == order.currency and program.status == ProgramStatus.ACTIVE
        if offered and (order.agent_id, program.pk) in lines:
            return program
    return pick_program(programs, order)


def _lines(agent_ids: set[int], program_ids: list[int]) -> dict[tuple[int, int], CreditLine]:
    """The agents' lines in those programs, each knowing whether the agent's relationship with
    the program's enterprise is active (the program is the order's enterprise's)."""
    related = AgentRelationship.objects.filter(
        agent_id=OuterRef("agent_id"), enterprise_id=OuterRef("program__enterprise_id"), active=True
    )
    found = CreditLine.objects.filter(agent_id__in=agent_ids, program_id__in=program_ids).annotate(
        relationship_active=Exists(related)
    )
    return {(line.agent_id, line.program_id): line for line in found}


def _loans(
    order_ids: list[int], agent_ids: set[int]
) -> tuple[dict[int, LoanRef], dict[int, list[LoanRef]]]:
    """In one query: the loan holding each order (``HOLDS_ORDER``: at most one, a unique index
    says so), and each agent's open loans past due (``OPEN``, as the decision's worst days past
    due counts them), worst first. A loan that is both comes once (``UNION``)."""
    fields = ("id", "reference", "status", "days_past_due", "order_id", "agent_id")
    holding = Loan.objects.filter(order_id__in=order_ids, status__in=HOLDS_ORDER)
    late = loans_past_due(agent_ids=agent_ids)
    rows = holding.order_by().values_list(*fields).union(late.order_by().values_list(*fields))
    orders = set(order_ids)
    financed_by: dict[int, LoanRef] = {}
    past_due: dict[int, list[LoanRef]] = defaultdict(list)
    for id_, reference, status, dpd, order_id, agent_id in rows:
        ref = LoanRef(id_, reference, status, dpd)
        if order_id in orders and status in HOLDS_ORDER:
            financed_by[order_id] = ref
        if status in OPEN and dpd > 0:
            past_due[agent_id].append(ref)
    for refs in past_due.values():
        refs.sort(key=lambda r: (-r.days_past_due, r.id))
    return financed_by, past_due
