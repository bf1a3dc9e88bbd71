"""`stream-app registry ...` as subprocesses against the real broker."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from stream_app.config import load_settings
from stream_app.inference.features import FEATURE_NAMES
from stream_app.lifecycle.bundle import save_bundle
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.lifecycle.registry_signing import check_event, load_verify_key
from stream_app.localkafka import BrokerInfo
from stream_app.registry_kafka import read_registry_events, registry_partition
from tests.utils.keys import KeySet
from tests.utils.worker import REPO_ROOT, worker_env

pytestmark = pytest.mark.integration


def registry_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-m", "stream_app.cli", "registry", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def constant_bundle(directory: Path, version: str, key: bytes) -> None:
    """A bundle that predicts "no conversion" for everyone: the gate must refuse it."""
    model = DummyClassifier(strategy="constant", constant=0)
    model.fit(np.zeros((2, len(FEATURE_NAMES))), [0, 1])
    metadata = {"name": "conversion", "version": version, "features": list(FEATURE_NAMES)}
    save_bundle(model, metadata, directory, signing_key=key)


def test_register_list_best_promote_rollback_history(
    kafka_broker: BrokerInfo, tmp_path: Path, run_id: str, keys: KeySet
) -> None:
    env = worker_env({
        "STREAM_BROKER_URL": f"kafka://{kafka_broker.bootstrap}",
        "STREAM_TOPIC_PREFIX": f"{run_id}.",
        "STREAM_BUNDLE_ROOT": str(tmp_path),
        **keys.writer_env(),
    })  # fmt: skip
    key = keys.bundle_key
    for name, version, seed in (("a", "1.0.0", 1), ("b", "1.1.0", 2)):
        train_demo_bundle(tmp_path / name, name="conversion", version=version, seed=seed,
                          n_rows=400, signing_key=key)  # fmt: skip
    constant_bundle(tmp_path / "c", "1.2.0", key)

    done = registry_cli(env, "register", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("registered conversion 1.0.0 (no tags) from /")
    done = registry_cli(env, "register", str(tmp_path / "b"), "--challenger", "--tag", "team=ml")
    assert "(role=challenger, team=ml)" in done.stdout, done.stderr
    assert registry_cli(env, "register", str(tmp_path / "c")).returncode == 0

    listed = json.loads(registry_cli(env, "list", "conversion", "--json").stdout)
    assert [v["version"] for v in listed["versions"]] == ["1.0.0", "1.1.0", "1.2.0"]
    assert (listed["production"], listed["challenger"]) == (None, "1.1.0")
    assert listed["versions"][0]["path"] == str((tmp_path / "a").resolve())
    assert listed["versions"][0]["directions"]["roc_auc"] == "higher"

    best = registry_cli(env, "best", "conversion", "--metric", "roc_auc", "--json")
    assert json.loads(best.stdout)["version"] == "1.1.0", best.stderr

    promote = ("promote", "conversion", "--validation", "demo:7")
    done = registry_cli(env, *promote[:2], "1.0.0", "--expected-current", "none", *promote[2:])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gate passed" in done.stdout
    *_, promoted, digest_line = done.stdout.strip().splitlines()
    assert promoted == "promoted conversion 1.0.0 (was None)"
    assert re.fullmatch(r"gate report digest [0-9a-f]{64}", digest_line), digest_line
    gate_digests = {"1.0.0": digest_line.split()[-1]}

    refused = registry_cli(env, *promote[:2], "1.2.0", "--expected-current", "1.0.0", *promote[2:])
    assert refused.returncode == 1
    assert "FAIL  precision" in refused.stdout
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]  # one line, no traceback
    assert refused.stderr.startswith("Error: the gate did not pass (")

    done = registry_cli(env, *promote[:2], "1.1.0", "--expected-current", "1.0.0", *promote[2:])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pass  no_regression" in done.stdout
    gate_digests["1.1.0"] = done.stdout.strip().splitlines()[-1].split()[-1]

    stale = registry_cli(env, "rollback", "conversion", "--expected-current", "1.0.0")
    assert stale.returncode == 1
    assert stale.stderr.strip() == (
        "Error: production of 'conversion' is '1.1.0', caller expected '1.0.0'"
    )
    done = registry_cli(env, "rollback", "conversion", "--expected-current", "1.1.0")
    assert done.stdout.strip() == "rolled back conversion: 1.1.0 -> 1.0.0", done.stderr

    history = json.loads(registry_cli(env, "history", "conversion", "--json").stdout)
    assert [(h["kind"], h["version"], h["previous"]) for h in history] == [
        ("promoted", "1.0.0", None),
        ("promoted", "1.1.0", "1.0.0"),
        ("rolled_back", "1.0.0", "1.1.0"),
    ]
    assert [h["gate_passed"] for h in history] == [True, True, None]

    # Every event the commands wrote is signed; each promotion carries its gate's digest.
    settings = load_settings(
        {}, broker_url=f"kafka://{kafka_broker.bootstrap}", topic_prefix=f"{run_id}."
    )
    events = asyncio.run(read_registry_events(settings))
    topic = registry_partition(settings).topic
    verify = load_verify_key(keys.verify)
    assert [check_event(e, topic, verify) for e in events] == [None] * 6
    digests = [e.payload["gate_digest"] for e in events if e.kind == "promoted"]
    assert digests == [gate_digests["1.0.0"], gate_digests["1.1.0"]]


def test_the_commands_refuse_a_bundle_outside_the_root_and_warn_when_unsigned(
    kafka_broker: BrokerInfo, tmp_path: Path, run_id: str, keys: KeySet
) -> None:
    env = worker_env({
        "STREAM_BROKER_URL": f"kafka://{kafka_broker.bootstrap}",
        "STREAM_TOPIC_PREFIX": f"{run_id}.",
        "STREAM_BUNDLE_ROOT": str(tmp_path / "root"),
        "STREAM_BUNDLE_SIGNING_KEY": keys.bundle_key_b64,
    })  # fmt: skip
    constant_bundle(tmp_path / "elsewhere", "1.0.0", keys.bundle_key)
    refused = registry_cli(env, "register", str(tmp_path / "elsewhere"))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "Error: the bundle path lies outside STREAM_BUNDLE_ROOT: refused before reading it"
    )
    constant_bundle(tmp_path / "root" / "c", "1.0.0", keys.bundle_key)
    done = registry_cli(env, "register", str(tmp_path / "root" / "c"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (
        "warning: STREAM_REGISTRY_SIGNING_KEY is not set: this event is unsigned, and "
        "workers with STREAM_REGISTRY_VERIFY_KEY refuse it"
    )
