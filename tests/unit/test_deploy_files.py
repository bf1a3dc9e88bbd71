"""docker-compose.yml, its scripts and configs, the Dockerfile, the Makefile and .ci/run
agree with the local-Kafka module, the CLI, the settings and the metrics."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import tomllib
from typing import Any

import jsonschema
import pytest
from packaging.specifiers import SpecifierSet

from stream_app.config import Settings, env_name
from stream_app.demo.bundles import DEMO_MODELS, GATE_VALIDATION
from stream_app.localkafka import KAFKA_VERSION, SINGLE_NODE_SETTINGS
from tests.utils.deploy import compose, compose_env, load_yaml, resolve_command, script_commands
from tests.utils.worker import REPO_ROOT

COMPOSE = (REPO_ROOT / "docker-compose.yml").read_text()
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
DEPLOY = REPO_ROOT / "deploy"
SCRIPTS = {name: (DEPLOY / name).read_text() for name in ("init.sh", "worker.sh")}


def _exported() -> dict[str, str]:
    """What a worker declares on GET /metrics: name -> type (counter, gauge, histogram)."""
    from agents import build_pipeline
    from stream_app.app import create_app
    from stream_app.config import load_settings

    app = build_pipeline(create_app(load_settings({}, app_id="deploy-files")))
    text = app.metrics.render().decode()
    declared = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    # prometheus_client adds a `_created` gauge (the start time) to counters and histograms.
    return {name: kind for name, kind in declared.items() if not name.endswith("_created")}


EXPORTED = _exported()
METRICS = frozenset(EXPORTED)
HISTOGRAMS = frozenset(name for name, kind in EXPORTED.items() if kind == "histogram")


def _env(text: str) -> dict[str, str]:
    return dict(re.findall(r'^\s+([A-Z][A-Z0-9_]+): "([^"]*)"$', text, re.MULTILINE))


def test_compose_runs_the_pinned_kafka_version() -> None:
    assert re.findall(r"image: apache/kafka:(\S+)", COMPOSE) == [KAFKA_VERSION]


def test_compose_broker_has_the_single_node_settings() -> None:
    env = _env(COMPOSE)
    for key, value in SINGLE_NODE_SETTINGS.items():
        assert env.get("KAFKA_" + key.upper().replace(".", "_")) == value, key


def test_compose_listens_where_the_local_broker_does() -> None:
    env = _env(COMPOSE)
    defaults = Settings.model_fields
    assert f":{defaults['local_kafka_controller_port'].default}" in env["KAFKA_LISTENERS"]
    assert '"9092:9092"' in COMPOSE  # the default STREAM_BROKER_URL port, on the host
    assert env["STREAM_BROKER_URL"] == "kafka://kafka:19092"


def test_compose_worker_sets_only_known_settings() -> None:
    known = {env_name(f) for f in Settings.model_fields}
    stream_vars = {k for k in _env(COMPOSE) if k.startswith("STREAM_")}
    assert stream_vars
    assert stream_vars <= known


def test_image_and_compose_keep_tables_in_rocksdb_on_a_volume() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert 'python -c "import rocksdict"' in dockerfile
    assert "ENV STREAM_STORE=rocksdb:// STREAM_DATA_DIR=/data" in dockerfile
    assert "VOLUME /data" in dockerfile
    env = _env(COMPOSE)
    assert env["STREAM_STORE"] == "rocksdb://"
    assert f"- worker-data:{env['STREAM_DATA_DIR']}" in COMPOSE


def test_ci_runs_make_test_and_nothing_that_hides_a_failure() -> None:
    lines = [
        line
        for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Chromium (the dashboard's browser test) is installed only where it is missing.
    assert lines == [
        "set -euo pipefail",
        "if ! command -v chromium >/dev/null; then",
        "  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
        "fi",
        "make test",
    ]
    assert (REPO_ROOT / ".ci" / "run").read_text().startswith("#!/usr/bin/env bash\n")


def test_makefile_test_target_runs_the_whole_suite_with_a_broker() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "$(KAFKA) run -- $(PY) -m pytest tests stream_app schemas" in makefile
    assert "KAFKA := $(PY) -m stream_app.localkafka" in makefile


def _compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return dict(json.loads(vendor.joinpath("compose-spec.json").read_text()))


def test_compose_file_follows_the_compose_spec() -> None:
    schema = _compose_schema()
    # It names draft 07 by an https address that jsonschema does not map to its draft.
    assert "draft-07" in schema["$schema"]
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []
    # The check has teeth: a misspelt condition is refused.
    broken = copy.deepcopy(compose())
    broken["services"]["worker"]["depends_on"]["init"]["condition"] = "service_finished"
    assert not validator.is_valid(broken)


def _stack_commands() -> list[list[str]]:
    """Every `stream-app` command line the image, the compose file and its scripts run."""
    found = [json.loads(m)[1:] for m in re.findall(r"^CMD (\[.*\])$", DOCKERFILE, re.M)]
    for service in compose()["services"].values():
        for key in ("entrypoint", "command"):
            if service.get(key, [None])[0] == "stream-app":
                found.append(service[key][1:])
    for text in SCRIPTS.values():
        found.extend(script_commands(text))
    return found


def test_every_command_the_stack_runs_exists_in_the_cli() -> None:
    paths = {resolve_command(argv) for argv in _stack_commands()}
    assert paths == {
        ("worker",),
        ("kafka", "topics"),
        ("bundle", "train-demo"),
        ("registry", "keygen"),
        ("registry", "list"),
        ("registry", "register"),
        ("registry", "promote"),
    }


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["registry", "promote", "m", "1.0.0", "--validation", "demo:1"], "--expected-current"),
        (["registry", "register", "d", "--challanger"], "no option --challanger"),
        (["registry", "publish", "d"], "no command 'publish'"),
        (["worker", "--loglevel"], "needs a value"),
        (["bundle", "train-demo", "--out", "d", "--name", "m", "--version", "1", "x"], "at most 0"),
    ],
)
def test_command_resolution_refuses_what_the_cli_would(argv: list[str], complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        resolve_command(argv)


def test_scripts_the_compose_file_runs_are_in_the_image() -> None:
    assert "WORKDIR /app" in DOCKERFILE
    assert "COPY deploy/init.sh deploy/worker.sh ./deploy/" in DOCKERFILE
    services = compose()["services"]
    commands = {name: s["command"] for name, s in services.items() if "command" in s}
    assert commands == {"worker": ["/app/deploy/worker.sh"]}
    entrypoints = {name: s["entrypoint"] for name, s in services.items() if "entrypoint" in s}
    assert entrypoints == {"init": ["/app/deploy/init.sh"]}
    for text in SCRIPTS.values():
        assert text.startswith("#!/bin/sh\n")
        assert "\nset -eu\n" in text


def test_the_stack_sets_only_known_settings() -> None:
    known = {env_name(f) for f in Settings.model_fields}
    for name, service in compose()["services"].items():
        stream_vars = {k for k in service.get("environment", {}) if k.startswith("STREAM_")}
        assert stream_vars <= known, name
    for name, text in SCRIPTS.items():
        assert set(re.findall(r"\b(STREAM_[A-Z0-9_]+)", text)) <= known, name


def test_init_and_worker_agree_on_broker_topics_and_model() -> None:
    shared = {"broker_url", "app_id", "topic_prefix", "partitions", "model_name"}
    shared |= {f for f in Settings.model_fields if f.startswith("topic_")}
    init, worker = compose_env("init"), compose_env("worker")
    for field in sorted(shared):
        assert init.get(env_name(field)) == worker.get(env_name(field)), field
    assert init["STREAM_BUNDLE_STORE"] == "kafka"  # the worker fetches; no shared directory
    assert worker["STREAM_BUNDLE_ROOT"].startswith(worker["STREAM_DATA_DIR"] + "/")


def test_keys_volumes_give_the_worker_only_the_public_half() -> None:
    services = compose()["services"]
    assert services["init"]["volumes"][:2] == ["keys:/keys", "registry-signing:/signing"]
    assert "keys:/keys:ro" in services["worker"]["volumes"]
    assert not any(v.startswith("registry-signing:") for v in services["worker"]["volumes"])
    assert compose_env("worker")["STREAM_REGISTRY_VERIFY_KEY"] == "/keys/registry-verify.pem"
    assert 'KEYS_DIR="${KEYS_DIR:-/keys}"' in SCRIPTS["init.sh"]
    assert 'SIGNING_DIR="${SIGNING_DIR:-/signing}"' in SCRIPTS["init.sh"]
    assert "/keys /signing && chown app /data /keys /signing" in DOCKERFILE


def test_init_trains_the_demo_versions_and_gates_on_the_demos_validation_set() -> None:
    calls = re.findall(r"^\s*demo_version (\S+) (\d+)( challenger)?$", SCRIPTS["init.sh"], re.M)
    assert calls == [(m.version, str(m.seed), " challenger" if m.challenger else "")
                     for m in DEMO_MODELS]  # fmt: skip
    assert f'VALIDATION="${{VALIDATION:-{GATE_VALIDATION}}}"' in SCRIPTS["init.sh"]
    assert "promote_first 1.0.0" in SCRIPTS["init.sh"]


def test_worker_waits_for_init_and_is_healthy_when_ready() -> None:
    worker = compose()["services"]["worker"]
    assert worker["depends_on"]["init"] == {"condition": "service_completed_successfully"}
    port = compose_env("worker")["STREAM_WEB_PORT"]
    probe = " ".join(worker["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/readyz" in probe
    assert f"http://127.0.0.1:{port}/readyz" in DOCKERFILE
    assert "/livez" not in probe


def test_image_python_agrees_with_requires_python() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    found = re.findall(r"^FROM python:(\d+\.\d+)-slim$", DOCKERFILE, re.M)
    assert len(found) == 1
    assert SpecifierSet(project["project"]["requires-python"]).contains(found[0] + ".0")
    # The image runs the version mypy checks against, the oldest one supported.
    assert found[0] == project["tool"]["mypy"]["python_version"]


def test_prometheus_scrapes_the_workers_metrics_page() -> None:
    config = load_yaml(DEPLOY / "prometheus.yml")
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    port = compose_env("worker")["STREAM_WEB_PORT"]
    assert job["static_configs"] == [{"targets": [f"worker:{port}"]}]
    service = compose()["services"]["prometheus"]
    assert service["profiles"] == ["observability"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in service["volumes"]


def _dashboard() -> dict[str, Any]:
    return dict(json.loads((DEPLOY / "grafana" / "dashboards" / "stream-app.json").read_text()))


def _metric_names(expr: str) -> set[str]:
    """The metrics a PromQL query names, a histogram's series folded into the histogram.

    >>> sorted(_metric_names("rate(a_b_bucket[1m]) / on() stream_app_x_total"))
    ['stream_app_x_total']
    """
    names = set(re.findall(r"\b(stream_app_[a-z0-9_]*[a-z0-9])\b", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if re.sub(r"_(bucket|sum|count)$", "", n)
            in HISTOGRAMS else n for n in names}  # fmt: skip


def test_dashboard_queries_name_only_exported_metrics_and_all_of_them() -> None:
    exprs = [t["expr"] for p in _dashboard()["panels"] for t in p["targets"]]
    named = set().union(*(_metric_names(e) for e in exprs))
    assert named - METRICS == set()
    assert METRICS - named == set()


def test_metric_names_fold_only_histogram_series() -> None:
    expr = "rate(stream_app_scoring_batch_size_sum[1m]) + stream_app_requests_total_count"
    assert _metric_names(expr) == {
        "stream_app_scoring_batch_size",
        "stream_app_requests_total_count",
    }


def test_grafana_provisions_the_datasource_and_dashboard_the_panels_use() -> None:
    grafana = DEPLOY / "grafana"
    (source,) = load_yaml(grafana / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090"
    uids = {p["datasource"]["uid"] for p in _dashboard()["panels"]}
    uids |= {t["datasource"]["uid"] for p in _dashboard()["panels"] for t in p["targets"]}
    assert uids == {source["uid"]}
    (provider,) = load_yaml(grafana / "provisioning" / "dashboards" / "stream-app.yml")["providers"]
    service = compose()["services"]["grafana"]
    assert service["profiles"] == ["observability"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in service["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in service["volumes"]
    home = compose_env("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/stream-app.json"


def test_readme_gives_the_values_the_stack_uses() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n### docker compose\n", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`([A-Z_]+)=([^`]+)`", section)
    assert {name for name, _ in named} >= {"KEYS_DIR", "SIGNING_DIR", "IMPORT_DIR", "WORK_DIR"}
    compose_values = {**compose_env("init"), **compose_env("worker")}
    for name, value in named:
        if name.startswith("STREAM_"):
            assert compose_values[name] == value, name
        else:
            assert f'{name}="${{{name}:-{value}}}"' in SCRIPTS["init.sh"], name
