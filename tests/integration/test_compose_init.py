"""deploy/init.sh, the compose stack's init service, against the real broker: run twice,
it leaves a registry a worker with the compose worker's settings serves from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.topics import INTERNAL_SPECS, SPECS
from tests.utils.deploy import compose_env
from tests.utils.keys import make_keys
from tests.utils.worker import REPO_ROOT, WorkerProcess, free_port, worker_env

pytestmark = pytest.mark.integration

# The image's own settings (Dockerfile ENV), which the init service runs with too.
IMAGE_ENV = {"STREAM_STORE": "rocksdb://"}


def init_env(broker: BrokerInfo, root: Path, run_id: str, **extra: str) -> dict[str, str]:
    """The compose init service's environment, its paths and the broker moved to this test."""
    settings = {k: v for k, v in compose_env("init").items() if not v.startswith("${")}
    settings.update({
        **IMAGE_ENV,
        "STREAM_BROKER_URL": f"kafka://{broker.bootstrap}",
        "STREAM_TOPIC_PREFIX": f"{run_id}.",
        "STREAM_DATA_DIR": str(root / "init-data"),
        "STREAM_BUNDLE_ROOT": str(root / "init-bundles"),
        "KEYS_DIR": str(root / "keys"),
        "SIGNING_DIR": str(root / "signing"),
        "IMPORT_DIR": str(root / "import"),
        "WORK_DIR": str(root / "init-work"),
        **extra,
    })  # fmt: skip
    env = worker_env(settings)
    # `stream-app` and `python` as the image has them: this interpreter's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    return env


def run_init(env: dict[str, str], *args: str) -> str:
    """deploy/init.sh with ``args``; its output (stdout and stderr), asserting exit 0."""
    done = subprocess.run(  # noqa: S603 - our own script
        ["sh", str(REPO_ROOT / "deploy" / "init.sh"), *args],  # noqa: S607 - as compose runs it
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    return done.stdout


def test_init_twice_then_a_worker_serves_the_promoted_demo_version(
    kafka_broker: BrokerInfo,
    tmp_path: Path,
    run_id: str,
    request: pytest.FixtureRequest,
) -> None:
    (tmp_path / "import").mkdir()  # ./models, empty: the demo versions
    env = init_env(kafka_broker, tmp_path, run_id)
    first = run_init(env)
    assert "init: made the registry key pair" in first
    assert f"created {len(SPECS) + len(INTERNAL_SPECS)} topics: {run_id}." in first
    assert "promoted conversion 1.0.0 (was None)" in first
    assert first.endswith("init: done: conversion production is 1.0.0\n")

    second = run_init(env)
    assert "created 0 topics" in second
    assert "init: conversion 1.0.0 is registered already" in second
    assert "init: conversion 1.1.0 is registered already" in second
    assert "init: conversion production is 1.0.0 already: left as it is" in second
    assert "made the" not in second and "registered conversion" not in second

    # The compose worker, started by its script: its settings, the keys init left it.
    keys = tmp_path / "keys"
    settings = compose_env("worker")
    settings.update({
        "STREAM_BROKER_URL": f"kafka://{kafka_broker.bootstrap}",
        "STREAM_TOPIC_PREFIX": f"{run_id}.",
        "STREAM_WEB_HOST": "127.0.0.1",
        "STREAM_WEB_PORT": str(free_port()),
        "STREAM_DATA_DIR": str(tmp_path / "worker-data"),
        "STREAM_BUNDLE_ROOT": str(tmp_path / "worker-data" / "models"),
        "STREAM_REGISTRY_VERIFY_KEY": settings["STREAM_REGISTRY_VERIFY_KEY"].replace(
            "/keys", str(keys), 1
        ),
        "KEYS_DIR": str(keys),
        "PATH": env["PATH"],
    })  # fmt: skip
    script = ["sh", str(REPO_ROOT / "deploy" / "worker.sh")]
    worker = WorkerProcess(settings, tmp_path / "worker.log", command=script)
    request.addfinalizer(worker.stop)
    worker.start()
    assert worker.wait_ready()["ready"] is True
    health = worker.wait_for(
        "/health", lambda h: h["model"]["challenger"] == "1.1.0", "the challenger to load"
    )
    assert (health["status"], health["model"]["production"]) == ("healthy", "1.0.0")
    page = worker.get("/registry") or {}
    assert [h["version"] for h in page["history"]] == ["1.0.0"]


def test_init_registers_and_promotes_the_bundles_in_models(
    kafka_broker: BrokerInfo, tmp_path: Path, run_id: str
) -> None:
    keys = make_keys(tmp_path / "host-keys")  # the host's bundle key, as in a .env file
    for version, seed in (("2.0.0", 3), ("2.1.0", 4)):
        train_demo_bundle(tmp_path / "import" / f"v{version}", name="conversion",
                          version=version, seed=seed,
                          signing_key=keys.bundle_key)  # fmt: skip
    train_demo_bundle(tmp_path / "import" / "other", name="churn", version="1.0.0", seed=5,
                      n_rows=200, signing_key=keys.bundle_key)  # fmt: skip
    env = init_env(kafka_broker, tmp_path, run_id, STREAM_BUNDLE_SIGNING_KEY=keys.bundle_key_b64)

    first = run_init(env)
    assert "registered conversion 2.0.0 (no tags)" in first
    assert "registered conversion 2.1.0 (no tags)" in first
    assert "holds model churn, not conversion: skipped" in first
    assert "promoted conversion 2.1.0 (was None)" in first
    assert "init: done: conversion production is 2.1.0" in first
    second = run_init(env)
    assert "registered conversion" not in second
    assert "init: conversion production is 2.1.0 already: left as it is" in second

    assert (tmp_path / "keys" / "bundle-signing.key").read_text().strip() == keys.bundle_key_b64
    # With arguments: a command with the stack's keys (its events checked against them).
    listed = json.loads(run_init(env, "registry", "list", "conversion", "--json"))
    assert listed["production"] == "2.1.0"
    assert [v["version"] for v in listed["versions"]] == ["2.0.0", "2.1.0"]
