"""The price of a ChargeItemDefinition's applicable property groups (docs/prices.md, "Formula").

Decimal arithmetic throughout (never float); every money figure is rounded half up to the
currency's minor unit (ISO 4217: 2 decimals for INR, USD, EUR and most others; the few
currencies with 0 or 3 are listed in MINOR_UNITS).

Given the applicable groups in their order (priceComponent.type: base | surcharge | discount |
tax | informational):

    base      = the amount of the first base component of the applicable groups (a base needs an
                amount; later base components are not used: groups are ordered, most specific first)
    surcharge = amount, or factor x base                        (each rounded)
    discount  = amount, or factor x base                        (each rounded)
    subtotal  = max(0, base + sum(surcharges) - sum(discounts))
    tax       = amount, or factor x subtotal                    (each rounded)
    total     = subtotal + sum(taxes)

A component with both an amount and a factor uses its amount (R4: the amount is what was
calculated, the factor how). Signs come from the type: amounts and factors are never negative.
informational components are listed and never counted. No base: no price (None).

Every amount of the applicable groups is in one currency; an amount without a currency is in
DEFAULT_CURRENCY (INR). Anything malformed is a 400 naming the component.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import NamedTuple

from ..errors import BadRequest

DEFAULT_CURRENCY = "INR"
TYPES = ("base", "surcharge", "discount", "tax", "informational")
# ISO 4217 currencies whose minor unit is not 2 decimals (all others: 2)
MINOR_UNITS = {"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
               "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
               "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_DIGITS = 18          # a price beyond 10^18 is a mistake, not a price


@dataclass(frozen=True)
class Line:
    """One price component as counted: its amount (rounded, never negative; the type gives the sign)."""
    type: str
    group: int                  # index of its propertyGroup
    amount: Decimal | None      # None: an informational component without an amount
    factor: Decimal | None
    code: dict | None


@dataclass(frozen=True)
class Price:
    currency: str
    lines: tuple[Line, ...]
    base: Decimal
    surcharges: Decimal
    discounts: Decimal
    subtotal: Decimal
    tax: Decimal
    total: Decimal

    def times(self, quantity: Decimal) -> Decimal:
        """The total for `quantity` units, rounded."""
        return rounded(self.total * quantity, self.currency)


class _Part(NamedTuple):
    type: str
    group: int
    index: int
    amount: Decimal | None
    factor: Decimal | None
    code: dict | None
    currency: str | None


def rounded(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2)), rounding=ROUND_HALF_UP)


def price(groups: list[tuple[int, dict]]) -> Price | None:
    """The price of the applicable (index, propertyGroup) pairs, in order; None when none has a base."""
    parts = [_component(i, j, c) for i, g in groups for j, c in enumerate(_list(g.get("priceComponent"), i))]
    currency = _currency(parts)
    first = next((p for p in parts if p.type == "base"), None)
    if first is None:
        return None
    if first.amount is None:
        raise BadRequest(f"propertyGroup[{first.group}].priceComponent[{first.index}]: a base component "
                         "needs an amount")
    base = rounded(first.amount, currency)
    lines = [Line("base", first.group, base, first.factor, first.code)]

    def line(p: _Part, basis: Decimal) -> Line:
        value = p.amount if p.amount is not None else p.factor * basis
        return Line(p.type, p.group, rounded(value, currency), p.factor, p.code)

    adjust = [line(p, base) for p in parts if p.type in ("surcharge", "discount")]
    surcharges = sum((x.amount for x in adjust if x.type == "surcharge"), Decimal(0))
    discounts = sum((x.amount for x in adjust if x.type == "discount"), Decimal(0))
    subtotal = max(base + surcharges - discounts, Decimal(0))
    taxes = [line(p, subtotal) for p in parts if p.type == "tax"]
    tax = sum((x.amount for x in taxes), Decimal(0))
    info = [Line(p.type, p.group, None if p.amount is None else rounded(p.amount, currency), p.factor, p.code)
            for p in parts if p.type == "informational"]
    zero = rounded(Decimal(0), currency)
    return Price(currency, tuple(lines + adjust + taxes + info), base, surcharges + zero, discounts + zero,
                 subtotal + zero, tax + zero, subtotal + tax + zero)


def _component(i: int, j: int, c) -> _Part:
    where = f"propertyGroup[{i}].priceComponent[{j}]"
    if not isinstance(c, dict):
        raise BadRequest(f"{where} must be an object")
    type_ = c.get("type")
    if type_ not in TYPES:
        raise BadRequest(f"{where}.type must be one of {', '.join(TYPES)}, got {str(type_)[:40]!r}")
    amount = currency = None
    if c.get("amount") is not None:
        money = c["amount"]
        if not isinstance(money, dict) or money.get("value") is None:
            raise BadRequest(f"{where}.amount must be a Money with a value")
        amount = _decimal(money["value"], f"{where}.amount.value")
        currency = money.get("currency", DEFAULT_CURRENCY)
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            raise BadRequest(f"{where}.amount.currency must be an ISO 4217 code such as INR, "
                             f"got {str(currency)[:40]!r}")
    factor = _decimal(c["factor"], f"{where}.factor") if c.get("factor") is not None else None
    if amount is None and factor is None and type_ != "informational":
        raise BadRequest(f"{where} ({type_}) needs an amount or a factor")
    code = c.get("code") if isinstance(c.get("code"), dict) else None
    return _Part(type_, i, j, amount, factor, code, currency)


def _currency(parts: list[_Part]) -> str:
    found = {p.currency for p in parts if p.currency is not None}
    if len(found) > 1:
        raise BadRequest(f"The applicable price components mix currencies ({', '.join(sorted(found))}): "
                         "a price is in one currency")
    return found.pop() if found else DEFAULT_CURRENCY


def _decimal(value, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadRequest(f"{where} must be a decimal")
    try:
        d = Decimal(getattr(value, "text", None) or str(value))
    except InvalidOperation:
        raise BadRequest(f"{where} must be a decimal, got {str(value)[:40]!r}") from None
    if not d.is_finite() or d < 0 or d.adjusted() >= MAX_DIGITS:
        raise BadRequest(f"{where} must be a decimal between 0 and 10^{MAX_DIGITS} (the component's type "
                         f"gives the sign), got {str(value)[:40]!r}")
    return d


def _list(value, i: int) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"propertyGroup[{i}].priceComponent must be a list")
    return value
