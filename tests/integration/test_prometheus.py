"""A real Prometheus scrapes a real worker: the shipped alert rules load and evaluate, and
every query of the Grafana dashboard parses and, for the core panels, returns data.

Prometheus is the ``prometheus`` binary of Debian's ``prometheus`` package, which CI
installs (.ci/run); without it this test fails rather than skips.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.codec import build_codec
from streams.kafka_io import produce_raw, produce_records
from streams.processes import free_port, stop_process
from streams.settings import TOPIC_PURCHASES, Settings
from tests.integration.workers import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "churnwatch.json"

#: Grafana's built-in variables, replaced by concrete values before querying Prometheus.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
}
#: Panels whose queries must return data (and, for rates, a positive total) once records
#: flowed while Prometheus was scraping.
CORE_PANELS = {
    "Workers up": "positive",
    "Records consumed / s": "positive",
    "Dead letters / s": "positive",
    "Records consumed per step": "positive",
    "Events accepted per step": "positive",
    "Dead letters per reason": "positive",
    "Outputs per type and band": "positive",
    "Health score changes per band": "positive",
    "Processing latency p50 / p95 per step": "data",
    "Consumer lag per topic": "data",
    "End-to-end latency p50 / p95 per output": "data",
    "Customers per band": "positive",
    "Scored customers per partition": "positive",
    "Customers per segment and activity": "positive",
}

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def purchase(customer: str, n: int, day: float) -> tuple[str, dict[str, Any]]:
    return ("Purchase", {
        "event_id": f"{customer}-p-{n}", "customer_id": customer,
        "occurred_at": T0 + timedelta(days=day), "order_id": f"{customer}-o-{n}",
        "amount_minor": 2500, "currency": "EUR", "items": 1, "channel": "web"})


def grafana_to_promql(expr: str) -> str:
    """The expression with Grafana's variables ($__rate_interval, ${__interval}) filled in."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in GRAFANA_VARIABLES:
            raise AssertionError(f"dashboard query uses unknown variable ${name}: {expr}")
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, rows included."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((panel.get("title", ""), grafana_to_promql(target["expr"])))
            walk(panel.get("panels", []))

    walk(board["panels"])
    return found


class PrometheusServer:
    """A ``prometheus`` child scraping the given targets every second, with rules.yml."""

    def __init__(self, binary: str, targets: list[str], workdir: Path) -> None:
        self.port = free_port()
        self.log_path = workdir / "prometheus.log"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "churnwatch", "metrics_path": "/metrics",
                                "static_configs": [{"targets": targets}]}],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config_path}",
             f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}\n"
                                 f"{self.log_tail()}")

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET an API path; the decoded JSON body (errors included) or a failure."""
        self._alive()
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                body: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            exc.close()
        return body

    def ready(self) -> bool:
        self._alive()
        try:
            with urllib.request.urlopen(self.base_url + "/-/ready", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except urllib.error.HTTPError as exc:
            exc.close()
            return False
        except OSError:
            return False

    def query(self, promql: str) -> dict[str, Any]:
        return self.api("/api/v1/query", query=promql)

    def stop(self, timeout: float = 30) -> None:
        try:
            stop_process(self.proc, timeout)
        finally:
            self._log.close()


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the prometheus binary is not on PATH: install Debian's prometheus "
                    "package (apt-get install prometheus; .ci/run does it in CI)",
                    pytrace=False)
    return binary


@pytest.fixture
def settings(event_settings: Callable[..., Settings],
             drop_topics: Callable[[Settings], None]) -> Settings:
    s = event_settings(gauges_interval_s=0.5)
    drop_topics(s)
    return s


@pytest.fixture
def prometheus(prometheus_binary: str, worker: WorkerProcess,
               tmp_path: Path) -> Iterator[PrometheusServer]:
    target = worker.base_url.removeprefix("http://")
    server = PrometheusServer(prometheus_binary, [target], tmp_path)
    try:
        wait_for(server.ready, timeout=60, what="prometheus /-/ready",
                 on_timeout=server.log_tail)
        yield server
    finally:
        server.stop()


def feed(settings: Settings, worker: WorkerProcess, customers: list[str],
         consumed: float, dead: float) -> tuple[float, float]:
    """Three purchases per customer and one malformed record; wait until all are counted."""
    codec = build_codec(settings)
    records = [purchase(c, n, float(n)) for c in customers for n in range(3)]
    produce_records(settings, codec, records)
    produce_raw(settings, TOPIC_PURCHASES, customers[0].encode(), b"not avro at all")
    consumed += len(records)
    dead += 1
    worker.wait_metric("churnwatch_events_applied_total", consumed)
    worker.wait_metric("churnwatch_dead_letters_total", dead, step="purchases")
    return consumed, dead


def samples(answer: dict[str, Any]) -> list[float]:
    result = answer["data"]["result"]
    if answer["data"]["resultType"] == "scalar":
        return [float(result[1])]
    return [float(item["value"][1]) for item in result]


def test_prometheus_scrapes_a_worker_loads_the_rules_and_serves_the_dashboard(
        settings: Settings, worker: WorkerProcess, prometheus: PrometheusServer) -> None:
    # records before the first scrape create the labelled series ...
    consumed, dead = feed(settings, worker, ["alice", "bob"], 0, 0)

    def target_up() -> bool:
        targets = prometheus.api("/api/v1/targets")["data"]["activeTargets"]
        return len(targets) == 1 and targets[0]["health"] == "up"

    wait_for(target_up, timeout=60, what="prometheus target up",
             on_timeout=lambda: json.dumps(prometheus.api("/api/v1/targets"), indent=1))

    # ... and records while Prometheus scrapes make the rates positive
    feed(settings, worker, ["carol", "dave"], consumed, dead)

    queries = dashboard_queries()
    titles = {title for title, _ in queries}
    assert set(CORE_PANELS) <= titles, f"core panels missing: {set(CORE_PANELS) - titles}"

    for title, promql in queries:
        answer = prometheus.query(promql)
        assert answer.get("status") == "success", f"{title}: {promql}\n{answer}"

    core = [(title, promql) for title, promql in queries if title in CORE_PANELS]

    def core_panels_show_data() -> bool:
        for title, promql in core:
            values = samples(prometheus.query(promql))
            if not values or (CORE_PANELS[title] == "positive" and not sum(values) > 0):
                return False
        return True

    def core_values() -> str:
        return "\n".join(f"{title}: {promql} -> {samples(prometheus.query(promql))}"
                         for title, promql in core)

    wait_for(core_panels_show_data, timeout=60, what="data in every core dashboard panel",
             on_timeout=core_values)
    assert samples(prometheus.query('sum(up{job="churnwatch"})')) == [1.0]

    # the alert rules are loaded and evaluate without error
    with RULES.open(encoding="utf-8") as handle:
        groups = yaml.safe_load(handle)["groups"]
    expected = {g["name"]: sorted(r["alert"] for r in g["rules"]) for g in groups}

    def rules_evaluated() -> bool:
        loaded = prometheus.api("/api/v1/rules")["data"]["groups"]
        names = {g["name"]: sorted(r["name"] for r in g["rules"]) for g in loaded}
        return names == expected and all(
            r["health"] == "ok" for g in loaded for r in g["rules"])

    wait_for(rules_evaluated, timeout=60, what=f"rule groups {expected} evaluated",
             on_timeout=lambda: json.dumps(prometheus.api("/api/v1/rules"), indent=1))

    alerts = prometheus.api("/api/v1/alerts")["data"]["alerts"]
    assert not [a for a in alerts if a["labels"]["alertname"] == "ChurnwatchWorkerDown"]
