"""``--tripartite``: the same in-process phases again under a program with tripartite terms.

A second program of the run's enterprise kind gets terms (margin ratio 1 - advance rate, so the
agent lodges its own share of each order); each agent of its cohorts signs an agreement and
lodges far more margin than its clicks need, through the deposit service (ledger included), so
every click commits margin and none is declined for lack of it. The phases run after the plain
ones, on the same machine in the same run, and are reported beside them.
"""

from __future__ import annotations

from decimal import Decimal

from bench.finance.clicks import ADVANCE_RATE, Cohort, Setup

DEPOSIT = Decimal("50000000.00")


def tripartite_terms(setup: Setup) -> None:
    from lending.models import TripartiteTerms

    TripartiteTerms.objects.create(
        program_id=setup.program_id,
        enabled=True,
        margin_ratio=Decimal(1) - ADVANCE_RATE,
        program_cap=Decimal("1000000000.00"),
    )


def tripartite_agents(setup: Setup, cohort: Cohort) -> None:
    """An agreement and a large margin deposit for each agent of ``cohort``."""
    from lending.models import Agreement, Program
    from lending.services.margin import margin_account_get_or_create, margin_deposit
    from orders.models import Agent
    from scf import clock

    program = Program.objects.get(pk=setup.program_id)
    today = clock.business_date(program.time_zone)
    Agreement.objects.bulk_create(
        Agreement(program=program, agent_id=a, signed_on=today, agent_cap=Decimal("1.00"))
        for a in cohort.agent_ids
    )
    for agent in Agent.objects.filter(pk__in=cohort.agent_ids):
        account = margin_account_get_or_create(program=program, agent=agent)
        margin_deposit(
            account=account,
            amount=DEPOSIT,
            value_date=today,
            reference=f"BENCH-{setup.tag}-{agent.pk}",
            actor="bench",
        )
