"""The deployment files agree with the code: docker-compose.yml, the Dockerfile and deploy/.

They are not run here (no Docker or Kubernetes in the test run), so these tests check what
would otherwise only fail on a user's machine: every file parses, every mounted path exists,
every CHURN_ variable is a real setting, compose's broker matches scripts/kafka-local.sh,
every metric a rule or dashboard queries is exported, and the probes hit the real endpoints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.metrics import Metrics
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
KAFKA_LOCAL = REPO / "scripts" / "kafka-local.sh"
RULES = DEPLOY / "prometheus" / "rules.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))

YAML_FILES = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml"), COMPOSE])
JSON_FILES = sorted(DEPLOY.rglob("*.json"))

CHURN_VAR = re.compile(r"\bCHURN_[A-Z0-9_]+\b")
#: Broker properties that name hosts, ports or paths: they differ between a local JVM and a
#: container by design. Every other property the script sets must be the same in compose.
NETWORK_OR_PATH = {
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "controller.quorum.voters",
    "log.dirs",
}


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def load_yaml(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def compose() -> dict[str, Any]:
    (doc,) = load_yaml(COMPOSE)
    return doc


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment as a dict, whichever syntax it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for path in K8S for doc in load_yaml(path) if "kind" in doc]


def k8s_containers() -> Iterator[dict[str, Any]]:
    for obj in k8s_objects():
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        yield from spec.get("containers", [])


def settings_names() -> set[str]:
    return {f"CHURN_{name.upper()}" for name in Settings.model_fields}


# -- every file parses ------------------------------------------------------------------------


def test_there_are_deployment_files_to_check() -> None:
    assert COMPOSE in YAML_FILES
    assert PROMETHEUS in YAML_FILES and RULES in YAML_FILES
    assert DASHBOARDS and K8S


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_yaml_file_parses(path: Path) -> None:
    assert load_yaml(path), f"{rel(path)} is empty"


@pytest.mark.parametrize("path", JSON_FILES, ids=rel)
def test_json_file_parses(path: Path) -> None:
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)


# -- docker-compose.yml -------------------------------------------------------------------------


def mounted_sources(service: dict[str, Any]) -> Iterator[str]:
    """Host paths a service bind-mounts (named volumes are not paths)."""
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                yield str(volume["source"])
            continue
        source = str(volume).split(":", 1)[0]
        if source.startswith((".", "/", "~")):
            yield source


def test_every_path_compose_mounts_exists_in_the_repo() -> None:
    services = compose()["services"]
    mounted = [(name, src) for name, svc in services.items() for src in mounted_sources(svc)]
    assert mounted, "compose mounts no files: the Prometheus and Grafana config are missing"
    for name, source in mounted:
        assert not source.startswith(("/", "~")), f"{name} mounts an absolute path {source}"
        assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"


def test_compose_builds_from_the_repo_dockerfile() -> None:
    for name, service in compose()["services"].items():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile",
                                                                            "Dockerfile")
        assert (REPO / context / dockerfile).is_file(), f"{name} builds a missing Dockerfile"


def test_compose_churn_variables_are_settings() -> None:
    known = settings_names()
    seen = set()
    for name, service in compose()["services"].items():
        for var in environment(service):
            if var.startswith("CHURN_"):
                assert var in known, f"compose service {name} sets unknown setting {var}"
                seen.add(var)
    assert {"CHURN_APP_ID", "CHURN_KAFKA_BOOTSTRAP", "CHURN_WEB_HOST"} <= seen


def test_dockerfile_copies_files_that_exist_and_reach_the_build_context() -> None:
    allowed = {line[1:].strip().rstrip("/") for line in
               (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
               if line.startswith("!")}
    copied = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            copied += [w.rstrip("/") for w in words[1:-1] if not w.startswith("--")]
    assert "pyproject.toml" in copied and "constraints.txt" in copied
    for source in copied:
        assert (REPO / source).exists(), f"the Dockerfile copies missing {source}"
        assert source in allowed, f".dockerignore keeps {source} out of the build context"


def test_dockerfile_churn_variables_are_settings() -> None:
    used = set(CHURN_VAR.findall(DOCKERFILE.read_text(encoding="utf-8")))
    assert used and used <= settings_names()


def workers() -> dict[str, dict[str, Any]]:
    services = compose()["services"]
    found = {n: s for n, s in services.items() if (s.get("command") or [None])[0] == "worker"}
    assert len(found) >= 2, "compose should run at least two workers"
    return found


def test_compose_workers_form_one_group_with_their_own_state() -> None:
    found = workers()
    app_ids = {environment(s).get("CHURN_APP_ID") for s in found.values()}
    assert len(app_ids) == 1 and None not in app_ids
    state: list[str] = []
    for name, service in found.items():
        env = environment(service)
        assert env.get("CHURN_KAFKA_BOOTSTRAP") == "kafka:9092", name
        assert env.get("CHURN_WEB_HOST") == "0.0.0.0", name
        data_dir = env.get("CHURN_DATA_DIR", "/var/lib/churnwatch")
        mounts = [v.split(":") for v in service.get("volumes", []) if isinstance(v, str)]
        volumes = [src for src, dst, *_ in mounts if dst == data_dir]
        assert len(volumes) == 1, f"{name} has no volume at its CHURN_DATA_DIR {data_dir}"
        state.append(volumes[0])
        assert "/ready" in " ".join(service["healthcheck"]["test"]), name
    assert len(set(state)) == len(state), "two workers share a state volume"
    ids = [environment(s).get("CHURN_WORKER_ID") for s in found.values()]
    assert None not in ids and len(set(ids)) == len(ids), "workers need distinct worker ids"


def test_prometheus_scrapes_every_compose_worker_on_its_web_port() -> None:
    (config,) = load_yaml(PROMETHEUS)
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]}
    for name, service in workers().items():
        port = environment(service).get("CHURN_WEB_PORT", str(Settings.model_fields[
            "web_port"].default))
        assert f"{name}:{port}" in targets
    assert str(RULES.relative_to(DEPLOY / "prometheus")) in " ".join(config["rule_files"])


# -- compose's Kafka is the broker of scripts/kafka-local.sh -------------------------------------


def script_properties() -> dict[str, str]:
    """The server.properties that scripts/kafka-local.sh writes, as a dict."""
    text = KAFKA_LOCAL.read_text(encoding="utf-8")
    match = re.search(r'cat >"\$\{dir\}/server\.properties" <<EOF\n(.*?)\nEOF', text, re.S)
    assert match, "server.properties heredoc not found in scripts/kafka-local.sh"
    props = {}
    for line in match.group(1).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def env_to_property(name: str) -> str:
    """The apache/kafka image's mapping: KAFKA_A_B -> a.b, __ -> _, ___ -> -."""
    body = name.removeprefix("KAFKA_").lower()
    return body.replace("___", "\0").replace("__", "\1").replace("_", ".").replace(
        "\1", "_").replace("\0", "-")


