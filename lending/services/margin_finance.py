"""Margin in the life of a financing under a tripartite program.

* At the click: the margin m x A and the security deposit s x principal the order needs are
  read against the agent's free margin with its credit line (``lending.services.finance``) and
  decided by the engine (``agreement_missing``, ``insufficient_margin``). When the decision
  reserves credit, they move free -> committed in the decision's own statement, conditional on
  the free margin it saw, behind the program's reservation (``margin_hotpath``), and the
  order's ``GoodsHold`` is written; the ledger sees the commit at settlement
  (``margin_ledger``). If a withdrawal took
  the margin meanwhile, nothing is written and the request is decided again on the account read
  under its row lock (``tripartite_facts``). ``margin_commit`` writes the same rows through the
  ORM (SQLite).
* A decline, expiry or failed payment frees them again (``margin_uncommit``).
* At settlement (``margin_pay_out``) the margin goes to the core enterprise with the loan, in one
  payment (the disbursement's amount is loan + margin; its entry debits principal receivable and
  margin_committed, and posts the commit's Dr margin_free / Cr margin_committed), and the
  security deposit moves committed -> security, held until the loan is
  repaid in full (``security_release``: security -> free).

Locking. Every path that changes a margin account while it holds other locks holds the agent's
credit line in that program first (the finance click: order -> line, then the program and the
margin account in its statement; settlement, failure, review decline and expiry, repayment: ... -> line -> margin account
and the program in either order). Deposits and withdrawals lock the account alone. So two paths
can never wait on each other's margin account and line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef

from scf import clock

from .. import engine
from ..locks import lines_lock_ids, margin_account_lock, margin_accounts_locked
from ..models import (
    AccountCode,
    Agreement,
    AgreementStatus,
    BreachStatus,
    EntryKind,
    GoodsHold,
    HoldStatus,
    JournalEntry,
    Loan,
    MarginAccount,
    MarginMovement,
    MarginMovementKind,
    MarginSource,
    Program,
    ReleaseBreach,
    TripartiteTerms,
)
from .ledger import Posting, ledger_post
from .margin_hotpath import margin_facts_read
from .margin_ledger import commit_posted

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def _exact(value: Any, places: str) -> Decimal:
    """A NUMERIC read by raw SQL: SQLite returns a float (PostgreSQL a Decimal); its shortest
    repr, at the column's places, is the stored value."""
    if value is None:
        return ZERO
    return Decimal(repr(value) if isinstance(value, float) else value).quantize(Decimal(places))


def share_of(amount: Decimal, ratio: Decimal) -> Decimal:
    """A ratio's share of an amount, rounded *up* to the cent: with a = 1 - m, the principal
    (rounded down) and the margin always add up to the order exactly."""
    return (amount * ratio).quantize(CENT, rounding=ROUND_CEILING)


@dataclass(frozen=True)
class MarginRead:
    """What the finance click's line read says about the program's tripartite terms: whether
    enabled, the ratios, the agent's margin account and its free margin (not locked: the commit
    is conditional on it), the agreement."""

    enabled: bool
    margin_ratio: Decimal
    security_ratio: Decimal
    account_id: int | None
    free: Decimal
    agreement_active: bool
    release_breach_open: bool = False

    @classmethod
    def of(cls, values: tuple[Any, ...]) -> MarginRead:
        terms_id, margin_ratio, security_ratio, account_id, free, agreement, breach = values
        return cls(
            terms_id is not None,
            _exact(margin_ratio, "0.0001"),
            _exact(security_ratio, "0.0001"),
            account_id,
            _exact(free, "0.01"),
            bool(agreement),
            bool(breach),
        )


@dataclass(frozen=True)
class TripartiteFacts:
    account_id: int | None
    free: Decimal
    agreement_active: bool
    order_value: Decimal
    margin: Decimal
    security: Decimal
    release_breach_open: bool = False

    @property
    def required(self) -> Decimal:
        return self.margin + self.security

    @classmethod
    def from_read(
        cls, read: MarginRead, order_amount: Decimal, principal: Decimal
    ) -> TripartiteFacts:
        return cls(
            account_id=read.account_id,
            free=read.free,
            agreement_active=read.agreement_active,
            order_value=order_amount,
            margin=share_of(order_amount, read.margin_ratio),
            security=share_of(principal, read.security_ratio),
            release_breach_open=read.release_breach_open,
        )

    def inputs(self) -> engine.TripartiteInputs:
        return engine.TripartiteInputs(
            agreement_active=self.agreement_active,
            margin_required=self.required,
            margin_free=self.free,
            release_breach_open=self.release_breach_open,
        )


