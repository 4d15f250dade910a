"""The tables ``churnwatch simulate`` prints about a simulation."""

from __future__ import annotations

from rich.table import Table

from streams.simulator.model import PERSONAS, TYPES, Simulation


def summary_table(sim: Simulation, *, generated_s: float, output_s: float, output: str) -> Table:
    """The summary ``churnwatch simulate`` prints."""
    counts = sim.counts
    config = sim.config
    table = Table(
        title=(
            f"Seed {config.seed}, {config.horizon_days:g} days from "
            f"{config.begin:%Y-%m-%d %H:%M} UTC"
        ),
        title_justify="left",
    )
    table.add_column("", justify="left")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")

    def share(n: int, of: int) -> str:
        return f"{n / of:.2%}" if of else "-"

    genuine = counts.genuine
    for type_name in TYPES:
        table.add_row(
            type_name, f"{counts.records[type_name]:,}", share(counts.records[type_name], genuine)
        )
    table.add_row("genuine records", f"{genuine:,}", "", end_section=True)
    table.add_row("duplicates", f"{counts.duplicates:,}", share(counts.duplicates, genuine))
    table.add_row("late (1 min - 48 h)", f"{counts.late:,}", share(counts.late, genuine))
    table.add_row(
        "very late (4 - 10 days)", f"{counts.very_late:,}", share(counts.very_late, genuine)
    )
    table.add_row("malformed", f"{counts.malformed:,}", share(counts.malformed, genuine))
    table.add_row("invalid values", f"{counts.invalid:,}", share(counts.invalid, genuine))
    table.add_row("delivered items", f"{counts.delivered:,}", "", end_section=True)
    table.add_row("customers", f"{counts.customers:,}", "")
    table.add_row(
        "churned within the period",
        f"{counts.churners:,}",
        share(counts.churners, counts.customers),
        end_section=True,
    )
    rate = counts.delivered / generated_s if generated_s > 0 else 0.0
    table.add_row("generation", f"{generated_s:.1f} s", f"{rate:,.0f} items/s")
    rate = counts.delivered / output_s if output_s > 0 else 0.0
    table.add_row(output, f"{output_s:.1f} s", f"{rate:,.0f} items/s")
    return table


def persona_table(sim: Simulation) -> Table:
    """Customers and churners per persona."""
    counts = sim.counts
    table = Table(title="Personas", title_justify="left")
    for column in ("persona", "customers", "share", "churned"):
        table.add_column(column, justify="left" if column == "persona" else "right")
    for persona in PERSONAS:
        n = counts.personas.get(persona, 0)
        table.add_row(
            persona,
            f"{n:,}",
            f"{n / counts.customers:.1%}" if counts.customers else "-",
            f"{counts.churners_by_persona.get(persona, 0):,}",
        )
    return table