def compose_kafka_properties() -> dict[str, str]:
    kafka = compose()["services"]["kafka"]
    assert str(kafka["image"]).startswith("apache/kafka:")
    return {env_to_property(k): v.lower() for k, v in environment(kafka).items()
            if k.startswith("KAFKA_")}


def test_env_to_property_follows_the_image_convention() -> None:
    assert env_to_property("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS") == (
        "group.initial.rebalance.delay.ms")
    assert env_to_property("KAFKA_ABC__DEF") == "abc_def"
    assert env_to_property("KAFKA_ABC___DEF") == "abc-def"


def test_compose_kafka_matches_the_local_script() -> None:
    script = script_properties()
    broker = compose_kafka_properties()
    for key, value in script.items():
        if key in NETWORK_OR_PATH:
            continue
        assert key in broker, f"compose's kafka does not set {key} (script: {value})"
        assert broker[key] == value.lower(), f"{key}: compose {broker[key]}, script {value}"


def test_both_brokers_are_set_up_for_one_node_and_fast_rebalances() -> None:
    for props in (script_properties(), compose_kafka_properties()):
        assert props["group.initial.rebalance.delay.ms"] == "0"
        assert props["auto.create.topics.enable"] == "false"
        factors = {k: v for k, v in props.items() if k.endswith("replication.factor")}
        assert {"default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"} <= set(factors)
        assert set(factors.values()) == {"1"}
        assert "broker" in props["process.roles"] and "controller" in props["process.roles"]


# -- metrics queried by the alert rules and the dashboards exist ----------------------------------

PROMQL_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                   "group_right", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (not functions, keywords, labels or durations)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges, including Grafana's $__rate_interval
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr):
        if match.group(2) is None and match.group(1) not in PROMQL_KEYWORDS:
            names.add(match.group(1))
    return names


def test_metric_names_ignores_functions_labels_and_durations() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, step) (rate(x_bucket{step="a"}[5m]))) > 0.5'
            " and sum(increase(y_total[1h] offset 1d)) > 3 * z")
    assert metric_names(expr) == {"x_bucket", "y_total", "z"}


