"""Promoting a version while traffic flows: the swap lands between micro-batches, nothing is
lost, and a tampered bundle is refused while the serving one keeps scoring."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from stream_app.config import load_settings
from stream_app.lifecycle.bundle import MODEL_FILE
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.lifecycle.registry import ModelRegistry
from stream_app.localkafka import BrokerInfo
from stream_app.registry_kafka import open_registry
from stream_app.topics import topic_names
from tests.utils.kafka_io import Record, produce, read_until
from tests.utils.keys import KeySet
from tests.utils.lifecycle import passing_report
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

NAME = "conversion"
CLIENTS = 8
ROUNDS = 3  # traffic before, during and after the swap; then after a refused promotion
PER_ROUND = 240


def _register(
    registry: ModelRegistry, directory: Path, version: str, seed: int, keys: KeySet
) -> None:
    info = train_demo_bundle(
        directory, name=NAME, version=version, seed=seed, n_rows=300, signing_key=keys.bundle_key
    )
    registry.register(NAME, version, {"auc": 0.8}, info.directory, digest=info.digest)


def _requests(start: int, n: int) -> list[tuple[bytes | None, bytes]]:
    out: list[tuple[bytes | None, bytes]] = []
    for i in range(start, start + n):
        client = f"client-{i % CLIENTS}"
        request = {
            "request_id": f"r{i:05d}", "client_id": client, "user_id": f"USR{i:05d}",
            "timestamp": f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "age": 20 + i % 60, "purchase_history": [12.0, 3.5], "category_preference": "home",
            "session_duration_minutes": 4.0,
        }  # fmt: skip
        out.append((client.encode(), json.dumps(request).encode()))
    return out


async def test_promotion_under_traffic_swaps_without_loss_and_refuses_a_tampered_bundle(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    tmp_path: Path,
    keys: KeySet,
) -> None:
    app_id = f"swap-{run_id}"
    settings = load_settings(
        {}, broker_url=f"kafka://{kafka_broker.bootstrap}", topic_prefix=f"{run_id}.",
        app_id=app_id, registry_signing_key=keys.signing,
    )  # fmt: skip
    names = topic_names(settings)
    registry = open_registry(settings)
    _register(registry, tmp_path / "a", "1.0.0", seed=1, keys=keys)
    _register(registry, tmp_path / "b", "2.0.0", seed=2, keys=keys)
    _register(registry, tmp_path / "c", "3.0.0", seed=3, keys=keys)
    registry.promote(NAME, "1.0.0", expected_current=None,
                     gate_report=passing_report(NAME, "1.0.0"))  # fmt: skip
    worker = start_worker(
        {"STREAM_APP_ID": app_id, "STREAM_PARTITIONS": "2", "STREAM_MODEL_NAME": NAME,
         "STREAM_BATCH_SIZE": "16", "STREAM_RATE_LIMIT_MAX_REQUESTS": "1000",
         "STREAM_BUNDLE_ROOT": str(tmp_path), **keys.worker_env()},
        wait_topics={names["prediction_requests"]: 2},
    )  # fmt: skip
    worker.wait_ready()
    source = names["prediction_requests"]

    async def trickle(start: int, n: int) -> None:
        for chunk in range(start, start + n, 20):
            await produce(kafka_broker.bootstrap, source, _requests(chunk, 20))
            await asyncio.sleep(0.05)

    predictions = names["predictions"]

    async def scored(n: int) -> None:
        # Waits for the state asserted on below, however slow the machine.
        await read_until(
            kafka_broker.bootstrap, [predictions], lambda g: len(g[predictions]) >= n,
            timeout=180, idle_seconds=0,
        )  # fmt: skip

    # Round 0 on A, read back before anything else happens; round 1 flows while B is
    # promoted (each client switches once, wherever); round 2 is sent once B serves.
    await trickle(0, PER_ROUND)
    await scored(PER_ROUND)
    during = asyncio.create_task(trickle(PER_ROUND, PER_ROUND))
    await asyncio.to_thread(
        registry.promote, NAME, "2.0.0", expected_current="1.0.0",
        gate_report=passing_report(NAME, "2.0.0"),
    )  # fmt: skip
    await during
    await asyncio.to_thread(
        worker.wait_for, "/health", lambda h: h["model"]["production"] == "2.0.0", "B to serve"
    )
    await trickle(2 * PER_ROUND, PER_ROUND)

    # A tampered bundle passes its (reported) gate but fails verification in the worker.
    (tmp_path / "c" / MODEL_FILE).write_bytes(b"swapped on disk after the gate")
    await asyncio.to_thread(
        registry.promote, NAME, "3.0.0", expected_current="2.0.0",
        gate_report=passing_report(NAME, "3.0.0"),
    )  # fmt: skip
    health = await asyncio.to_thread(
        worker.wait_for, "/health", lambda h: h["status"] == "degraded", "the refusal"
    )
    assert health["model"]["production"] == "2.0.0"
    await trickle(3 * PER_ROUND, PER_ROUND)

    total = (ROUNDS + 1) * PER_ROUND
    got = await read_until(
        kafka_broker.bootstrap, [predictions], lambda g: len(g[predictions]) >= total, timeout=180
    )
    versions = _versions(got[predictions])
    missing = sorted(set(range(total)) - set(versions))
    # None lost, none twice (one worker, no rebalance: nothing is replayed).
    assert (len(got[predictions]), missing) == (total, []), f"missing {missing[:20]}"
    assert all(versions[i] == "1.0.0" for i in range(PER_ROUND))
    assert all(versions[i] == "2.0.0" for i in range(2 * PER_ROUND, total))
    during_swap = [versions[i] for i in range(PER_ROUND, 2 * PER_ROUND)]
    assert set(during_swap) <= {"1.0.0", "2.0.0"}
    # Per client (one partition, in order), the switch happens once: A... then B...
    for client in range(CLIENTS):
        sequence = [versions[i] for i in range(total) if i % CLIENTS == client]
        switch = sequence.index("2.0.0")
        assert set(sequence[:switch]) == {"1.0.0"} and set(sequence[switch:]) == {"2.0.0"}


def _versions(records: list[Record]) -> dict[int, str]:
    out: dict[int, str] = {}
    for record in records:
        prediction = json.loads(record.value)
        out[int(prediction["request_id"][1:])] = prediction["model_version"]
    return out
