"""Purchases from a shop's CSV export: one ``Purchase`` record per order.

Shops export orders in many shapes. This reader accepts the common ones and reports every
row it cannot use with its line number and the reason; it never stops on one:

* the delimiter is sniffed (comma, semicolon, tab or pipe) and a byte-order mark ignored;
* column names are matched ignoring case, spaces and punctuation (``Customer ID``,
  ``CustomerID`` and ``customer_id`` are one name), against the aliases below;
* times are ISO-8601 (``2026-01-05``, ``2026-01-05 10:00``, ``20260105``), Unix epoch
  seconds or milliseconds, or slashed dates (``05/01/2026 10:00``), whose day/month order
  is decided once for the whole file;
* amounts may carry currency signs and thousands separators, use a decimal comma, or come
  as quantity times unit price; they are rounded to minor units;
* rows of one order (same customer and order id: a line-item export) become one purchase
  with the amounts and quantities summed, at the order's earliest time.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "COLUMN_ALIASES",
    "LineError",
    "header_problem",
    "parse_money",
    "parse_time",
    "read_purchases_csv",
]

#: Accepted column names per meaning, compared after dropping case, spaces and punctuation.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "customer": ("customer_id", "customer", "customer_no", "customer_number", "client_id",
                 "client", "user_id", "user", "member_id", "account_id", "buyer_id",
                 "customer_user_id", "customer_email", "email", "billing_email"),
    "time": ("timestamp", "occurred_at", "date", "datetime", "time", "order_date",
             "ordered_at", "invoice_date", "purchase_date", "purchased_at", "created_at",
             "transaction_date", "paid_at"),
    "amount_minor": ("amount_minor", "total_minor", "amount_cents", "total_cents"),
    "amount": ("amount", "total", "total_amount", "order_total", "order_total_amount",
               "total_price", "grand_total", "value", "revenue", "sales", "dollar_value",
               "net_amount", "gross_amount", "amount_paid"),
    "quantity": ("quantity", "qty", "items", "item_count", "number_of_items", "units"),
    "unit_price": ("unit_price", "price", "item_price"),
    "order": ("order_id", "order", "order_number", "order_no", "invoice", "invoice_no",
              "invoice_id", "invoice_number", "transaction_id"),
}

_DELIMITERS = ",;\t|"
_SLASHED = re.compile(
    r"^(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*([AaPp][Mm])?)?$")
_EPOCH = re.compile(r"^\d{9,13}(?:\.\d+)?$")
_MONEY_JUNK = re.compile(r"[^\d.,\-+()]")
_TOO_LARGE = Decimal(10) ** 18  # minor units; the events' own limit is 10^12


@dataclass(frozen=True, slots=True)
class LineError:
    """An input line that could not be used: its 1-based line number and why."""

    line: int
    message: str


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _pick(header: Sequence[str], meaning: str) -> str | None:
    present = {_key(h): h for h in header}
    for alias in COLUMN_ALIASES[meaning]:
        if _key(alias) in present:
            return present[_key(alias)]
    return None


def _slashed_parts(value: str) -> tuple[int, int, int, int, int, int] | None:
    match = _SLASHED.match(value)
    if match is None:
        return None
    a, b, c, hour, minute, second, half = match.groups()
    h = int(hour or 0)
    if half:
        if not 1 <= h <= 12:
            raise ValueError(f"{value!r}: hour {h} with {half}")
        h = h % 12 + (12 if half.lower() == "pm" else 0)
    return int(a), int(b), int(c), h, int(minute or 0), int(second or 0)


def day_first_in(values: Iterable[str]) -> bool:
    """Whether a file's slashed dates are day/month/year: yes as soon as one has a first
    part above 12, no as soon as one has a second part above 12, else month first."""
    for value in values:
        try:
            parts = _slashed_parts(value.strip())
        except ValueError:
            continue
        if parts is None or len(str(parts[0])) == 4 or parts[0] > 31:
            continue
        if parts[0] > 12:
            return True
        if parts[1] > 12:
            return False
    return False


def parse_time(text: str, *, day_first: bool = False) -> datetime:
    """A timestamp as UTC: ISO-8601 (a date alone is UTC midnight, a time without a zone is
    UTC), Unix epoch seconds or milliseconds, or a slashed date with an optional time
    (``year/month/day``, else day/month/year when ``day_first``, else month/day/year).
    ValueError when it is none of these."""
    value = text.strip()
    if not value:
        raise ValueError("empty timestamp")
    if _EPOCH.match(value):
        seconds = float(value)
        if len(value.split(".")[0]) >= 12:
            seconds /= 1000.0
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    parts = _slashed_parts(value)
    if parts is not None:
        a, b, c, hour, minute, second = parts
        if len(str(a)) == 4 or a > 31:
            year, month, day = a, b, c
        elif day_first:
            day, month, year = a, b, c
        else:
            month, day, year = a, b, c
        if year < 100:
            year += 2000 if year < 70 else 1900
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    if value[-1:] in ("z", "Z"):
        value = value[:-1] + "+00:00"
    elif value[-4:].upper() in (" UTC", " GMT"):
        value = value[:-4] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_money(text: str, column: str) -> Decimal:
    """A decimal number from a money cell: currency signs and spaces dropped, ``(12.50)``
    is negative, the last of ``.``/``,`` is the decimal separator when both appear, and a
    lone ``,`` is decimal unless it groups exactly three digits (``1,234``)."""
    raw = text.strip()
    try:  # plain or scientific notation, as a program writes it
        number = Decimal(raw)
        if number.is_finite():
            return number
    except InvalidOperation:
        pass
    value = _MONEY_JUNK.sub("", raw)
    negative = value.startswith("(") and value.endswith(")")
    value = value.strip("()")
    if "," in value and "." in value:
        decimal_sep = "," if value.rfind(",") > value.rfind(".") else "."
        thousands = "." if decimal_sep == "," else ","
        value = value.replace(thousands, "").replace(decimal_sep, ".")
    elif "," in value:
        groups = value.split(",")
        if len(groups) > 2 or (len(groups) == 2 and len(groups[1]) == 3):
            value = value.replace(",", "")
        else:
            value = value.replace(",", ".")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"{column}: {raw!r} is not a number") from exc
    if not number.is_finite():
        raise ValueError(f"{column}: {raw!r} is not a number")
    return -number if negative else number


def _minor(number: Decimal, column: str, raw: str) -> int:
    if number < 0:
        raise ValueError(f"{column}: {raw!r} is negative (a refund or a cancellation is "
                         "not a purchase)")
    if number >= _TOO_LARGE:
        raise ValueError(f"{column}: {raw!r} is too large for an order")
    return int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(slots=True)
class _Order:
    line: int
    customer: str
    occurred_at: datetime
    order: str
    amount_minor: int
    items: int


@dataclass(frozen=True, slots=True)
class _Columns:
    customer: str
    time: str
    amount: str | None
    amount_minor: str | None
    quantity: str | None
    unit_price: str | None
    order: str | None

    @classmethod
    def of(cls, header: Sequence[str]) -> _Columns | str:
        found = {meaning: _pick(header, meaning) for meaning in COLUMN_ALIASES}
        missing = [m for m in ("customer", "time") if found[m] is None]
        if not (found["amount"] or found["amount_minor"] or found["unit_price"]):
            missing.append("amount")
        if missing:
            names = {"customer": "customer id", "time": "timestamp", "amount": "amount"}
            shown = ", ".join(header) or "empty"
            if len(shown) > 120:
                shown = shown[:117] + "..."
            return ("CSV header lacks column(s): " + ", ".join(names[m] for m in missing)
                    + f" (header: {shown!r}; accepted names in docs/backtest.md)")
        return cls(found["customer"] or "", found["time"] or "", found["amount"],
                   found["amount_minor"], found["quantity"], found["unit_price"],
                   found["order"])

    def amount_and_items(self, row: dict[str, Any]) -> tuple[int, int]:
        """Minor units and items of a row. A row of an order with its amount left empty (a
        further line item, in exports that give the total on an order's first row only)
        adds nothing to the amount."""
        column = self.amount_minor or self.amount or self.unit_price
        order = (row.get(self.order) or "").strip() if self.order else ""
        if order and column is not None and not (row.get(column) or "").strip():
            return 0, 1
        quantity = Decimal(1)
        if self.quantity is not None and (row.get(self.quantity) or "").strip():
            quantity = parse_money(row[self.quantity], self.quantity)
            if quantity < 0:
                raise ValueError(f"{self.quantity}: {row[self.quantity].strip()!r} is "
                                 "negative (a return is not a purchase)")
            if quantity >= _TOO_LARGE:
                raise ValueError(f"{self.quantity}: {row[self.quantity].strip()!r} is too "
                                 "large for an order")
        items = int(quantity) if quantity == quantity.to_integral_value() else 1
        if self.amount_minor is not None:
            raw = (row.get(self.amount_minor) or "").strip()
            number = parse_money(raw, self.amount_minor)
            return _minor(number, self.amount_minor, raw), items
        if self.amount is not None:
            raw = (row.get(self.amount) or "").strip()
            return _minor(parse_money(raw, self.amount) * 100, self.amount, raw), items
        assert self.unit_price is not None
        raw = (row.get(self.unit_price) or "").strip()
        price = parse_money(raw, self.unit_price)
        return _minor(price * quantity * 100, self.unit_price, raw), items


def _readable(reader: csv.DictReader[str],
              errors: list[LineError]) -> Iterator[dict[str, Any]]:
    """The reader's rows; a row the csv module cannot parse (a field beyond its size limit,
    a NUL byte) is reported and skipped."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(LineError(reader.line_num + 1,
                                    f"unreadable CSV row (after line {reader.line_num}): "
                                    f"{exc}"))


