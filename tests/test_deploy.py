"""Static and live checks of deploy/: Dockerfiles, compose, Grafana, Prometheus rules and
Kubernetes manifests. No container engine runs here, so images are linted, commands are
parsed by the real click CLI, manifests are validated against the bundled Kubernetes
schemas, and every metric the dashboard and the alerts query is checked against a real
scrape of the evaluator's registry."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from gmai_eval.clients.cli.main import cli
from gmai_eval.server.api.auth import TokenConfig
from gmai_eval.server.app import SERVICE_NAME, ServeConfig, check_config
from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.metrics.collector import build_registry
from gmai_eval.server.store import Database
from gmai_eval.server.tls import ServerTls
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from tests._metrics_helpers import (
    DEPLOY,
    REPO,
    Answer,
    add_benchmark,
    add_run,
    fetch,
    free_port,
    require_tool,
    serve_registry,
    synthetic_answers,
)

K8S_VERSION = "1.33.0"
NAMESPACE = "gmai-eval"
EVALUATOR_PORTS = {50050, 9464}
EVALUATOR_HEALTH_PORT = 8081
"""The evaluator's plaintext health-only port, for the kubelet's native gRPC probe only."""
EVALUATOR_UI_PORT = 8080
"""The live viewer's port (``--ui-port``): exposed, published and in the Service like the API's."""
MODEL_PORTS = {50051, 9465}
BUILTIN_METRICS = {"up"}
"""Series Prometheus itself creates for each target."""


# -- helpers ---------------------------------------------------------------------------------


def dockerfile(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in (DEPLOY / name).read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    assert not buf, f"{name}: dangling line continuation"
    return out


def exec_form(args: str) -> list[str]:
    """The argument list of an exec-form (JSON) or shell-form instruction."""
    args = re.sub(r"^(--\S+\s+)+", "", args) if not args.startswith("[") else args
    return list(json.loads(args)) if args.startswith("[") else shlex.split(args)


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Instructions of the last build stage."""
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    return instructions[starts[-1]:]


def parse_cli(group: click.Group, argv: list[str]) -> click.Context:
    """Parse ``argv`` down to the leaf command with the real CLI (nothing is run).

    Raises:
        click.UsageError: an unknown option, a missing required one or a bad value.
    """
    cmd: click.Command = group
    name = group.name or "cli"
    parent: click.Context | None = None
    args = list(argv)
    while True:
        ctx = cmd.make_context(name, args, parent=parent)
        if not isinstance(cmd, click.Group):
            return ctx
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        sub_name, sub, args = cmd.resolve_command(ctx, rest)
        assert sub is not None and sub_name is not None
        name, cmd, parent = sub_name, sub, ctx


def k8s_docs() -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every (file, document) under deploy/k8s."""
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


def k8s_find(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def model_cli() -> click.Group:
    """The ``gmai-model`` command group (the console script named in pyproject)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    module, _, attr = pyproject["project"]["scripts"]["gmai-model"].partition(":")
    mod = __import__(module, fromlist=["cli"])
    command = getattr(mod, "cli", None)
    assert isinstance(command, click.Group), f"{module} has no click group 'cli' (entry point {attr})"
    return command


IN_IMAGE_FILES = ("/models/model.pt", "/tmp/train.tsv")
"""Files that exist only inside the containers; click checks that path options exist."""


def localize(args: list[str], tmp_path: Path) -> list[str]:
    """``args`` with in-container file paths replaced by real (empty) local files."""
    out = []
    for arg in args:
        for path in IN_IMAGE_FILES:
            if arg == path or arg.endswith("=" + path):
                local = tmp_path / Path(path).name
                local.touch()
                arg = arg[: len(arg) - len(path)] + str(local)
        out.append(arg)
    return out


_PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "time", "rate", "irate", "increase", "delta",
    "histogram_quantile", "max_over_time", "min_over_time", "avg_over_time", "abs", "vector",
    "scalar", "label_values", "absent", "clamp_min", "clamp_max", "humanize",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression (or a Grafana label_values query)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # strings, Grafana variables inside
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors ($__rate_interval, 5m)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+\S+", " ", text)
    text = re.sub(r"label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^)]*\)", r" \1 ", text)
    names = set(re.findall(r"(?<![\w$.])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w(])", text))
    return {n for n in names if n not in _PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]?", n)}


