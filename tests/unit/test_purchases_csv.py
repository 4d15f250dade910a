"""Purchases from shops' CSV exports in their many shapes (streams.purchases_csv)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.backtest import read_events
from streams.purchases_csv import LineError, parse_money, parse_time, read_purchases_csv


def read(text: str, currency: str = "EUR") -> tuple[list[dict], list[LineError]]:
    errors: list[LineError] = []
    records = list(read_purchases_csv(text.splitlines(keepends=True), currency, errors))
    assert all(name == "Purchase" for name, _ in records)
    return [r for _, r in records], errors


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-05", utc(2026, 1, 5)),
    ("2026-01-05 10:30", utc(2026, 1, 5, 10, 30)),
    ("2026-01-05T10:30:00+02:00", utc(2026, 1, 5, 8, 30)),
    ("2026-01-05T10:30:00Z", utc(2026, 1, 5, 10, 30)),
    ("19970101", utc(1997, 1, 1)),
    ("1767609000", utc(2026, 1, 5, 10, 30)),
    ("1767609000000", utc(2026, 1, 5, 10, 30)),
    ("2026/01/05", utc(2026, 1, 5)),
    ("1/5/2026 8:26", utc(2026, 1, 5, 8, 26)),
    ("01/05/2026 08:26:59", utc(2026, 1, 5, 8, 26, 59)),
    ("1/5/26 1:05 PM", utc(2026, 1, 5, 13, 5)),
    ("1/5/26 12:05 am", utc(2026, 1, 5, 0, 5)),
    ("2026-01-05 10:30:00 -0500", utc(2026, 1, 5, 15, 30)),
    ("2026-01-05 10:30:00 UTC", utc(2026, 1, 5, 10, 30)),
])
def test_times_a_shop_exports(text, expected):
    assert parse_time(text) == expected


def test_slashed_dates_follow_the_files_order():
    assert parse_time("05.01.2026", day_first=True) == utc(2026, 1, 5)
    assert parse_time("05/01/2026", day_first=False) == utc(2026, 5, 1)
    with pytest.raises(ValueError):
        parse_time("13/13/2026")
    with pytest.raises(ValueError):
        parse_time("yesterday")
    with pytest.raises(ValueError):
        parse_time("  ")


@pytest.mark.parametrize(("text", "expected"), [
    ("12.50", "12.50"), ("12,50", "12.50"), ("1,234.56", "1234.56"), ("1.234,56", "1234.56"),
    ("1,234", "1234"), ("1 234,5", "1234.5"), ("$1,234.56", "1234.56"), ("EUR 7", "7"),
    ("12,50 €", "12.50"), ("(3.00)", "-3.00"), ("-3", "-3"), ("1,234,567", "1234567"),
    ("1e3", "1000"), ("2.5E+1", "25"),
])
def test_money_cells(text, expected):
    assert parse_money(text, "amount") == Decimal(expected)


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "NaN", "--"])
def test_money_cells_that_are_not_numbers(text):
    with pytest.raises(ValueError, match="amount"):
        parse_money(text, "amount")


@given(st.decimals(min_value=0, max_value=10**9, places=2))
def test_money_written_either_way_reads_back(number):
    plain = f"{number:.2f}"
    grouped = f"{number:,.2f}"
    european = grouped.replace(",", " ").replace(".", ",")
    for text in (plain, grouped, european, "$" + grouped):
        assert parse_money(text, "amount") == number


def test_a_line_item_export_becomes_one_purchase_per_order():
    records, errors = read(
        "InvoiceNo;StockCode;Quantity;InvoiceDate;UnitPrice;CustomerID;Country\n"
        "536365;85123A;6;01/12/2010 08:26;2,55;17850;United Kingdom\n"
        "536365;71053;6;01/12/2010 08:26;3,39;17850;United Kingdom\n"
        "536366;22633;6;01/12/2010 08:28;1,85;17850;United Kingdom\n"
        "C536379;D;-1;01/12/2010 09:41;27,50;14527;United Kingdom\n"
        "536380;22961;24;13/12/2010 09:41;0,85;;United Kingdom\n"
        "536381;22139;2;13/12/2010 09:45;4,25;15311;United Kingdom\n")
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [
        (5, "Quantity"), (6, "CustomerID")]
    assert [(r["event_id"], r["customer_id"], r["order_id"], r["amount_minor"], r["items"],
             r["occurred_at"]) for r in records] == [
        ("csv-2", "17850", "536365", 1530 + 2034, 12, utc(2010, 12, 1, 8, 26)),
        ("csv-4", "17850", "536366", 1110, 6, utc(2010, 12, 1, 8, 28)),
        ("csv-7", "15311", "536381", 850, 2, utc(2010, 12, 13, 9, 45)),  # day first: 13/12
    ]


def test_an_order_keeps_its_earliest_time_and_its_first_line():
    records, errors = read("customer_id,order_id,timestamp,amount\n"
                           "a,o1,2026-01-05T12:00:00,1\n"
                           "b,o1,2026-01-05T11:00:00,2\n"
                           "a,o1,2026-01-05T10:00:00,3\n")
    assert not errors
    assert [(r["event_id"], r["customer_id"], r["amount_minor"], r["occurred_at"].hour)
            for r in records] == [("csv-2", "a", 400, 10), ("csv-3", "b", 200, 11)]


def test_header_names_and_delimiters_vary():
    for header, sep in (("Customer ID\tOrder Date\tTotal", "\t"),
                        ("CUSTOMER|created_at|Order Total", "|"),
                        ("user_id;purchase_date;revenue", ";")):
        records, errors = read("\ufeff" + header + "\n" + sep.join(["c9", "2026-02-01", "30"])
                               + "\n")
        assert not errors, header
        assert [(r["customer_id"], r["amount_minor"]) for r in records] == [("c9", 3000)]


def test_unit_price_alone_is_the_amount_and_amount_minor_wins():
    records, _ = read("customer,date,price\nc,2026-01-01,4.5\n")
    assert records[0]["amount_minor"] == 450
    records, _ = read("customer,date,amount_minor,amount\nc,2026-01-01,120,99\n")
    assert records[0]["amount_minor"] == 120


def test_a_header_without_the_needed_columns_names_what_is_missing():
    records, errors = read("who,when,what\nc1,2026-01-05,3\n")
    assert records == []
    assert errors[0].line == 1
    assert "customer id, timestamp, amount" in errors[0].message
    assert "'who, when, what'" in errors[0].message


def test_absurd_amounts_are_bad_lines():
    records, errors = read("customer,date,amount,quantity\nc1,2026-01-05,1e999,1\n"
                           "c1,2026-01-06,1,1e999\nc1,2026-01-07,NaN,1\n")
    assert records == []
    assert [e.line for e in errors] == [2, 3, 4]
    assert "too large" in errors[0].message and "too large" in errors[1].message


def test_blank_rows_are_skipped_and_negative_amounts_reported():
    records, errors = read("customer,date,amount\n\nc1,2026-01-05,-4\n,,\nc1,2026-01-06,4\n")
    assert [r["amount_minor"] for r in records] == [400]
    assert [(e.line, "refund" in e.message) for e in errors] == [(3, True)]


def test_files_with_a_byte_order_mark_and_stray_bytes_load(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes("\ufeffcustomer;date;amount\n".encode()
                     + b"m\xfcller;2026-01-05;1\nc2;2026-01-06;2\n")
    records, errors = read_events(path)
    assert not errors
    assert [r["customer_id"] for _, r in records] == ["m\ufffdller", "c2"]


def test_a_row_the_csv_module_cannot_parse_is_reported_and_the_next_ones_kept():
    records, errors = read("customer,date,amount\n"
                           f"c1,2026-01-01,{'9' * 200_000}\n"
                           "c2,2026-01-02,5\n")
    assert [r["customer_id"] for r in records] == ["c2"]
    assert len(errors) == 1 and "field larger than field limit" in errors[0].message


def test_an_export_with_the_total_on_each_orders_first_row_only():
    records, errors = read(
        "Order ID,Email,Created at,Total,Lineitem name\n"
        "1001,ann@example.com,2026-01-05 10:30:00 -0500,59.90,Mug\n"
        "1001,ann@example.com,2026-01-05 10:30:00 -0500,,Tea\n"
        "1002,bob@example.com,2026-01-06 09:00:00 -0500,12.00,Tea\n"
        ",bob@example.com,2026-01-07 09:00:00 -0500,,Tea\n")
    assert [(r["customer_id"], r["order_id"], r["amount_minor"], r["items"])
            for r in records] == [("ann@example.com", "1001", 5990, 2),
                                  ("bob@example.com", "1002", 1200, 1)]
    assert [(e.line, e.message) for e in errors] == [(5, "Total: '' is not a number")]
