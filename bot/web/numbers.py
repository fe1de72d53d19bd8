"""Every number that comes in over HTTP, read one way and bounded on the way in: query strings, ids in
paths, form fields (`read_int`), JSON numbers (`json_int`), amounts (`read_decimal`).

`int()` takes "³"? No, but `str.isdigit()` does, and `int()` takes "٣", " 1_000 " and raises on 4,301
digits; a number past a SQL column's range raises in the driver (SQLite's OverflowError, asyncpg's
DataError); `Decimal("9e9999999")` is finite, and printing it writes ten million digits. Each was a 500
somewhere. Here a number is ASCII digits (a sign where negatives are allowed), read only when short
enough, and within the bounds its use allows; anything else is a `ValueError` whose message says what is
expected, for the caller to answer 4xx with.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from aiohttp import web

from bot.web.json_api import fail
from config.shop_file import INT_MAX

ID_MAX = INT_MAX  # ids are INTEGER columns: 32 bits on PostgreSQL
_MAX_DIGITS = 40  # read no longer text: no bound here has more digits, leading zeros allowed


def whole_number_problem(low: int, high: int) -> str:
    return f"a whole number from {low} to {high}"


def read_int(text: str, low: int, high: int) -> int:
    """`text` as a whole number from `low` to `high`; `ValueError(what is expected)` otherwise."""
    text = text.strip()
    digits = text[1:] if text[:1] in ("-", "+") and low < 0 else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > _MAX_DIGITS:
        raise ValueError(whole_number_problem(low, high))
    number = int(text)
    if not low <= number <= high:
        raise ValueError(whole_number_problem(low, high))
    return number


def json_int(value: object, low: int, high: int) -> int:
    """A JSON number that must be whole, from `low` to `high` (`true` is no number, "5" no JSON number)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(whole_number_problem(low, high))
    return value


def read_decimal(value: object, low: Decimal, below: Decimal, places: int = 2) -> Decimal:
    """A decimal amount (a JSON number, or text like "1280.00"): from `low` to below `below`, with at most
    `places` decimal places; `ValueError(what is expected)` otherwise."""
    problem = f"a number from {low} to below {below:,}, {places} decimals at most"
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(problem)
    if isinstance(value, str) and len(value) > _MAX_DIGITS:
        raise ValueError(problem)
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
        # Bounds before the places: quantizing "9e9999999" would raise, comparing it does not.
        if not amount.is_finite() or not low <= amount < below:
            raise ValueError(problem)
        if amount != amount.quantize(Decimal(1).scaleb(-places)):
            raise ValueError(problem)
    except InvalidOperation:
        raise ValueError(problem) from None
    return amount


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """`?name=` as a bounded whole number (`default` when absent); 400 `{"error": ...}` otherwise."""
    text = request.query.get(name)
    if text is None:
        return default
    try:
        return read_int(text, low, high)
    except ValueError as exc:
        fail(web.HTTPBadRequest, f"{name}: {exc}")


def path_id(request: web.Request, name: str = "id") -> int | None:
    """The `{name}` of the URL as a row id (1 to `ID_MAX`), or None when it cannot be one (the caller's 404)."""
    try:
        return read_int(request.match_info[name], 1, ID_MAX)
    except ValueError:
        return None