def tripartite_facts(
    *, program: Program, agent_id: int, order_amount: Decimal, principal: Decimal, lock: bool
) -> TripartiteFacts | None:
    """The tripartite side of a decision (None when the program's terms are not enabled). With
    ``lock``, the agent's margin account is locked (the caller holds the line): on PostgreSQL in
    one query (``margin_hotpath``) when the agent has an account."""
    if lock and connection.vendor == "postgresql":
        found = margin_facts_read(program_id=program.pk, agent_id=agent_id)
        if found is not None:
            return TripartiteFacts(
                account_id=found[1].pk,
                free=found[1].free,
                agreement_active=found[2],
                order_value=order_amount,
                margin=share_of(order_amount, found[0].margin_ratio),
                security=share_of(principal, found[0].security_ratio),
                release_breach_open=_breach_open(agent_id),
            )
    terms = TripartiteTerms.objects.filter(program=program, enabled=True).first()
    if terms is None:
        return None
    active = Agreement.objects.filter(
        program_id=program.pk, agent_id=OuterRef("agent_id"), status=AgreementStatus.ACTIVE
    )
    accounts = MarginAccount.objects.filter(program=program, agent_id=agent_id)
    if lock:
        accounts = margin_accounts_locked(accounts)
    account = accounts.annotate(agreement_active=Exists(active)).first()
    agreement_active = bool(getattr(account, "agreement_active", False))
    if account is None:
        agreement_active = Agreement.objects.filter(
            program=program, agent_id=agent_id, status=AgreementStatus.ACTIVE
        ).exists()
    return TripartiteFacts(
        account_id=account.pk if account is not None else None,
        free=account.free if account is not None else ZERO,
        agreement_active=agreement_active,
        order_value=order_amount,
        margin=share_of(order_amount, terms.margin_ratio),
        security=share_of(principal, terms.security_ratio),
        release_breach_open=_breach_open(agent_id),
    )


def _breach_open(agent_id: int) -> bool:
    """Has the agent goods shipped beyond what was released, not resolved yet (the engine's
    ``release_breach_open`` referral)."""
    return ReleaseBreach.objects.filter(agent_id=agent_id, status=BreachStatus.OPEN).exists()


def _movement(
    account_id: int,
    kind: str,
    amount: Decimal,
    loan: Loan,
    value_date: dt.date,
    entry: JournalEntry | None,
) -> None:
    MarginMovement.objects.create(
        account_id=account_id,
        kind=kind,
        amount=amount,
        loan=loan,
        value_date=value_date,
        source=MarginSource.SYSTEM,
        journal_entry=entry,
        created_at=clock.now(),
    )


def _post(
    kind: str, key: str, loan: Loan, date: dt.date, dr: str, cr: str, amount: Decimal
) -> JournalEntry:
    return ledger_post(
        kind=kind,
        idempotency_key=key,
        business_date=date,
        currency=loan.currency,
        postings=[Posting.dr(AccountCode(dr), amount), Posting.cr(AccountCode(cr), amount)],
        loan=loan,
        program=loan.program,
    )


def margin_commit(
    *, loan: Loan, facts: TripartiteFacts, at: dt.datetime | None = None
) -> GoodsHold:
    """A financing that reserves credit: its margin and security move free -> committed, and
    its goods are held. Inside the click's transaction, the account locked by
    ``tripartite_facts``; the CHECK ``free >= 0`` backs the decision's margin rule."""
    program = loan.program
    account_id = facts.account_id
    now = at or clock.now()
    today = clock.business_date(program.time_zone, now)
    if account_id is None:  # nothing required (m = s = 0) and no account yet
        from .margin import margin_account_get_or_create

        account_id = margin_account_get_or_create(program=program, agent=loan.agent).pk
    hold = GoodsHold.objects.create(
        loan=loan,
        program=program,
        agent_id=loan.agent_id,
        margin_account_id=account_id,
        currency=loan.currency,
        order_value=facts.order_value,
        margin=facts.margin,
        security=facts.security,
        created_at=now,
        updated_at=now,
    )
    amount = facts.required
    if amount > 0:
        MarginAccount.objects.filter(pk=account_id).update(
            free=F("free") - amount, committed=F("committed") + amount
        )
        # No entry: the ledger sees the commit at settlement (``margin_ledger``).
        _movement(account_id, MarginMovementKind.COMMIT, amount, loan, today, None)
    return hold


