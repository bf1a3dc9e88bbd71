"""Bundles any host can load: the Kafka bundle store against the real broker.

A bundle registered with STREAM_BUNDLE_STORE=kafka is uploaded as chunks to the
model-bundles topic and promoted; a worker whose data directory is fresh and whose bundle
root has never held it fetches it, checks it and scores with it. A chunk rewritten by a
plain producer is refused by the `promote` command and by the worker, which keeps serving
the version it had; a worker with nothing earlier to serve stays not ready and says why.
The topic reads as the table compaction keeps: the newest record of a key, none after a
tombstone.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from stream_app.bundle_kafka import KafkaChunkLog
from stream_app.config import Settings, load_settings
from stream_app.lifecycle.bundle_chunks import Manifest, chunk_key, manifest_key
from stream_app.lifecycle.bundle_metadata import METADATA_FILE, MODEL_FILE
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.registry_kafka import open_registry
from stream_app.topics import topic_names
from tests.utils.kafka_io import produce, read_until
from tests.utils.keys import KeySet
from tests.utils.lifecycle import passing_report
from tests.utils.traffic import request, start_of_traffic
from tests.utils.worker import REPO_ROOT, WorkerProcess, worker_env

pytestmark = pytest.mark.integration

NAME = "conversion"
CHUNK_BYTES = 16_384  # the demo model (about 128 KB) spans several chunks


def registry_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-m", "stream_app.cli", "registry", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


class Trainer:
    """The host that trains and registers: its bundles lie outside any worker's root."""

    def __init__(self, broker: BrokerInfo, run_id: str, keys: KeySet, home: Path) -> None:
        self.home = home
        self.keys = keys
        self.env = worker_env({
            "STREAM_BROKER_URL": f"kafka://{broker.bootstrap}",
            "STREAM_TOPIC_PREFIX": f"{run_id}.",
            "STREAM_BUNDLE_ROOT": str(home / "root"),
            "STREAM_BUNDLE_STORE": "kafka",
            "STREAM_BUNDLE_CHUNK_BYTES": str(CHUNK_BYTES),
            **keys.writer_env(),
        })  # fmt: skip
        self.settings = load_settings(
            {}, broker_url=f"kafka://{broker.bootstrap}", topic_prefix=f"{run_id}.",
            registry_signing_key=keys.signing,
        )  # fmt: skip

    def register(self, name: str, version: str, seed: int) -> dict[str, Any]:
        """Train a bundle in its own directory and register it through the CLI."""
        directory = self.home / "trained" / f"{name}-{version}"
        train_demo_bundle(directory, name=name, version=version, seed=seed, n_rows=400,
                          signing_key=self.keys.bundle_key)  # fmt: skip
        done = registry_cli(self.env, "register", str(directory), "--json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def promote(self, name: str, version: str, expected: str) -> None:
        """A key holder's promotion (the gate report named, not run)."""
        open_registry(self.settings).promote(
            name, version, expected_current=None if expected == "none" else expected,
            gate_report=passing_report(name, version),
        )  # fmt: skip

    def tamper_model_chunk(self, digest: str) -> str:
        """Rewrite the second chunk of the bundle's model file with a plain producer, as
        anyone who may write to the topic could; the reason a reader gives for it."""
        log = KafkaChunkLog(self.settings)
        manifest = Manifest.parse(log.read([manifest_key(digest)])[manifest_key(digest)], digest)
        model = next(f for f in manifest.files if f.name == MODEL_FILE)
        assert len(model.chunks) >= 3
        target = model.chunks[1]
        forged = bytes(b ^ 0x01 for b in log.read([chunk_key(target)])[chunk_key(target)])
        asyncio.run(produce(self.settings.bootstrap_servers[0], log.topic,
                            [(chunk_key(target).encode(), forged)]))  # fmt: skip
        return (
            f"model.joblib: chunk 2 of {len(model.chunks)} holds other bytes than its digest "
            f"{target[:16]}... (tampered or corrupt)"
        )


def worker_settings(app_id: str, root: Path, keys: KeySet, model: str = NAME) -> dict[str, str]:
    return {
        "STREAM_APP_ID": app_id, "STREAM_PARTITIONS": "1", "STREAM_MODEL_NAME": model,
        "STREAM_BUNDLE_ROOT": str(root), **keys.worker_env(),
    }  # fmt: skip


def score_one(settings: Settings, rid: str) -> dict[str, Any]:
    """Send one request and wait for its prediction."""
    names = topic_names(settings)
    bootstrap = settings.bootstrap_servers[0]
    asyncio.run(produce(bootstrap, names["prediction_requests"],
                        [request(rid, start_of_traffic(), 41)]))  # fmt: skip

    def found(records: dict[str, Any]) -> bool:
        return any(json.loads(r.value)["request_id"] == rid for r in records[names["predictions"]])

    got = asyncio.run(read_until(bootstrap, [names["predictions"]], found, idle_seconds=0))
    return next(
        json.loads(r.value) for r in got[names["predictions"]]
        if json.loads(r.value)["request_id"] == rid
    )  # fmt: skip


def test_a_worker_that_never_saw_the_bundle_fetches_checks_and_serves_it(
    kafka_broker: BrokerInfo,
    tmp_path: Path,
    run_id: str,
    keys: KeySet,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    trainer = Trainer(kafka_broker, run_id, keys, tmp_path / "trainer")
    first = trainer.register(NAME, "1.0.0", seed=1)
    digest = first["digest"]
    assert first["path"] == f"kafka:{digest}"
    promoted = registry_cli(trainer.env, "promote", NAME, "1.0.0", "--expected-current", "none",
                            "--validation", "demo:7")  # fmt: skip
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr

    # Another host: a fresh data directory, and a bundle root that has never held a bundle.
    root = tmp_path / "host-b" / "bundles"
    app_id = f"bundles-{run_id}"
    names = topic_names(trainer.settings)
    worker = start_worker(worker_settings(app_id, root, keys),
                          wait_topics={names["prediction_requests"]: 1})  # fmt: skip
    worker.wait_ready()
    health = worker.wait_for("/health", lambda h: h["model"]["production"] == "1.0.0", "1.0.0")
    assert health["status"] == "healthy"
    fetched = root / "fetched" / digest
    assert sorted(p.name for p in (root / "fetched").iterdir()) == [digest]
    source = trainer.home / "trained" / f"{NAME}-1.0.0"
    for name in (METADATA_FILE, MODEL_FILE, "signature"):
        assert (fetched / name).read_bytes() == (source / name).read_bytes()
    assert score_one(trainer.settings, "r-first")["model_version"] == "1.0.0"

    # 1.1.0 is uploaded sound, then one chunk of its model is rewritten by a plain producer.
    second = trainer.register(NAME, "1.1.0", seed=2)
    reason = trainer.tamper_model_chunk(second["digest"])
    refused = registry_cli(trainer.env, "promote", NAME, "1.1.0", "--expected-current", "1.0.0",
                           "--validation", "demo:7")  # fmt: skip
    assert (refused.returncode, refused.stderr) == (1, f"Error: {reason}\n")
    trainer.promote(NAME, "1.1.0", expected="1.0.0")

    health = worker.wait_for("/health", lambda h: h["status"] == "degraded", "the refusal")
    assert health["model"]["production"] == "1.0.0"
    assert health["model_update"]["version"] == "1.1.0"
    assert health["model_update"]["error"] == (
        f"version 1.1.0 refused, the previous model keeps serving: {reason}"
    )
    assert (worker.get("/readyz") or {})["ready"] is True
    assert sorted(p.name for p in (root / "fetched").iterdir()) == [digest]  # nothing of 1.1.0
    assert score_one(trainer.settings, "r-after")["model_version"] == "1.0.0"
    assert str(root) not in json.dumps(health)
    assert f"version 1.1.0 at kafka:{second['digest']} refused: {reason}" in (
        worker.log_path.read_text()
    )


def test_a_worker_with_only_a_tampered_bundle_to_serve_stays_not_ready(
    kafka_broker: BrokerInfo,
    tmp_path: Path,
    run_id: str,
    keys: KeySet,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    model = "solo"
    trainer = Trainer(kafka_broker, run_id, keys, tmp_path / "trainer")
    registered = trainer.register(model, "1.0.0", seed=3)
    reason = trainer.tamper_model_chunk(registered["digest"])
    trainer.promote(model, "1.0.0", expected="none")

    root = tmp_path / "host-c" / "bundles"
    app_id = f"solo-{run_id}"
    names = topic_names(trainer.settings)
    worker = start_worker(worker_settings(app_id, root, keys, model),
                          wait_topics={names["prediction_requests"]: 1})  # fmt: skip
    health = worker.wait_for("/health", lambda h: h["model_update"]["up"] is False, "refusal")
    assert health["status"] == "unhealthy" and health["model"]["loaded"] is False
    assert health["model_update"]["version"] == "1.0.0"
    assert health["model_update"]["error"].endswith(reason)
    readyz = worker.get("/readyz") or {}
    assert readyz["ready"] is False and readyz["http_status"] == 503
    assert not (root / "fetched" / registered["digest"]).exists()


def test_the_bundle_topic_reads_as_the_table_compaction_keeps(
    kafka_broker: BrokerInfo, run_id: str
) -> None:
    settings = load_settings(
        {}, broker_url=f"kafka://{kafka_broker.bootstrap}", topic_prefix=f"{run_id}."
    )
    log = KafkaChunkLog(settings)
    assert log.read(["a"]) == {}  # the topic is created on first use
    log.write([("a", b"first"), ("b", b"kept"), ("c", b"deleted"), ("a", b"newest")])

    async def tombstone() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(log.topic, None, key=b"c", partition=0)
        finally:
            await producer.stop()

    asyncio.run(tombstone())
    assert log.read(["a", "b", "c", "d"]) == {"a": b"newest", "b": b"kept"}
    assert log.read(["b"]) == {"b": b"kept"}  # only the keys asked for
