"""Stored per-customer state after a year of daily history, against the 1 KB budget.

Run: .venv/bin/python bench/state_size.py
Feeds one busy customer a purchase, two engagement events and a support contact every
day for 365 days (plus a profile) through the same pipeline steps the workers run, then
prints the size of each table's value for that customer and the total.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.replay import LocalPipeline
from streams.settings import Settings

BUDGET = 1024
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def history(customer: str = "customer-000042") -> list[tuple[str, dict]]:
    records: list[tuple[str, dict]] = [("ProfileChange", {
        "event_id": f"{customer}-profile", "customer_id": customer, "occurred_at": T0,
        "segment": "b2b", "signup_at": T0 - timedelta(days=30), "plan": "pro",
        "mrr_minor": 49_000, "cost_to_serve_minor": 21_000, "currency": "EUR", "products": 2,
        "referrals": 1, "consent": {"email": True, "sms": False, "phone": True, "push": False}})]
    for day in range(365):
        at = T0 + timedelta(days=day, hours=9)
        records.append(("Purchase", {
            "event_id": f"{customer}-p-{day:05d}", "customer_id": customer, "occurred_at": at,
            "order_id": f"order-{day:07d}", "amount_minor": 1000 + 37 * day, "currency": "EUR",
            "items": 1 + day % 3, "channel": "web"}))
        for n in range(2):
            records.append(("Engagement", {
                "event_id": f"{customer}-e-{day:05d}-{n}", "customer_id": customer,
                "occurred_at": at + timedelta(hours=n + 1), "kind": "session", "count": 1,
                "duration_s": 300 + day % 600, "feature": None}))
        records.append(("SupportEvent", {
            "event_id": f"{customer}-s-{day:05d}", "customer_id": customer,
            "occurred_at": at + timedelta(hours=5),
            "kind": "ticket_opened" if day % 2 == 0 else "ticket_resolved",
            "ticket_id": f"ticket-{day // 2:05d}", "csat": None, "nps": None,
            "sentiment": ((day % 7) - 3) / 3.0, "category": "billing"}))
    return records


def main() -> None:
    pipeline = LocalPipeline(Settings(_env_file=None, clock="event"))
    records = history()
    pipeline.run(records, ticks=True)
    key = records[0][1]["customer_id"].encode()
    total = 0
    print(f"{'table':<22}{'bytes':>8}")
    for name, table in sorted(pipeline.tables.items()):
        size = len(table.get(key, b""))
        total += size
        print(f"{name:<22}{size:>8}")
    print(f"{'total':<22}{total:>8}")
    print(f"events fed: {len(records)} over 365 days")
    print(f"budget: {BUDGET} bytes; total / budget = {total / BUDGET:.2f}")


if __name__ == "__main__":
    main()