def dashboard() -> dict[str, Any]:
    return dict(json.loads((DEPLOY / "grafana" / "dashboards" / "gmai-eval.json").read_text()))


def dashboard_exprs() -> list[str]:
    d = dashboard()
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    for var in d["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(var["query"]["query"] if isinstance(var["query"], dict) else var["query"])
    return exprs


def alert_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


@pytest.fixture(scope="module")
def exported_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name a populated evaluator registry serves over HTTP."""
    db = Database(tmp_path_factory.mktemp("names") / "eval.db")
    try:
        answers = [*synthetic_answers(40), Answer("Counting", "", "Image level", "CT", "correct", {"A": 0.8, "B": 0.2})]
        bid = add_benchmark(db, "gmai-val", answers)
        add_run(db, run_id="r-1", model="m", version="1", benchmark_id=bid, answers=answers,
                finished_at="2026-11-01T00:00:00+00:00")
        add_run(db, run_id="r-2", model="m", version="2", benchmark_id=bid, answers=answers,
                finished_at="2026-11-02T00:00:00+00:00")
        registry, metrics = build_registry(db)
        touched = 0
        for metric in vars(metrics).values():
            if not isinstance(metric, (Counter, Gauge, Histogram)):
                continue
            names = metric._labelnames
            child = metric.labels(*["x"] * len(names)) if names else metric
            if isinstance(child, Counter):
                child.inc()
            elif isinstance(child, Gauge):
                child.set(1)
            else:
                child.observe(1)
            touched += 1
        assert touched >= 10
        with serve_registry(registry) as url:
            text = fetch(url)
    finally:
        db.close()
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


# -- Prometheus ------------------------------------------------------------------------------


ALERT_TESTS = ("alerts_test.yml", "alerts_test_days.yml")
"""promtool's unit tests of alerts.yml; the alerts whose windows are days are evaluated
every 10 minutes in the second file, every minute in the first."""


def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    promtool = require_tool("promtool")
    check = subprocess.run([promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([promtool, "test", "rules", *ALERT_TESTS], cwd=DEPLOY / "prometheus",
                          capture_output=True, text=True, timeout=120)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert unit.stdout.count("SUCCESS") == len(ALERT_TESTS)


def test_alert_unit_tests_cover_every_alert() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tested = {
        a["alertname"]
        for name in ALERT_TESTS
        for t in yaml.safe_load((DEPLOY / "prometheus" / name).read_text())["tests"]
        for a in t.get("alert_rule_test", [])
        if a.get("exp_alerts")
    }
    assert alerts == tested


def test_compose_prometheus_config_passes_promtool() -> None:
    result = subprocess.run([require_tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_the_dashboard_and_alerts_query_is_exported(exported_names: set[str]) -> None:
    assert "gmai_eval_accuracy_ratio" in exported_names
    assert "gmai_eval_answer_request_duration_seconds_bucket" in exported_names
    for source, exprs in (("dashboard", dashboard_exprs()), ("alerts.yml", alert_exprs())):
        used = set().union(*(promql_metric_names(e) for e in exprs))
        assert len(used) >= 5, f"{source}: found too few metric names: {sorted(used)}"
        missing = used - exported_names - BUILTIN_METRICS
        assert not missing, f"{source} queries metrics the evaluator does not export: {sorted(missing)}"


def test_metric_name_extraction_finds_names_and_ignores_labels() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, model) (rate(foo_seconds_bucket{model=~"$model"}[5m])))'
            ' / ignoring (code) group_left bar_total offset 1h and on (x) baz{a="b"} > 0.5')
    assert promql_metric_names(expr) == {"foo_seconds_bucket", "bar_total", "baz"}
    assert promql_metric_names("label_values(gmai_eval_model_info, model)") == {"gmai_eval_model_info"}
    assert promql_metric_names("time() - gmai_eval_last_run_completion_timestamp_seconds > 7 * 86400") == {
        "gmai_eval_last_run_completion_timestamp_seconds"
    }


# -- Grafana ---------------------------------------------------------------------------------


def test_dashboard_has_the_required_panels() -> None:
    d = dashboard()
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    exprs = "\n".join(dashboard_exprs())
    for needle in (
        'gmai_eval_accuracy_ratio{', "gmai_eval_accuracy_ci_lower_ratio", "gmai_eval_accuracy_ci_upper_ratio",
        "histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,",
        "gmai_eval_answer_request_duration_seconds_bucket", "by (model, code)",
        "gmai_eval_run_progress_ratio", "gmai_eval_inflight_requests", "gmai_eval_concurrency_limit",
        "gmai_eval_model_up",
    ):
        assert needle in exprs, needle
    band = [p for p in d["panels"] if "Wilson" in p["title"]]
    assert band and any("fillBelowTo" in json.dumps(p["fieldConfig"]) for p in band)
    legends = [t.get("legendFormat", "") for p in band for t in p["targets"]]
    assert any("{{model_version}}" in lg for lg in legends)
    for p in d["panels"]:
        if p["type"] != "row":
            assert p["targets"], p["title"]
            assert p["datasource"]["uid"] == "${datasource}"


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    prov = DEPLOY / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yaml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    boards = yaml.safe_load((prov / "dashboards" / "gmai-eval.yaml").read_text())
    path = boards["providers"][0]["options"]["path"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["grafana"]["volumes"] if v.startswith(".")}
    assert (DEPLOY / mounts[path] / "gmai-eval.json").is_file()
    assert (DEPLOY / mounts["/etc/grafana/provisioning"]).resolve() == prov.resolve()


# -- Dockerfiles -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Dockerfile.evaluator", "Dockerfile.model"])
def test_dockerfile_basics(name: str) -> None:
    ins = dockerfile(name)
    final = final_stage(ins)
    assert final[0] == ("FROM", "python:3.11-slim")
    users = [args for word, args in final if word == "USER"]
    assert users, f"{name}: no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{name} runs as root"
    assert [w for w, _ in final].index("USER") < [w for w, _ in final].index("ENTRYPOINT")
    health = [args for word, args in final if word == "HEALTHCHECK"]
    assert len(health) == 1 and "gmai-health-check" in health[0]
    for word, args in ins:
        if word == "COPY" and "--from=" not in args:
            for src in exec_form(args)[:-1]:
                assert (REPO / src).exists(), f"{name}: COPY source {src} missing"


def test_evaluator_image_has_no_torch_and_serves_on_the_configured_ports() -> None:
    ins = dockerfile("Dockerfile.evaluator")
    for word, args in ins:
        if word in ("RUN", "COPY", "ENV", "ARG"):
            assert "torch" not in args.lower(), f"evaluator image mentions torch: {word} {args}"
    final = final_stage(ins)
    exposed = {int(p) for word, args in final if word == "EXPOSE" for p in args.split()}
    assert exposed == EVALUATOR_PORTS | {EVALUATOR_UI_PORT}
    entry = exec_form(next(a for w, a in final if w == "ENTRYPOINT"))
    cmd = exec_form(next(a for w, a in final if w == "CMD"))
    assert entry[:2] == ["gmai-eval", "serve"]
    params = parse_cli(cli, [*entry[1:], *cmd]).params
    assert {params["port"], params["metrics_port"]} == EVALUATOR_PORTS
    assert params["ui_port"] == EVALUATOR_UI_PORT
    assert str(params["db_path"]).startswith("/var/lib/gmai-eval/")
    assert any(w == "VOLUME" and "/var/lib/gmai-eval" in a for w, a in final)


def test_model_image_pins_the_cpu_torch_of_the_extra() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pin = next(d for d in pyproject["project"]["optional-dependencies"]["torch"] if d.startswith("torch"))
    assert re.fullmatch(r"torch==[\d.]+", pin)
    runs = [args for word, args in dockerfile("Dockerfile.model") if word == "RUN"]
    torch_installs = [r for r in runs if re.search(r"\btorch\b", r)]
    assert torch_installs
    for r in torch_installs:
        for token in re.findall(r"(?<![\[\w])torch[^\s'\"]*", r):  # not the '.[torch]' extra
            assert token == pin, f"unpinned or mismatched torch {token!r} (pyproject: {pin})"
        assert "download.pytorch.org/whl/cpu" in r, "torch must come from the CPU index"
    assert any("'.[torch]'" in r for r in runs)
    final = final_stage(dockerfile("Dockerfile.model"))
    exposed = {int(p) for word, args in final if word == "EXPOSE" for p in args.split()}
    assert exposed == MODEL_PORTS
    entry = exec_form(next(a for w, a in final if w == "ENTRYPOINT"))
    assert entry == ["gmai-model", "serve", "reference"]


def test_model_commands_parse_with_the_real_model_cli(tmp_path: Path) -> None:
    command = model_cli()
    final = final_stage(dockerfile("Dockerfile.model"))
    entry = exec_form(next(a for w, a in final if w == "ENTRYPOINT"))
    cmd = exec_form(next(a for w, a in final if w == "CMD"))
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    k8s_args = k8s_find("Deployment", "model")["spec"]["template"]["spec"]["containers"][0]["args"]
    for args in (cmd, compose["services"]["model"]["command"], k8s_args):
        params = parse_cli(command, localize([*entry[1:], *args], tmp_path)).params
        assert params["port"] == 50051
        assert params["metrics_port"] == 9465
        assert params["max_connection_age_ms"] and params["max_connection_age_ms"] >= 60_000
        assert params["weights"].name == "model.pt"
        # a container is reached on its own address, and gmai-model refuses plaintext there
        # unless told: every deployment says --insecure (or gives TLS) on purpose
        assert params["host"] == "0.0.0.0"
        assert params["insecure"] or params["tls_cert"], args
    # the compose one-shot writes the weights the model service reads
    script = compose["services"]["train-weights"]["command"][0]
    segments = [seg.strip(" ()") for seg in re.split(r"&&|\|\|", script)]
    train = next(shlex.split(seg) for seg in segments if seg.startswith("gmai-model train"))
    synth = next(shlex.split(seg) for seg in segments if seg.startswith("gmai-eval synth"))
    parse_cli(cli, synth[1:])
    trained = parse_cli(command, localize(train[1:], tmp_path)).params
    assert str(trained["out"]).endswith("model.pt")
    assert "/models/model.pt" in script


# -- compose ---------------------------------------------------------------------------------


def test_compose_services_files_and_ports() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"evaluator", "model", "prometheus", "grafana"} <= set(services)
    for name, svc in services.items():
        if "build" in svc:
            context = (DEPLOY / svc["build"]["context"]).resolve()
            assert context == REPO
            assert (context / svc["build"]["dockerfile"]).is_file()
        image = svc.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} missing"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
        for dep in svc.get("depends_on", []):
            assert dep in services
    evaluator = services["evaluator"]
    params = parse_cli(cli, ["serve", *evaluator["command"]]).params
    published = {int(p.split(":")[-1]) for p in evaluator["ports"]}
    assert published == {params["port"], params["metrics_port"], params["ui_port"]} == EVALUATOR_PORTS | {EVALUATOR_UI_PORT}
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    reg = services["register-model"]
    add = parse_cli(cli, reg["command"]).params
    assert add["endpoints"] == ("model:50051",) and add["server"] == "evaluator:50050"
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {"evaluator:9464", "model:9465"}
    model_ports = {int(p) for p in services["model"]["expose"]}
    assert model_ports == MODEL_PORTS


# -- Kubernetes ------------------------------------------------------------------------------


def test_manifests_validate_strictly_against_the_bundled_schemas() -> None:
    import kubernetes_validate

    docs = list(k8s_docs())
    assert len(docs) >= 10
    for path, doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {exc}")
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, f"{path.name} {doc['kind']}"


def test_the_validator_rejects_a_broken_manifest() -> None:
    import kubernetes_validate

    doc = k8s_find("Deployment", "evaluator")
    broken = json.loads(json.dumps(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSecond"] = 5
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_evaluator_is_a_single_writer_with_storage_tls_and_tokens() -> None:
    dep = k8s_find("Deployment", "evaluator")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    params = parse_cli(cli, ["serve", *container["args"]]).params
    assert {params["port"], params["metrics_port"]} == EVALUATOR_PORTS
    assert {p["containerPort"] for p in container["ports"]} == EVALUATOR_PORTS | {params["health_port"], params["ui_port"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts.values()) <= set(volumes)

    def volume_of(path: str) -> dict[str, Any]:
        for mount, name in mounts.items():
            if path.startswith(mount + "/"):
                return dict(volumes[name])
        raise AssertionError(f"{path} is not on a mounted volume")

    claim = volume_of(str(params["db_path"]))["persistentVolumeClaim"]["claimName"]
    assert k8s_find("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    for opt in ("tls_cert", "tls_key", "tls_client_ca", "admin_token_file", "read_token_file"):
        assert params[opt], opt
        assert "secret" in volume_of(params[opt]), opt
    assert not params["insecure"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    svc = k8s_find("Service", "evaluator")
    assert {p["port"] for p in svc["spec"]["ports"]} == EVALUATOR_PORTS | {EVALUATOR_UI_PORT}


def test_evaluator_probes_use_the_native_grpc_probe_on_the_health_only_port() -> None:
    pod = k8s_find("Deployment", "evaluator")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    params = parse_cli(cli, ["serve", *container["args"]]).params
    assert params["health_port"] == EVALUATOR_HEALTH_PORT
    assert params["health_host"] == "0.0.0.0"  # the kubelet calls the pod IP
    assert params["tls_client_ca"], "the main port keeps mutual TLS"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert set(container[probe]) & {"exec", "httpGet", "tcpSocket"} == set(), probe
        assert container[probe]["grpc"] == {"port": EVALUATOR_HEALTH_PORT, "service": SERVICE_NAME}, probe
    grace = pod["terminationGracePeriodSeconds"]
    assert params["grace"] * 2 <= grace, "runs and calls drain (grace each) before the kubelet kills the pod"
    # the health port is for the kubelet only: not in the Service, admitted by no policy
    svc = k8s_find("Service", "evaluator")
    assert EVALUATOR_HEALTH_PORT not in {p["port"] for p in svc["spec"]["ports"]}
    assert all(p["targetPort"] != "health" for p in svc["spec"]["ports"])
    pod_labels = k8s_find("Deployment", "evaluator")["spec"]["template"]["metadata"]["labels"]
    policies = 0
    for _, doc in k8s_docs():
        if doc["kind"] != "NetworkPolicy":
            continue
        selector = doc["spec"]["podSelector"].get("matchLabels", {})
        if not all(pod_labels.get(k) == v for k, v in selector.items()):
            continue
        policies += 1
        for rule in doc["spec"].get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            assert ports, f"NetworkPolicy {doc['metadata']['name']}: an ingress rule without ports opens every port"
            assert EVALUATOR_HEALTH_PORT not in ports, f"NetworkPolicy {doc['metadata']['name']} admits the health port"
    assert policies >= 2, "default-deny and the evaluator's own policy select the evaluator"


# -- the live viewer -------------------------------------------------------------------------


def serve_config(params: dict[str, Any]) -> ServeConfig:
    """The configuration ``gmai-eval serve`` builds from its parsed options (a token file
    stands for its token: the files are secrets mounted at run time, absent here)."""
    tls = ServerTls(params["tls_cert"], params["tls_key"], params["tls_client_ca"]) if params["tls_cert"] else None
    tokens = TokenConfig(admin_token="a" * 32 if params["admin_token_file"] else "",
                         read_token="r" * 32 if params["read_token_file"] else "")
    return ServeConfig(
        db_path=str(params["db_path"]), host=params["host"], port=params["port"],
        metrics_port=params["metrics_port"], metrics_host=params["metrics_host"], tls=tls, tokens=tokens,
        insecure=params["insecure"], health_port=params["health_port"], health_host=params["health_host"],
        ui_port=params["ui_port"], ui_host=params["ui_host"],
    )


def evaluator_deployments() -> dict[str, list[str]]:
    """The ``gmai-eval serve ...`` arguments of each way deploy/ starts the evaluator."""
    final = final_stage(dockerfile("Dockerfile.evaluator"))
    entry = exec_form(next(a for w, a in final if w == "ENTRYPOINT"))
    cmd = exec_form(next(a for w, a in final if w == "CMD"))
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    (container,) = k8s_find("Deployment", "evaluator")["spec"]["template"]["spec"]["containers"]
    return {
        "Dockerfile.evaluator": [*entry[1:], *cmd],
        "compose.yaml": ["serve", *compose["services"]["evaluator"]["command"]],
        "k8s/evaluator.yaml": ["serve", *container["args"]],
    }


def test_every_deployment_serves_the_viewer_on_one_port_within_its_bind_rules() -> None:
    deployments = evaluator_deployments()
    assert len(deployments) == 3
    for where, argv in deployments.items():
        params = parse_cli(cli, argv).params
        assert params["ui_port"] == EVALUATOR_UI_PORT, where
        # a container is reached on its own address, so the viewer listens off loopback...
        assert (params["ui_host"] or params["host"]) == "0.0.0.0", where
        # ...and the evaluator's own start-up rule must accept it: TLS, or --insecure on purpose
        check_config(serve_config(params))
    # the rule has teeth: without --insecure the plaintext compose evaluator would not start
    compose = parse_cli(cli, [a for a in deployments["compose.yaml"] if a != "--insecure"]).params
    assert not compose["tls_cert"]
    with pytest.raises(InvalidArgument, match="viewer"):
        check_config(serve_config({**compose, "host": "127.0.0.1", "ui_host": "0.0.0.0"}))
    # compose publishes it on the host's loopback only, at the same number
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert f"127.0.0.1:{EVALUATOR_UI_PORT}:{EVALUATOR_UI_PORT}" in services["evaluator"]["ports"]


def test_the_kubernetes_viewer_has_the_api_tls_tokens_service_and_policy() -> None:
    pod = k8s_find("Deployment", "evaluator")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    params = parse_cli(cli, ["serve", *container["args"]]).params
    assert params["ui_port"] == EVALUATOR_UI_PORT
    assert not params["ui_host"], "the viewer listens where the API does"
    # HTTPS with the API's certificate, client certificates under mTLS; the token files
    # make it ask for the read-only token on its login page
    assert params["tls_cert"] and params["tls_key"] and params["tls_client_ca"] and not params["insecure"]
    assert params["admin_token_file"] and params["read_token_file"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named["ui"] == params["ui_port"]
    # the Service's ui port targets the container's ui port
    svc = k8s_find("Service", "evaluator")
    (ui,) = [p for p in svc["spec"]["ports"] if p["port"] == EVALUATOR_UI_PORT]
    target = ui["targetPort"]
    assert (named[target] if isinstance(target, str) else target) == params["ui_port"]
    assert ui["appProtocol"] == "https"
    # readiness, liveness and start-up stay on the health-only port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == params["health_port"] != params["ui_port"], probe
    # NetworkPolicy: the viewer is admitted from exactly the API's clients, nobody else
    labels = pod["metadata"]["labels"]

    def sources(port: int) -> list[Any]:
        found = []
        for _, doc in k8s_docs():
            selector = doc["spec"]["podSelector"].get("matchLabels", {}) if doc["kind"] == "NetworkPolicy" else None
            if selector is None or not all(labels.get(k) == v for k, v in selector.items()):
                continue
            for rule in doc["spec"].get("ingress", []):
                if any(p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in rule.get("ports", [])):
                    found += rule["from"]
        return found

    assert sources(params["port"]), "the API is admitted from somewhere"
    assert sources(params["ui_port"]) == sources(params["port"])


def test_model_replicas_are_balanced_client_side() -> None:
    dep = k8s_find("Deployment", "model")
    assert dep["spec"]["replicas"] >= 2
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert any(a.startswith("--max-connection-age-ms=") for a in container["args"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 50051
    svc = k8s_find("Service", "model")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    grpc_port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "grpc")
    job = k8s_find("Job", "register-model")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    add = parse_cli(cli, args).params
    assert add["endpoints"] == (f"dns:///model.{NAMESPACE}.svc.cluster.local:{grpc_port}",)
    assert {p["containerPort"] for p in container["ports"]} == MODEL_PORTS


def test_every_container_has_requests_limits_and_no_root() -> None:
    for _, doc in k8s_docs():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{doc['metadata']['name']}/{c['name']} {kind}"
            assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_network_policies_deny_by_default_and_keep_models_inside() -> None:
    deny = k8s_find("NetworkPolicy", "default-deny")
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    model = k8s_find("NetworkPolicy", "model")
    assert model["spec"]["egress"] == []
    sources = [f for rule in model["spec"]["ingress"] for f in rule["from"]]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "evaluator"}}} in sources
    assert all("ipBlock" not in f for f in sources)


# -- the health check script against a real evaluator ----------------------------------------


def test_health_check_script_against_a_real_evaluator(tmp_path: Path) -> None:
    script = "-m", "gmai_eval.clients.ops.health_check"  # the console script gmai-health-check
    proc = subprocess.Popen(
        [sys.executable, "-m", "gmai_eval.clients.cli", "serve", "--db", str(tmp_path / "e.db"),
         "--port", "0", "--metrics-port", "-1", "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("gmai-eval serving on "), line
        address = line.split()[3]
        ok = subprocess.run([sys.executable, *script, address], capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        assert "SERVING" in ok.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    closed = subprocess.run([sys.executable, *script, "--timeout", "1", f"127.0.0.1:{free_port()}"],
                            capture_output=True, text=True, timeout=30)
    assert closed.returncode == 1
    assert "UNAVAILABLE" in closed.stderr or "DEADLINE_EXCEEDED" in closed.stderr


# -- the backup script against a database being written -------------------------------------


@pytest.mark.parametrize("vacuum", [False, True])
def test_backup_script_snapshots_a_live_database(tmp_path: Path, vacuum: bool) -> None:
    db = Database(tmp_path / "live.db")
    stop = threading.Event()
    try:
        answers = synthetic_answers(50)
        bid = add_benchmark(db, "gmai-val", answers)
        add_run(db, run_id="r-0", model="m", version="1", benchmark_id=bid, answers=answers,
                finished_at="2026-11-01T00:00:00+00:00")

        def keep_writing() -> None:
            i = 1
            while not stop.is_set():
                add_run(db, run_id=f"r-{i}", model="m", version="1", benchmark_id=bid, answers=answers[:5],
                        finished_at="2026-11-01T00:00:00+00:00")
                i += 1

        writer = threading.Thread(target=keep_writing)
        writer.start()
        dest = tmp_path / "snap.db"
        args = [sys.executable, "-m", "gmai_eval.clients.ops.backup", str(tmp_path / "live.db"), str(dest)]
        result = subprocess.run([*args, "--vacuum"] if vacuum else args, capture_output=True, text=True, timeout=60)
        stop.set()
        writer.join(timeout=30)
        assert result.returncode == 0, result.stderr
        assert " ok " in result.stdout
        copy = Database(dest)  # opens (and migrates nothing) like the evaluator would
        try:
            runs = copy.read(lambda d: d.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
            graded = copy.read(lambda d: d.execute("SELECT COUNT(*) FROM grades WHERE run_id = 'r-0'").fetchone()[0])
        finally:
            copy.close()
        assert runs >= 1 and graded == 50
        again = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and "exists" in again.stderr
    finally:
        stop.set()
        db.close()


def test_dashboard_has_a_release_trend_panel_over_whole_runs() -> None:
    trend = [p for p in dashboard()["panels"] if p["title"].startswith("Release trend")]
    assert len(trend) == 1
    (target,) = trend[0]["targets"]
    assert 'release=~"latest|previous"' in target["expr"] and 'dimension="overall"' in target["expr"]
    assert "{{model_version}}" in target["legendFormat"]