def exported_names() -> set[str]:
    suffixes = {"counter": ("_total", "_created"),
                "histogram": ("_bucket", "_sum", "_count", "_created")}
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names.update(family.name + s for s in suffixes.get(family.type, ()))
    return names


def rule_expressions() -> list[str]:
    (config,) = load_yaml(RULES)
    return [str(rule["expr"]) for group in config["groups"] for rule in group["rules"]]


def dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_expressions(path: Path) -> list[str]:
    board = json.loads(path.read_text(encoding="utf-8"))
    return [str(t["expr"]) for p in dashboard_panels(board["panels"])
            for t in p.get("targets", [])]


def test_alert_rules_query_only_exported_metrics() -> None:
    known = exported_names() | {"up"}
    expressions = rule_expressions()
    assert expressions
    for expr in expressions:
        names = metric_names(expr)
        assert names, f"no metric found in rule {expr!r}"
        assert names <= known, f"rule {expr!r} queries unknown {names - known}"


def test_the_alert_rules_cover_the_expected_failures() -> None:
    used = set().union(*(metric_names(e) for e in rule_expressions()))
    assert {"up", "churnwatch_dead_letters_total", "churnwatch_outputs_total",
            "churnwatch_processing_seconds_bucket"} <= used


@pytest.mark.parametrize("path", DASHBOARDS, ids=rel)
def test_dashboard_queries_only_exported_metrics(path: Path) -> None:
    known = exported_names() | {"up"}
    expressions = dashboard_expressions(path)
    assert expressions
    for expr in expressions:
        names = metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        assert names <= known, f"{rel(path)}: {expr!r} queries unknown {names - known}"


# -- Kubernetes ----------------------------------------------------------------------------------


def test_k8s_churn_variables_are_settings() -> None:
    known = settings_names()
    used = set()
    for obj in k8s_objects():
        if obj["kind"] == "ConfigMap":
            used.update(k for k in obj.get("data", {}) if k.startswith("CHURN_"))
    config_keys = set(used)
    for container in k8s_containers():
        used.update(e["name"] for e in container.get("env", []) if e["name"].startswith("CHURN_"))
    assert {"CHURN_DATA_DIR", "CHURN_WEB_HOST", "CHURN_KAFKA_BOOTSTRAP"} <= config_keys
    assert used <= known, f"unknown settings: {used - known}"


def test_k8s_workers_take_their_stable_pod_name_as_worker_id() -> None:
    # a StatefulSet pod keeps its name across restarts, and no two pods share one
    (worker,) = [c for c in k8s_containers() if c["name"] == "worker"]
    (env,) = [e for e in worker["env"] if e["name"] == "CHURN_WORKER_ID"]
    assert env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "CHURN_WORKER_ID" not in configmap()  # one value for all pods would fence them


def configmap() -> dict[str, str]:
    (cm,) = [o for o in k8s_objects() if o["kind"] == "ConfigMap"]
    return {str(k): str(v) for k, v in cm["data"].items()}


def test_k8s_probes_hit_live_and_ready_on_the_web_port() -> None:
    (sts,) = [o for o in k8s_objects() if o["kind"] == "StatefulSet"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    web_port = int(configmap()["CHURN_WEB_PORT"])
    expected = {"livenessProbe": "/live", "readinessProbe": "/ready", "startupProbe": "/live"}
    for probe, path in expected.items():
        if probe == "startupProbe" and probe not in container:
            continue
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        port = ports.get(get["port"], get["port"])
        assert port == web_port, f"{probe} checks port {port}, the worker serves {web_port}"
    assert container["resources"]["requests"]


def test_k8s_state_volume_is_mounted_at_the_data_dir() -> None:
    (sts,) = [o for o in k8s_objects() if o["kind"] == "StatefulSet"]
    claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts.get(configmap()["CHURN_DATA_DIR"]) in claims


def test_k8s_topics_job_runs_the_topics_command() -> None:
    jobs = [o for o in k8s_objects() if o["kind"] == "Job"]
    commands = [c.get("args", []) for job in jobs
                for c in job["spec"]["template"]["spec"]["containers"]]
    assert ["topics"] in commands


def test_k8s_metrics_service_is_annotated_for_prometheus() -> None:
    services = [o for o in k8s_objects() if o["kind"] == "Service"]
    annotated = [s for s in services
                 if s["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"]
    assert annotated
    for service in annotated:
        notes = service["metadata"]["annotations"]
        assert notes["prometheus.io/path"] == "/metrics"
        assert notes["prometheus.io/port"] == configmap()["CHURN_WEB_PORT"]
    assert any(s["spec"].get("clusterIP") == "None" for s in services), "no headless Service"