def _sniff(sample: str) -> str:
    first = next((line for line in sample.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def header_problem(line: str) -> str | None:
    """Why ``line`` is not the header of a purchases CSV this reader can use; None if it is."""
    text = line.lstrip("\ufeff")
    header = next(csv.reader([text], delimiter=_sniff(text)), [])
    columns = _Columns.of(header)
    return columns if isinstance(columns, str) else None


def read_purchases_csv(lines: Iterable[str], currency: str,
                       errors: list[LineError]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``Purchase`` records from the lines of a CSV export, one per order, in the order of
    each order's first row. Unusable rows are appended to ``errors``."""
    it = iter(lines)
    head: list[str] = []
    for text in it:
        head.append(text.lstrip("\ufeff") if not head else text)
        if text.strip():
            break
    delimiter = _sniff("".join(head))

    def all_lines() -> Iterator[str]:
        yield from head
        yield from it

    reader = csv.DictReader(all_lines(), delimiter=delimiter)
    header = [h or "" for h in (reader.fieldnames or [])]
    columns = _Columns.of(header)
    if isinstance(columns, str):
        errors.append(LineError(1, columns))
        return
    rows: list[tuple[int, str, str, int, int, str]] = []
    for row in _readable(reader, errors):
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        try:
            customer = (row.get(columns.customer) or "").strip()
            if not customer:
                raise ValueError(f"{columns.customer}: empty")
            stamp = (row.get(columns.time) or "").strip()
            if not stamp:
                raise ValueError(f"{columns.time}: empty")
            amount, items = columns.amount_and_items(row)
        except ValueError as exc:
            errors.append(LineError(line, str(exc)))
            continue
        order = (row.get(columns.order) or "").strip() if columns.order else ""
        rows.append((line, customer, stamp, amount, items, order))
    day_first = day_first_in(stamp for _, _, stamp, _, _, _ in rows)
    orders: dict[tuple[str, str], _Order] = {}
    singles: list[_Order] = []
    for line, customer, stamp, amount, items, order in rows:
        try:
            occurred_at = parse_time(stamp, day_first=day_first)
        except ValueError as exc:
            errors.append(LineError(line, f"{columns.time}: {exc}"))
            continue
        if not order:
            singles.append(_Order(line, customer, occurred_at, "", amount, items))
            continue
        known = orders.get((customer, order))
        if known is None:
            orders[(customer, order)] = _Order(line, customer, occurred_at, order, amount,
                                               items)
        else:
            known.amount_minor += amount
            known.items += items
            known.occurred_at = min(known.occurred_at, occurred_at)
    for purchase in sorted([*orders.values(), *singles], key=lambda o: o.line):
        event_id = f"csv-{purchase.line}"
        yield "Purchase", {
            "event_id": event_id, "customer_id": purchase.customer,
            "occurred_at": purchase.occurred_at, "order_id": purchase.order or event_id,
            "amount_minor": purchase.amount_minor, "currency": currency,
            "items": purchase.items, "channel": "other",
        }
