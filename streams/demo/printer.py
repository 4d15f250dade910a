"""The readable output printer: each band change, at-risk and recovered event and dead
letter as one line, with a running summary (the demo's and ``churnwatch watch``'s)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from streams.codec import Codec
from streams.kafka_io import (
    TOMBSTONE,
    UNDECODABLE,
    OutputReader,
)
from streams.scenario import LAPSING, PERSONAS, persona_of
from streams.settings import Settings

BAND_STYLE = {"healthy": "green", "watch": "yellow", "at_risk": "bold red"}
BAND_LABEL = {"healthy": "healthy", "watch": "watch", "at_risk": "at risk"}


def _band(band: str | None) -> Text:
    if band is None:
        return Text("new", style="dim")
    return Text(BAND_LABEL.get(band, band), style=BAND_STYLE.get(band, ""))


def _points_lost(contribution: dict[str, Any]) -> float:
    """Points a measure cost the score: (100 - points) x its weight."""
    return float((100.0 - contribution["points"]) * contribution["weight"])


def _when(record: dict[str, Any], name: str = "occurred_at") -> str:
    moment = record.get(name)
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return "-" * 16


@dataclass
class Summary:
    """Running counts over everything printed so far."""

    bands: dict[str, str] = field(default_factory=dict)  # customer -> latest band
    at_risk_now: set[str] = field(default_factory=set)
    flagged: set[str] = field(default_factory=set)  # customers with any at-risk event
    recovered: set[str] = field(default_factory=set)
    champions: set[str] = field(default_factory=set)
    health_changes: int = 0
    at_risk_events: int = 0
    recovered_events: int = 0
    dead_letters: int = 0
    dead_reasons: Counter[str] = field(default_factory=Counter)
    erased: int = 0
    produced: int | None = None
    total: int | None = None  # records to produce, once known
    consumed: int | None = None
    #: the inputs carry deliberate noise (the simulator's): dead letters are expected
    noise_intended: bool = False

    def line(self) -> Text:
        counts = Counter(self.bands.values())
        text = Text()
        text.append(f"scored {len(self.bands):,}: ")
        for band in ("healthy", "watch", "at_risk"):
            text.append(f"{BAND_LABEL[band]} {counts.get(band, 0):,}",
                        style=BAND_STYLE[band])
            text.append("  ")
        text.append(f"| at-risk events {self.at_risk_events:,} "
                    f"(open {len(self.at_risk_now):,})  recovered {self.recovered_events:,}  "
                    f"champions {len(self.champions):,}  ")
        if self.noise_intended:
            text.append(f"dead letters {self.dead_letters:,} (intended noise)", style="dim")
        else:
            text.append(f"dead letters {self.dead_letters:,}",
                        style="yellow" if self.dead_letters else "")
        consumed = f"{self.consumed:,}" if self.consumed is not None else "?"
        if self.total is not None and (self.produced or 0) < self.total:
            text.append(f"  | produced {self.produced or 0:,}/{self.total:,}, "
                        f"worker consumed {consumed}", style="dim")
        elif self.produced is not None:
            text.append(f"  | worker consumed {consumed}/{self.produced:,}", style="dim")
        return text

    def persona_table(self, cast: dict[str, str],
                      churned: frozenset[str] | None = None) -> Table:
        """Outcome per persona. ``churned``: the customers who really left (the
        simulator's truth); without it, the scripted scenario's lapsing personas."""
        table = Table(title="Outcome per persona", title_justify="left")
        columns = ["persona", "customers", "left", "flagged", "at risk now", "recovered",
                   "champions", "band now: healthy/watch/at risk"]
        if churned is None:
            columns.remove("left")
        for column in columns:
            table.add_column(column, justify="left" if column == "persona" else "right")
        order = [p for p in PERSONAS if p in cast.values()] + sorted(
            set(cast.values()) - set(PERSONAS))
        for persona in order:
            members = [c for c, p in cast.items() if p == persona]
            bands = Counter(self.bands.get(c, "none") for c in members)
            if churned is None:
                lapsing = persona in LAPSING
                cells: list[Text | str] = [Text(persona + (" *" if lapsing else ""),
                              style="" if lapsing else "dim"), f"{len(members):,}"]
            else:
                left = sum(c in churned for c in members)
                cells = [Text(persona, style="" if left else "dim"), f"{len(members):,}",
                         f"{left:,}"]
            table.add_row(
                *cells,
                f"{sum(c in self.flagged for c in members):,}",
                f"{sum(c in self.at_risk_now for c in members):,}",
                f"{sum(c in self.recovered for c in members):,}",
                f"{sum(c in self.champions for c in members):,}",
                f"{bands.get('healthy', 0):,} / {bands.get('watch', 0):,} / "
                f"{bands.get('at_risk', 0):,}")
        table.caption = ("* personas scripted to lapse; the others should stay healthy"
                         if churned is None else
                         "left: churned for good within the simulated period (truth file)")
        return table

    def __rich__(self) -> Text:
        return self.line()


class OutputPrinter:
    """Turns churnwatch output records into readable lines on a rich console."""

    def __init__(self, console: Console, *, every_score: bool = False,
                 seed: int | None = None, max_dead_letters: int = 20,
                 cast: dict[str, str] | None = None,
                 churned: frozenset[str] = frozenset(),
                 noise_intended: bool = False) -> None:
        self.console = console
        self.max_dead_letters = max_dead_letters
        self.every_score = every_score
        self.seed = seed
        self.cast = cast  # customer -> persona (the simulator's truth)
        self.churned = churned
        self.summary = Summary(noise_intended=noise_intended)

    def _who(self, customer: str | None) -> Text:
        text = Text(customer or "?", style="bold")
        if not customer:
            return text
        if self.cast is not None:
            persona = self.cast.get(customer)
            if persona is not None:
                leaves = customer in self.churned
                text.append(f" [{persona}{', leaves' if leaves else ''}]",
                            style="magenta" if leaves else "dim")
        elif self.seed is not None:
            persona = persona_of(customer, self.seed)
            if persona is not None:
                text.append(f" [{persona}]", style="magenta" if persona in LAPSING else "dim")
        return text

    def handle(self, topic: str, type_name: str, record: dict[str, Any] | None) -> None:
        """Count one output and print it if it is worth a line."""
        if type_name == TOMBSTONE or record is None:
            self.summary.erased += 1
            self.console.print(Text(f"tombstone on {topic} (customer erased)", style="dim"))
            return
        if type_name == "HealthScoreChanged":
            self._health(record)
        elif type_name == "CustomerAtRisk":
            self._at_risk(record)
        elif type_name == "CustomerRecovered":
            self._recovered(record)
        elif type_name == "CustomerChampion":
            self._champion(record)
        elif type_name == "DeadLetter":
            self._dead_letter(record)
        elif type_name == UNDECODABLE:
            self.console.print(Text(f"undecodable record on {topic}: {record['error']}",
                                    style="yellow"))
        else:
            self.console.print(Text(f"{type_name} on {topic}", style="dim"))

    def _health(self, r: dict[str, Any]) -> None:
        s = self.summary
        s.health_changes += 1
        customer, band, previous = r["customer_id"], r["band"], r.get("previous_band")
        s.bands[customer] = band
        first_healthy = previous is None and band == "healthy"
        if not self.every_score and (band == previous or first_healthy):
            return
        line = Text(_when(r) + "  ", style="dim")
        line.append_text(self._who(customer))
        line.append("  ")
        line.append_text(_band(previous))
        line.append(" -> ")
        line.append_text(_band(band))
        line.append(f"  {r['score']:5.1f}")
        lost = sorted(r.get("contributions") or [], key=_points_lost, reverse=True)
        worst = [f"{c['signal']} -{_points_lost(c):.1f}"
                 for c in lost[:3] if _points_lost(c) >= 0.5]
        if worst:
            line.append("  " + ", ".join(worst), style="dim")
        self.console.print(line)

    def _at_risk(self, r: dict[str, Any]) -> None:
        s = self.summary
        customer = r["customer_id"]
        s.at_risk_events += 1
        s.at_risk_now.add(customer)
        s.flagged.add(customer)
        s.bands[customer] = r["band"]
        head = Text(_when(r) + "  ", style="dim")
        head.append("AT RISK  ", style="bold white on red")
        head.append_text(self._who(customer))
        head.append(f"  score {r['score']:.1f}  ")
        head.append_text(_band(r.get("previous_band")))
        head.append(" -> ")
        head.append_text(_band(r["band"]))
        head.append(f"  {r['segment']}  episode {r['episode_id']}", style="dim")
        self.console.print(head)
        for reason in (r.get("reasons") or [])[:3]:
            self.console.print(Text(f"    - {reason['text']} ({reason['contribution']:+.1f})"))
        route = Text("    why: ")
        route.append(r["churn_reason"], style="bold")
        route.append(" -> team ")
        route.append(r["route_to_team"], style="bold cyan")
        route.append(f" | fit {r['fit_status']}")
        if r.get("profitability") is not None:
            route.append(f" ({r['profitability']:.0%} margin"
                         + (", unprofitable)" if r.get("unprofitable") else ")"))
        route.append(" | ")
        if r.get("contactable"):
            route.append("contact via " + ", ".join(r.get("channels") or []), style="green")
        else:
            route.append("no contact consent", style="yellow")
        self.console.print(route)
        self.console.print(Text(f"    play: {r['suggested_play']}", style="italic"))

    def _recovered(self, r: dict[str, Any]) -> None:
        s = self.summary
        customer = r["customer_id"]
        s.recovered_events += 1
        s.at_risk_now.discard(customer)
        s.recovered.add(customer)
        s.bands[customer] = r["band"]
        line = Text(_when(r) + "  ", style="dim")
        line.append("RECOVERED", style="bold white on green")
        line.append("  ")
        line.append_text(self._who(customer))
        line.append(f"  score {r['score']:.1f}  ")
        line.append_text(_band(r["band"]))
        line.append(f"  at risk since {_when(r, 'at_risk_since')[:10]}", style="dim")
        self.console.print(line)

    def _champion(self, r: dict[str, Any]) -> None:
        customer = r["customer_id"]
        self.summary.champions.add(customer)
        line = Text(_when(r) + "  ", style="dim")
        line.append("CHAMPION", style="bold white on blue")
        line.append("  ")
        line.append_text(self._who(customer))
        line.append(f"  score {r['score']:.1f}  {r['segment']}  ")
        line.append(", ".join(r.get("qualified_by") or []), style="dim")
        self.console.print(line)
        reward = Text(f"    reward: {r['reward']} | ", style="italic")
        if r.get("contactable"):
            reward.append("contact via " + ", ".join(r.get("channels") or []), style="green")
        else:
            reward.append("no contact consent", style="yellow")
        self.console.print(reward)

    def _dead_letter(self, r: dict[str, Any]) -> None:
        s = self.summary
        s.dead_letters += 1
        s.dead_reasons[r["reason"]] += 1
        if s.noise_intended:
            # the first of each reason shows the routing at work; the rest are counted
            if s.dead_reasons[r["reason"]] == 1:
                self.console.print(Text(
                    f"{_when(r, 'failed_at')}  dead letter (intended noise)  "
                    f"{r['source_topic']}/{r['source_partition']}/{r['source_offset']}  "
                    f"{r['reason']} in {r['step']}: {r['error']}", style="dim"))
            return
        if s.dead_letters > self.max_dead_letters:
            if s.dead_letters == self.max_dead_letters + 1:
                self.console.print(Text("further dead letters are only counted",
                                        style="yellow"))
            return
        line = Text(_when(r, "failed_at") + "  ", style="dim")
        line.append("DEAD LETTER", style="bold black on yellow")
        line.append(f"  {r['source_topic']}/{r['source_partition']}/{r['source_offset']}"
                    f"  {r['reason']} in {r['step']}: {r['error']}")
        self.console.print(line)


def watch_outputs(settings: Settings, codec: Codec, topics: Sequence[str],
                  printer: OutputPrinter, *, from_beginning: bool = True,
                  stop: Callable[[], bool] | None = None) -> None:
    """Print outputs until ``stop()`` is true (or forever; Ctrl-C ends it)."""
    with OutputReader(settings, codec, topics, from_beginning=from_beginning) as reader:
        while stop is None or not stop():
            for topic, type_name, record in reader.poll(0.5):
                printer.handle(topic, type_name, record)