def _lock_lines(loans: Iterable[Loan]) -> None:
    ids = sorted({loan.credit_line_id for loan in loans})
    lines_lock_ids(ids)


def margin_uncommit(loans: Iterable[Loan]) -> None:
    """Declined, expired or failed before payment: their committed margin is free again.

    Call before the credit is released (line, then margin account, then program)."""
    loans = list(loans)
    holds = list(
        GoodsHold.objects.filter(loan__in=loans).select_related("loan__program").order_by("pk")
    )
    if not holds:
        return
    _lock_lines(hold.loan for hold in holds)
    for hold in holds:
        amount = hold.margin + hold.security
        loan = hold.loan
        if (
            amount <= 0
            or MarginMovement.objects.filter(loan=loan, kind=MarginMovementKind.UNCOMMIT).exists()
        ):
            continue
        margin_account_lock(hold.margin_account_id)
        MarginAccount.objects.filter(pk=hold.margin_account_id).update(
            free=F("free") + amount, committed=F("committed") - amount
        )
        today = clock.business_date(loan.program.time_zone)
        entry = None  # a commit the ledger never saw is undone off the ledger too
        if commit_posted(loan):
            entry = _post(
                EntryKind.MARGIN_UNCOMMIT,
                f"margin-uncommit:{loan.pk}",
                loan,
                today,
                AccountCode.MARGIN_COMMITTED,
                AccountCode.MARGIN_FREE,
                amount,
            )
        _movement(hold.margin_account_id, MarginMovementKind.UNCOMMIT, amount, loan, today, entry)
    GoodsHold.objects.filter(pk__in=[h.pk for h in holds]).update(
        status=HoldStatus.RELEASED, updated_at=clock.now()
    )


def hold_of(loan: Loan) -> GoodsHold | None:
    return GoodsHold.objects.filter(loan=loan).first()


def disbursement_amount(loan: Loan, hold: GoodsHold | None) -> Decimal:
    """What the core enterprise is paid: the loan, and the agent's margin with it."""
    return loan.principal + (hold.margin if hold is not None else ZERO)


def margin_pay_out(
    *, loan: Loan, hold: GoodsHold, entry: JournalEntry, value_date: dt.date
) -> None:
    """The disbursement settled (its entry posted): the margin went out with the loan, the
    security deposit is held, the margin's worth of goods may be released at once."""
    _lock_lines([loan])
    account = margin_account_lock(hold.margin_account_id)
    if hold.margin > 0:
        _movement(account.pk, MarginMovementKind.PAY_OUT, hold.margin, loan, value_date, entry)
    if hold.security > 0:
        held = _post(
            EntryKind.SECURITY_HOLD,
            f"security-hold:{loan.pk}",
            loan,
            value_date,
            AccountCode.MARGIN_COMMITTED,
            AccountCode.SECURITY_DEPOSITS,
            hold.security,
        )
        _movement(
            account.pk, MarginMovementKind.SECURITY_HOLD, hold.security, loan, value_date, held
        )
    MarginAccount.objects.filter(pk=account.pk).update(
        committed=F("committed") - hold.margin - hold.security,
        security=F("security") + hold.security,
    )
    GoodsHold.objects.filter(pk=hold.pk).update(
        releasable_value=hold.margin, updated_at=clock.now()
    )


def security_release(loan: Loan) -> None:
    """The loan is repaid in full: its security deposit is the agent's free margin again. The
    caller holds the loan's line. Once per loan (a second call finds it released)."""
    hold = GoodsHold.objects.filter(loan=loan, security__gt=0).first()
    if hold is None:
        return
    if MarginMovement.objects.filter(
        loan=loan,
        kind__in=(MarginMovementKind.SECURITY_RELEASE, MarginMovementKind.SECURITY_APPLY),
    ).exists():
        return
    account = margin_account_lock(hold.margin_account_id)
    today = clock.business_date(loan.program.time_zone)
    entry = _post(
        EntryKind.SECURITY_RELEASE,
        f"security-release:{loan.pk}",
        loan,
        today,
        AccountCode.SECURITY_DEPOSITS,
        AccountCode.MARGIN_FREE,
        hold.security,
    )
    MarginAccount.objects.filter(pk=account.pk).update(
        security=F("security") - hold.security, free=F("free") + hold.security
    )
    _movement(account.pk, MarginMovementKind.SECURITY_RELEASE, hold.security, loan, today, entry)
