"""A running worker follows the registry: /readyz, hot swaps, a refused bundle."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stream_app.config import load_settings
from stream_app.lifecycle.bundle import MODEL_FILE
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.lifecycle.registry import ModelRegistry
from stream_app.localkafka import BrokerInfo
from stream_app.registry_kafka import open_registry
from tests.integration.chain_app import chain_topics
from tests.utils.keys import KeySet
from tests.utils.lifecycle import passing_report
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

NAME = "conversion"


def register(
    registry: ModelRegistry, directory: Path, version: str, seed: int, keys: KeySet
) -> None:
    info = train_demo_bundle(
        directory, name=NAME, version=version, seed=seed, n_rows=200, signing_key=keys.bundle_key
    )
    registry.register(NAME, version, {"auc": 0.8}, info.directory, digest=info.digest)


def test_worker_serves_promotions_and_refuses_a_tampered_bundle(
    kafka_broker: BrokerInfo,
    tmp_path: Path,
    run_id: str,
    keys: KeySet,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    app_id = f"registry-{run_id}"
    worker = start_worker(
        {
            "STREAM_APP_ID": app_id,
            "STREAM_PARTITIONS": "1",
            "STREAM_MODEL_NAME": NAME,
            "STREAM_BUNDLE_ROOT": str(tmp_path),
            **keys.worker_env(),
        },
        wait_topics={chain_topics(app_id)[0]: 1},
        module="tests.integration.registry_app",
    )
    # No model yet: running, but not ready and unhealthy by design.
    readyz = worker.get("/readyz")
    assert readyz == {
        "ready": False,
        "http_status": 503,
        "reasons": ["no verified model loaded"],
    }
    health = worker.get("/health") or {}
    assert health["status"] == "unhealthy"
    assert health["failures"]["critical"] == ["model"]

    settings = load_settings(
        {}, broker_url=f"kafka://{kafka_broker.bootstrap}", topic_prefix=f"{run_id}.",
        registry_signing_key=keys.signing,
    )  # fmt: skip
    registry = open_registry(settings)
    register(registry, tmp_path / "a", "1.0.0", seed=1, keys=keys)
    registry.promote(
        NAME, "1.0.0", expected_current=None, gate_report=passing_report(NAME, "1.0.0")
    )

    assert worker.wait_ready()["ready"] is True
    health = worker.wait_for("/health", serving("1.0.0"), "1.0.0 to serve")
    assert health["status"] == "healthy"

    # A promotion that passed its gate, then the bundle on disk changed: refused.
    register(registry, tmp_path / "b", "1.1.0", seed=2, keys=keys)
    (tmp_path / "b" / MODEL_FILE).write_bytes(b"replaced after the gate")
    registry.promote(NAME, "1.1.0", expected_current="1.0.0",
                     gate_report=passing_report(NAME, "1.1.0"))  # fmt: skip
    health = worker.wait_for("/health", lambda h: h["status"] == "degraded", "a refusal")
    assert health["model"]["production"] == "1.0.0"  # the old model keeps serving
    assert health["model_update"]["version"] == "1.1.0"
    assert "SHA-256 mismatch" in health["model_update"]["error"]
    assert health["failures"] == {"critical": [], "non_critical": ["model_update"]}
    assert (worker.get("/readyz") or {})["ready"] is True

    # The registry page shows what the log says, the model part what serves.
    page = worker.get("/registry") or {}
    assert (page["production"], page["serving"]["production"]) == ("1.1.0", "1.0.0")
    assert [h["version"] for h in page["history"]] == ["1.0.0", "1.1.0"]

    # Rolling back to the version that serves clears the refusal.
    registry.rollback(NAME, expected_current="1.1.0")
    health = worker.wait_for("/health", lambda h: h["status"] == "healthy", "healthy again")
    assert health["model"]["production"] == "1.0.0"

    # A sound promotion swaps the model without a restart; a challenger joins as B.
    register(registry, tmp_path / "c", "1.2.0", seed=3, keys=keys)
    registry.promote(NAME, "1.2.0", expected_current="1.0.0",
                     gate_report=passing_report(NAME, "1.2.0"))  # fmt: skip
    health = worker.wait_for("/health", serving("1.2.0"), "1.2.0 to serve")
    assert (health["status"], health["model"]["challenger"]) == ("healthy", None)


def serving(version: str) -> Callable[[dict[str, Any]], bool]:
    return lambda health: health["model"]["production"] == version
