"""The line formula: a credit line's proposed limit from its order volume, grade and policy.

Amounts in the program's currency; the policy is the program's ``CreditPolicy`` or the defaults
(``Policy``)::

    monthly volume = order_amount_90 / 3                 (orders not cancelled, last 90 days)
    need           = monthly volume x advance_rate x tenor_days / 30
    target         = need x multiplier(grade), rounded down to the policy's rounding step
                     multiplier: A 1.00, B 0.85, C 0.70, D 0.50, E 0.25
    step limits    current x (1 - max_step_down) <= limit <= max(current x (1 + max_step_up),
                   min_line), rounded towards the current limit
    caps           min_line <= limit <= min(max_line, the program's limit)
    floor          limit >= outstanding + reserved (a line is never cut below what it uses)
    no change      when |new - current| < max(rounding, current x min_change)
    approval       an increase above ``auto_increase_max`` waits for maker-checker approval

*need* is what steady financing of the agent's orders keeps outstanding: each month's loans,
``advance_rate`` of the month's orders, live ``tenor_days``. Each bound that bites is recorded as
a reason code (``volume_and_grade``, ``step_limit_up``, ``step_limit_down``,
``capped_at_max_line``, ``raised_to_min_line``, ``kept_at_utilisation``, ``within_dead_band``).
Pure Decimal arithmetic, no database (except reading the policy row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from ..models import CreditPolicy, Program

VOLUME_MONTHS = Decimal(3)
MONTH_DAYS = Decimal(30)
GRADE_MULTIPLIER: dict[str, Decimal] = {
    "A": Decimal("1.00"),
    "B": Decimal("0.85"),
    "C": Decimal("0.70"),
    "D": Decimal("0.50"),
    "E": Decimal("0.25"),
}
ZERO = Decimal("0.00")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Policy:
    min_line: Decimal = Decimal("100000.00")
    max_line: Decimal = Decimal("5000000.00")
    max_step_up: Decimal = Decimal("0.50")
    max_step_down: Decimal = Decimal("0.30")
    min_change: Decimal = Decimal("0.05")
    rounding: Decimal = Decimal("10000.00")
    auto_increase_max: Decimal = Decimal("100000.00")

    @classmethod
    def of(cls, program: Program) -> Policy:
        row = CreditPolicy.objects.filter(program=program).first()
        if row is None:
            return cls()
        return cls(
            min_line=row.min_line,
            max_line=row.max_line,
            max_step_up=row.max_step_up,
            max_step_down=row.max_step_down,
            min_change=row.min_change,
            rounding=row.rounding,
            auto_increase_max=row.auto_increase_max,
        )


@dataclass(frozen=True)
class LineFacts:
    """What the formula needs about one line (amounts from the locked row)."""

    current_limit: Decimal
    utilisation: Decimal
    volume_90: Decimal
    grade: str
    advance_rate: Decimal
    tenor_days: int
    program_limit: Decimal


@dataclass
class Target:
    """The formula's result: the new limit, whether it changes, why, and each step's figure."""

    proposed: Decimal
    change: Decimal
    needs_approval: bool
    reasons: list[dict[str, str]] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return self.change != 0


# --- the formula --------------------------------------------------------------------------------


def _round_to(value: Decimal, step: Decimal, towards: Decimal) -> Decimal:
    """Round to a multiple of ``step``, towards ``towards`` (so a step limit is never overshot)."""
    rounding = ROUND_FLOOR if value >= towards else ROUND_CEILING
    return ((value / step).to_integral_value(rounding=rounding) * step).quantize(CENT)


def _volume_target(facts: LineFacts, policy: Policy) -> tuple[Decimal, dict[str, str]]:
    monthly = facts.volume_90 / VOLUME_MONTHS
    need = monthly * facts.advance_rate * Decimal(facts.tenor_days) / MONTH_DAYS
    multiplier = GRADE_MULTIPLIER[facts.grade]
    raw = need * multiplier
    target = (raw / policy.rounding).to_integral_value(rounding=ROUND_FLOOR) * policy.rounding
    inputs = {
        "volume_90": f"{facts.volume_90:.2f}",
        "monthly_volume": f"{monthly:.2f}",
        "advance_rate": str(facts.advance_rate),
        "tenor_days": str(facts.tenor_days),
        "need": f"{need:.2f}",
        "grade": facts.grade,
        "multiplier": str(multiplier),
        "target": f"{target:.2f}",
    }
    return target.quantize(CENT), inputs


def _bounded(
    value: Decimal, facts: LineFacts, policy: Policy, reasons: list[dict[str, str]]
) -> Decimal:
    """Step limits, then caps; each bound that bites is a reason."""
    current = facts.current_limit
    up = max(current * (1 + policy.max_step_up), policy.min_line)
    down = current * (1 - policy.max_step_down)
    if value > up:
        value = _round_to(up, policy.rounding, current)
        reasons.append(
            {"code": "step_limit_up", "detail": f"At most +{policy.max_step_up:.0%} a night."}
        )
    elif value < down:
        value = _round_to(down, policy.rounding, current)
        reasons.append(
            {"code": "step_limit_down", "detail": f"At most -{policy.max_step_down:.0%} a night."}
        )
    ceiling = min(policy.max_line, facts.program_limit)
    if value > ceiling:
        value = ceiling
        reasons.append(
            {"code": "capped_at_max_line", "detail": f"The program caps lines at {ceiling:.2f}."}
        )
    elif value < policy.min_line <= ceiling:
        value = policy.min_line
        reasons.append(
            {"code": "raised_to_min_line", "detail": f"Lines start at {policy.min_line:.2f}."}
        )
    return value


def line_target(facts: LineFacts, policy: Policy) -> Target:
    """The documented formula (module docstring) for one line."""
    target, inputs = _volume_target(facts, policy)
    reasons = [
        {
            "code": "volume_and_grade",
            "detail": f"90-day orders {facts.volume_90:.2f} at grade {facts.grade} give {target:.2f}.",
        }
    ]
    value = _bounded(target, facts, policy, reasons)
    if value < facts.utilisation:
        value = facts.utilisation
        reasons.append(
            {"code": "kept_at_utilisation", "detail": f"{value:.2f} is in use on the line."}
        )
    change = value - facts.current_limit
    dead_band = max(policy.rounding, facts.current_limit * policy.min_change)
    if abs(change) < dead_band:
        value, change = facts.current_limit, ZERO
        reasons.append(
            {"code": "within_dead_band", "detail": f"Changes under {dead_band:.2f} are not made."}
        )
    inputs.update(
        current_limit=f"{facts.current_limit:.2f}",
        utilisation=f"{facts.utilisation:.2f}",
        proposed=f"{value:.2f}",
    )
    return Target(value, change, change > policy.auto_increase_max, reasons, inputs)


def volume_line(
    *,
    volume_90: Decimal,
    grade: str,
    advance_rate: Decimal,
    tenor_days: int,
    program_limit: Decimal,
    policy: Policy,
) -> Decimal:
    """Where the formula takes a line at ``grade`` (before step limits, within the caps)."""
    facts = LineFacts(ZERO, ZERO, volume_90, grade, advance_rate, tenor_days, program_limit)
    target, _ = _volume_target(facts, policy)
    return min(max(target, policy.min_line), min(policy.max_line, program_limit))


def line_per_monthly_volume(
    *, amount: Decimal, grade: str, advance_rate: Decimal, tenor_days: int
) -> Decimal:
    """How much line ``amount`` more of monthly orders gives at ``grade`` (before rounding)."""
    need = amount * advance_rate * Decimal(tenor_days) / MONTH_DAYS
    return (need * GRADE_MULTIPLIER[grade]).quantize(CENT)
