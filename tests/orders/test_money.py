"""Money parsing and the Money value object: decimals only, two places, one currency."""

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

import pytest

from scf.money import Money, is_iso_currency, parse_amount


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234.50", Decimal("1234.50")),
        ("1", Decimal("1.00")),
        (7, Decimal("7.00")),
        (" 0.01 ", Decimal("0.01")),
        ("9999999999999999.99", Decimal("9999999999999999.99")),
    ],
)
def test_valid_amounts(raw, expected):
    assert parse_amount(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "-1.00",
        "1.001",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e309",
        "abc",
        "",
        1.5,
        True,
        None,
        [],
        "10000000000000000.00",
        "1e16",
    ],
)
def test_invalid_amounts(raw):
    with pytest.raises(ValueError):
        parse_amount(raw)


def test_zero_allowed_only_when_asked():
    assert parse_amount("0", allow_zero=True) == Decimal("0.00")


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(1.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(Decimal(1), "CNY") + Money(Decimal(1), "USD")
    with pytest.raises(TypeError):
        Money(Decimal(1), "CNY").times(0.8, rounding=ROUND_DOWN)  # type: ignore[arg-type]


def test_named_rounding():
    order = Money(Decimal("12345.67"), "CNY")
    assert order.times(Decimal("0.8"), rounding=ROUND_DOWN).amount == Decimal("9876.53")
    assert Money(Decimal("0.125"), "CNY").times(
        Decimal(1), rounding=ROUND_HALF_EVEN
    ).amount == Decimal("0.12")


def test_iso_currencies():
    assert is_iso_currency("CNY") and is_iso_currency("USD")
    assert not any(is_iso_currency(c) for c in ("cny", "XYZ", "RMB", "", None, 156))
