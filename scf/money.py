"""Money: ``Decimal`` amounts in one currency, two decimal places, never a float.

Rounding is always explicit and named at the call site: ``ROUND_DOWN`` for principal,
``ROUND_HALF_EVEN`` for interest.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache

import pycountry

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999999999.99")  # NUMERIC(18, 2)
MONEY_DIGITS = 18
MONEY_PLACES = 2

__all__ = [
    "CENT",
    "MAX_AMOUNT",
    "ROUND_DOWN",
    "ROUND_HALF_EVEN",
    "Money",
    "is_iso_currency",
    "parse_amount",
]


@cache
def _iso_currencies() -> frozenset[str]:
    return frozenset(currency.alpha_3 for currency in pycountry.currencies)


def is_iso_currency(code: object) -> bool:
    """True for an ISO 4217 alphabetic code (``"CNY"``), false for anything else."""
    return isinstance(code, str) and code in _iso_currencies()


def parse_amount(value: object, *, allow_zero: bool = False) -> Decimal:
    """Parse a money amount sent as a decimal string (or int) and check it.

    Raises ``ValueError`` with a human message for floats, non-numbers, NaN/Infinity, more than two
    decimal places, a sign not allowed, or a value that does not fit ``NUMERIC(18, 2)``.
    """
    if isinstance(value, bool | float):
        raise ValueError('Send amounts as decimal strings, e.g. "1234.50", not as JSON numbers.')
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError("Not a valid decimal amount.") from None
    elif isinstance(value, Decimal):
        amount = value
    else:
        raise ValueError('Send amounts as decimal strings, e.g. "1234.50".')
    if not amount.is_finite():
        raise ValueError("Amount must be a finite number.")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_PLACES:
        raise ValueError("Amount must have at most two decimal places.")
    if amount > MAX_AMOUNT:
        raise ValueError("Amount is too large.")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ValueError("Amount must be greater than zero.")
    return amount.quantize(CENT)


@dataclass(frozen=True, slots=True)
class Money:
    """An immutable amount in one currency. Refuses floats and mixed currencies."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money amount must be Decimal, not {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise ValueError("Money amount must be finite")

    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError("Money can only be combined with Money")
        if other.currency != self.currency:
            raise ValueError(f"Currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount - other.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.amount <= other.amount

    def times(self, factor: Decimal, *, rounding: str) -> Money:
        """Multiply by a Decimal factor and round to the cent with the named rounding mode."""
        if not isinstance(factor, Decimal):
            raise TypeError("Money can only be multiplied by a Decimal")
        return Money((self.amount * factor).quantize(CENT, rounding=rounding), self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal("0.00"), currency)

    def __str__(self) -> str:
        return f"{self.amount:.2f} {self.currency}"
