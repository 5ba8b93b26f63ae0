"""Quotes for a page of orders: the engine in quote mode on every row, in three queries.

``loan_quote`` answers for one order (the quote API and the portal's dialog). A list of orders
asks the same question of each row, so that "Finance this order" is offered only where the click
would not be refused, and a refusal says why. ``loan_quotes`` builds the same ``DecisionInputs``
for a whole page and runs the same ``engine.decide``; only the reads differ, batched:

1. the programs of the orders' enterprises (``pick_program`` chooses, as for one order);
2. the agents' credit lines in them, each with "is the agent's relationship with the enterprise
   active" and "has the agent an open release breach";
3. the loans that hold one of the orders, together with the agents' loans past due (the worst
   days past due per agent, and which loans to repay).

A test compares ``loan_quotes`` with ``loan_quote`` order by order over every kind of refusal.
Nothing is locked or written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from orders.models import AgentRelationship, SalesOrder
from scf import clock
from scf.errors import ApplicationError

from .. import engine
from ..models import HOLDS_ORDER, OPEN, BreachStatus, CreditLine, Loan, Program, ReleaseBreach
from ..selectors.loans import loans_past_due
from .finance import NO_CREDIT_LINE, Facts, NotConfigured, decision_inputs, pick_program
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
    for program in Program.objects.filter(
        enterprise_id__in={order.enterprise_id for order in orders}
    ).order_by("id"):
        programs[program.enterprise_id].append(program)
    lines = _lines(agent_ids, [p.pk for ps in programs.values() for p in ps])
    financed_by, past_due = _loans([order.pk for order in orders], agent_ids)
    quotes = {}
    for order in orders:
        found = financed_by.get(order.pk)
        try:
            program = pick_program(programs.get(order.enterprise_id, []), order)
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
            open_release_breach=bool(line.open_release_breach),  # type: ignore[attr-defined]
        )
        terms = terms_for(program, order.amount, clock.business_date(program.time_zone))
        decision = engine.decide(decision_inputs(order, program, line, terms.principal, facts))
        quotes[order.pk] = OrderQuote(
            order, program, terms, decision, financed_by=found, past_due=tuple(agent_loans)
        )
    return quotes


def _lines(agent_ids: set[int], program_ids: list[int]) -> dict[tuple[int, int], CreditLine]:
    """The agents' lines in those programs, each knowing whether the agent's relationship with
    the program's enterprise is active (the program is the order's enterprise's) and whether
    the agent has an open release breach."""
    related = AgentRelationship.objects.filter(
        agent_id=OuterRef("agent_id"), enterprise_id=OuterRef("program__enterprise_id"), active=True
    )
    breached = ReleaseBreach.objects.filter(agent_id=OuterRef("agent_id"), status=BreachStatus.OPEN)
    found = CreditLine.objects.filter(agent_id__in=agent_ids, program_id__in=program_ids).annotate(
        relationship_active=Exists(related), open_release_breach=Exists(breached)
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
