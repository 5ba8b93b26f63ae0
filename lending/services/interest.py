"""Interest arithmetic: exact numerators, one rounding. Shared by the accruals and the quote.

The interest on ``base`` at ``annual_rate`` over some nights is ``sum(base x rate) / basis``
(ACT/360: 360, ACT/365F: 365). The sum (the *numerator*) is exact: a base has two places and a
rate six, so every night's term is an exact decimal with eight places, and so is any sum of them.
Only the division by the basis is inexact, and it happens once, when rounding half-even to the
cent (``interest_rounded``), on integers. Rounding the nights first, to any number of places,
and summing them would put a total that lands exactly on a half cent on the wrong side of the
tie (see ``lending.services.accrual`` for how the accruals keep their numerators).
"""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow

from ..models import DayCount

BASIS = {DayCount.ACT_360.value: 360, DayCount.ACT_365F.value: 365}
# A night's numerator is base (2 places) x rate (6 places): exact at 8 places, the scale of the
# numerator columns.
NUMERATOR_PLACES = 8
NUMERATOR_QUANTUM = Decimal(1).scaleb(-NUMERATOR_PLACES)
# Decimal arithmetic that never rounds: an operation whose result would need rounding raises
# ``Inexact`` instead (60 digits hold any numerator the NUMERIC(40, 8) columns can store).
EXACT = Context(prec=60, traps=[Inexact, InvalidOperation, Overflow])


def basis_for(day_count: str) -> int:
    """The day-count basis: 360 for ACT/360, 365 for ACT/365F."""
    return BASIS[DayCount(day_count).value]


def night_numerator(base: Decimal, annual_rate: Decimal) -> Decimal:
    """``base x annual_rate``, exactly: one night's interest times the basis (eight places)."""
    product = EXACT.multiply(base, annual_rate)
    try:
        return EXACT.quantize(product, NUMERATOR_QUANTUM)
    except Inexact:
        raise ValueError(
            f"base {base} and rate {annual_rate} have too many decimal places"
        ) from None


def numerator_add(numerator: Decimal, base: Decimal, annual_rate: Decimal) -> Decimal:
    """A cumulative numerator after one more night on ``base`` at ``annual_rate``, exactly."""
    return EXACT.add(numerator, night_numerator(base, annual_rate))


def numerator_for(principal: Decimal, annual_rate: Decimal, nights: int) -> Decimal:
    """The numerator of ``nights`` nights on an unchanged ``principal``, exactly (not stored, so
    not held to eight places)."""
    return EXACT.multiply(EXACT.multiply(principal, annual_rate), nights)


def interest_rounded(numerator: Decimal, basis: int) -> Decimal:
    """``numerator / basis`` rounded half-even to the cent, exactly: the one rounding of interest.

    The quotient is taken on integers (``numerator x 100`` as an exact fraction over the basis),
    so a total exactly on a half cent is seen as a tie and goes to the even cent.
    """
    top, bottom = EXACT.multiply(numerator, 100).as_integer_ratio()
    bottom *= basis
    cents, remainder = divmod(top, bottom)
    if 2 * remainder > bottom or (2 * remainder == bottom and cents % 2 == 1):
        cents += 1
    return Decimal(cents).scaleb(-2)
