"""The whole population: every customer's history and noise, merged in arrival order."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from streams.simulator.history import iter_customers
from streams.simulator.model import (
    DUPLICATE,
    INVALID,
    LATE,
    MALFORMED,
    PERSONAS,
    TYPES,
    VERY_LATE,
    Counts,
    Item,
    Simulation,
    SimulationConfig,
    TruthRow,
)
from streams.simulator.noise import Delivery, deliver


def simulate(
    config: SimulationConfig | None = None,
    *,
    progress: Callable[[int], object] | None = None,
    now: datetime | None = None,
) -> Simulation:
    """Simulate the population of ``config``; deterministic for the same configuration.

    ``progress`` is called with the number of customers done since its previous call.
    ValueError if the period does not lie in the past of ``now`` (default: the wall
    clock), since a worker rejects events from the future.
    """
    config = config or SimulationConfig()
    moment = now or datetime.now(UTC)
    if config.end > moment:
        raise ValueError(
            f"the simulated period ends {config.end:%Y-%m-%d %H:%M} UTC, after now "
            f"({moment:%Y-%m-%d %H:%M} UTC); workers reject events from the future: "
            "start earlier or simulate a shorter period"
        )
    deliveries: list[Delivery] = []
    truth: list[TruthRow] = []
    counts = Counts(records=dict.fromkeys(TYPES, 0), customers=config.customers)
    personas: Counter[str] = Counter()
    churners: Counter[str] = Counter()
    pending = 0
    for index, (records, row) in enumerate(iter_customers(config)):
        truth.append(row)
        personas[row.persona] += 1
        if row.churned:
            churners[row.persona] += 1
        for type_name, _ in records:
            counts.records[type_name] += 1
        deliveries.extend(deliver(index, config, records))
        pending += 1
        if progress is not None and pending >= 100:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    deliveries.sort(key=lambda d: (d[0], d[1], d[2]))
    items: list[Item] = [d[3] for d in deliveries]
    arrived = array("q", (d[0] for d in deliveries))
    delivery = bytearray(d[4] for d in deliveries)
    del deliveries
    tally = Counter(delivery)
    counts.delivered = len(items)
    counts.duplicates = tally[DUPLICATE]
    counts.late = tally[LATE]
    counts.very_late = tally[VERY_LATE]
    counts.malformed = tally[MALFORMED]
    counts.invalid = tally[INVALID]
    counts.churners = sum(churners.values())
    counts.personas = {p: personas[p] for p in PERSONAS}
    counts.churners_by_persona = {p: churners[p] for p in PERSONAS}
    return Simulation(config, items, arrived, delivery, truth, counts)
