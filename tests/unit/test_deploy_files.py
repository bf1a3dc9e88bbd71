"""docker-compose.yml, the Makefile and .ci/run agree with the local-Kafka module."""

from __future__ import annotations

import re

from stream_app.config import Settings, env_name
from stream_app.localkafka import KAFKA_VERSION, SINGLE_NODE_SETTINGS
from tests.utils.worker import REPO_ROOT

COMPOSE = (REPO_ROOT / "docker-compose.yml").read_text()


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
    assert lines == ["set -euo pipefail", "make test"]
    assert (REPO_ROOT / ".ci" / "run").read_text().startswith("#!/usr/bin/env bash\n")


def test_makefile_test_target_runs_the_whole_suite_with_a_broker() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "$(KAFKA) run -- $(PY) -m pytest tests stream_app schemas" in makefile
    assert "KAFKA := $(PY) -m stream_app.localkafka" in makefile
