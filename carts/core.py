"""The cart's pure core: lines merged by product and variant, totals, money in the shop's currency.

Pure: no I/O. The repository loads held stock into `CartLineInfo`s; this adds them up (`A+1` twice is
one line of 2, as django-oscar's basket merges by line reference) and prices them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

_CURRENCY_SIGNS = {"HKD": "HK$", "TWD": "NT$", "USD": "US$", "SGD": "S$", "MOP": "MOP$", "CNY": "¥", "JPY": "¥"}
_NO_DECIMALS = {"TWD", "JPY"}
NO_DECIMAL_CURRENCIES = frozenset(_NO_DECIMALS)  # written and charged in whole units


@dataclass(frozen=True, slots=True)
class CartLineInfo:
    product_id: int
    code: str
    name: str
    variant: tuple[tuple[str, str], ...]  # (option, value) pairs in a stable order; () for none
    qty: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.qty

    @property
    def variant_text(self) -> str:
        return " / ".join(value for _, value in self.variant)


@dataclass(frozen=True, slots=True)
class CartInfo:
    lines: tuple[CartLineInfo, ...]
    currency: str

    @property
    def subtotal(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))

    @property
    def units(self) -> int:
        return sum(line.qty for line in self.lines)

    @property
    def is_empty(self) -> bool:
        return not self.lines


def variant_pairs(variant: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(variant.items())) if variant else ()


def merge_lines(lines: Iterable[CartLineInfo]) -> tuple[CartLineInfo, ...]:
    """The same product and variant add up to one line, in the order first seen."""
    merged: dict[tuple[int, tuple[tuple[str, str], ...]], CartLineInfo] = {}
    for line in lines:
        key = (line.product_id, line.variant)
        seen = merged.get(key)
        merged[key] = (
            line
            if seen is None
            else CartLineInfo(seen.product_id, seen.code, seen.name, seen.variant, seen.qty + line.qty, seen.unit_price)
        )
    return tuple(merged.values())


def format_money(amount: Decimal, currency: str) -> str:
    """`HK$1,280`, `HK$450.50`, `NT$390`: the way shops in the region write prices."""
    sign = _CURRENCY_SIGNS.get(currency, f"{currency} ")
    if currency in _NO_DECIMALS or amount == amount.to_integral_value():
        return f"{sign}{amount.quantize(Decimal(1), rounding=ROUND_HALF_UP):,}"
    return f"{sign}{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
