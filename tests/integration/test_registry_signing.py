"""A running worker refuses registry events it cannot trust, and keeps serving.

Forged (a plain producer), signed by another key, and another model's promotion renamed:
each is refused, counted and logged by offset and reason only, /health is degraded and
the model promoted before keeps serving. A signed promotion of a version that lies
outside the bundle root is refused before any file of it is read. A worker without a
bundle key refuses unsigned bundles unless told otherwise, and then says so on /health.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stream_app.config import Settings, load_settings
from stream_app.inference.features import FEATURE_NAMES
from stream_app.lifecycle.bundle import save_bundle
from stream_app.lifecycle.bundle_source import UNSIGNED_WARNING
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.lifecycle.registry import ModelRegistry
from stream_app.lifecycle.registry_signing import load_signing_key, sign_event
from stream_app.lifecycle.registry_state import RegistryEvent
from stream_app.localkafka import BrokerInfo
from stream_app.registry_kafka import open_registry, read_registry_events, registry_partition
from tests.integration.chain_app import chain_topics
from tests.utils.kafka_io import produce
from tests.utils.keys import KeySet, make_keys
from tests.utils.lifecycle import passing_report
from tests.utils.pickles import Detonator
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

NAME = "conversion"
MARKER = "planted-by-the-forger-7f3a"  # must never reach the worker's log


def _register(registry: ModelRegistry, directory: Path, version: str, key: bytes) -> None:
    info = train_demo_bundle(
        directory, name=NAME, version=version, seed=1, n_rows=200, signing_key=key
    )
    registry.register(NAME, version, {"auc": 0.8}, info.directory, digest=info.digest)


def _refused(counts: dict[str, int]) -> Callable[[dict[str, Any]], bool]:
    return lambda health: health["registry"]["refused"] == counts


async def _write(settings: Settings, event: RegistryEvent) -> None:
    """Append ``event`` to the registry topic as anyone with write access could."""
    topic = registry_partition(settings).topic
    bootstrap = settings.bootstrap_servers[0]
    await produce(bootstrap, topic, [(event.name.encode(), event.to_json().encode())])


def _signed_event(settings: Settings, wanted: tuple[str, str, str]) -> RegistryEvent:
    """The event ``(kind, name, version)`` as read back from the topic. Polled: the commit
    marker of the last transaction can reach the partition just after the write returned."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for event in asyncio.run(read_registry_events(settings)):
            if (event.kind, event.name, event.version) == wanted:
                return event
    raise TimeoutError(f"{wanted} never became readable")


def _registry_worker(
    start_worker: Callable[..., WorkerProcess], app_id: str, root: Path, keys: KeySet
) -> WorkerProcess:
    """A worker that follows the registry, verifying with ``keys``, bundles under ``root``."""
    return start_worker(
        {
            "STREAM_APP_ID": app_id, "STREAM_PARTITIONS": "1", "STREAM_MODEL_NAME": NAME,
            "STREAM_BUNDLE_ROOT": str(root), **keys.worker_env(),
        },
        wait_topics={chain_topics(app_id)[0]: 1},
        module="tests.integration.registry_app",
    )  # fmt: skip


def test_forged_foreign_and_renamed_promotions_are_refused_while_the_model_serves(
    kafka_broker: BrokerInfo,
    tmp_path: Path,
    run_id: str,
    keys: KeySet,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    app_id = f"signing-{run_id}"
    root = tmp_path / "bundles"
    worker = _registry_worker(start_worker, app_id, root, keys)
    settings = load_settings(
        {}, broker_url=f"kafka://{kafka_broker.bootstrap}", topic_prefix=f"{run_id}.",
        registry_signing_key=keys.signing, registry_verify_key=keys.verify,
    )  # fmt: skip
    registry = open_registry(settings)
    _register(registry, root / "a", "1.0.0", keys.bundle_key)
    _register(registry, root / "b", "1.1.0", keys.bundle_key)
    registry.promote(NAME, "1.0.0", expected_current=None,
                     gate_report=passing_report(NAME, "1.0.0"))  # fmt: skip
    # Another model of the same registry, promoted by the key holder: its promotion is
    # signed, and is what a replay under our model's name starts from.
    for version in ("1.0.0", "1.1.0"):
        registry.register("churn", version, {"auc": 0.8}, root / "a", digest="ab" * 32)
    registry.promote("churn", "1.0.0", expected_current=None,
                     gate_report=passing_report("churn", "1.0.0"))  # fmt: skip
    registry.promote("churn", "1.1.0", expected_current="1.0.0",
                     gate_report=passing_report("churn", "1.1.0"))  # fmt: skip
    worker.wait_ready()
    health = worker.wait_for("/health", lambda h: h["model"]["production"] == "1.0.0", "1.0.0")
    assert health["status"] == "healthy"
    assert health["registry"] == {"up": True, "signatures_verified": True, "refused": {}}

    topic = registry_partition(settings).topic
    forged = RegistryEvent(
        "promoted", NAME, "1.1.0", datetime.now(UTC),
        {"previous": "1.0.0", "gate_digest": "ab" * 32, "gate": {"passed": True, "by": MARKER}},
    )  # fmt: skip
    other = load_signing_key(make_keys(tmp_path / "other-keys").signing)
    churn = _signed_event(settings, ("promoted", "churn", "1.1.0"))
    attacks = [
        (forged, {"unsigned": 1}),  # a plain producer
        (sign_event(forged, topic, other), {"unsigned": 1, "bad_signature": 1}),
        (replace(churn, name=NAME), {"unsigned": 1, "bad_signature": 2}),
    ]
    for event, counts in attacks:
        asyncio.run(_write(settings, event))
        health = worker.wait_for("/health", _refused(counts), f"refusals {counts}")
        assert health["status"] == "degraded"
        assert health["failures"] == {"critical": [], "non_critical": ["registry"]}
        assert health["model"]["production"] == "1.0.0"
        assert (worker.get("/readyz") or {})["ready"] is True
        assert (worker.get("/registry") or {})["production"] == "1.0.0"

    # Logged by offset and reason, never the content.
    log = worker.log_path.read_text()
    refusals = [line for line in log.splitlines() if "refused: " in line and "offset" in line]
    assert len(refusals) == 3, refusals
    assert [line.rsplit("refused: ", 1)[1].strip() for line in refusals] == [
        "unsigned", "bad_signature", "bad_signature"
    ]  # fmt: skip
    assert MARKER not in log

    # The key holder's next event is verified and clears the degraded state.
    registry.promote(NAME, "1.1.0", expected_current="1.0.0",
                     gate_report=passing_report(NAME, "1.1.0"))  # fmt: skip
    health = worker.wait_for("/health", lambda h: h["model"]["production"] == "1.1.0", "1.1.0")
    assert health["status"] == "healthy"
    assert health["registry"]["refused"] == {"unsigned": 1, "bad_signature": 2}


def test_a_version_outside_the_bundle_root_is_refused_before_it_is_read(
    kafka_broker: BrokerInfo,
    tmp_path: Path,
    run_id: str,
    keys: KeySet,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    app_id = f"root-{run_id}"
    root = tmp_path / "bundles"
    worker = _registry_worker(start_worker, app_id, root, keys)
    settings = load_settings(
        {}, broker_url=f"kafka://{kafka_broker.bootstrap}", topic_prefix=f"{run_id}.",
        registry_signing_key=keys.signing,
    )  # fmt: skip
    registry = open_registry(settings)
    _register(registry, root / "a", "1.0.0", keys.bundle_key)
    registry.promote(NAME, "1.0.0", expected_current=None,
                     gate_report=passing_report(NAME, "1.0.0"))  # fmt: skip
    worker.wait_for("/health", lambda h: h["model"]["production"] == "1.0.0", "1.0.0")

    # A sound bundle in every other respect (signed with the worker's key, its digest the
    # registered one, every event signed) whose model runs code when it is unpickled.
    marker = tmp_path / "the-pickle-ran"
    meta = {"name": NAME, "version": "2.0.0", "features": list(FEATURE_NAMES)}
    outside = tmp_path / "elsewhere" / "c"
    info = save_bundle(Detonator(marker), meta, outside, signing_key=keys.bundle_key)
    registry.register(NAME, "2.0.0", {"auc": 0.8}, outside, digest=info.digest)
    registry.promote(NAME, "2.0.0", expected_current="1.0.0",
                     gate_report=passing_report(NAME, "2.0.0"))  # fmt: skip
    health = worker.wait_for("/health", lambda h: h["status"] == "degraded", "the refusal")
    assert health["model"]["production"] == "1.0.0"
    assert health["model_update"]["version"] == "2.0.0"
    assert health["model_update"]["error"].endswith(
        "the bundle path lies outside STREAM_BUNDLE_ROOT: refused before reading it"
    )
    assert health["registry"]["refused"] == {}  # the events were sound; the reference not
    assert not marker.exists()
    assert str(outside) not in str(health)


def test_unsigned_bundles_are_refused_by_default_and_served_with_a_warning_when_allowed(
    kafka_broker: BrokerInfo,
    tmp_path: Path,
    run_id: str,
    keys: KeySet,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    root = tmp_path / "bundles"
    settings = load_settings(
        {}, broker_url=f"kafka://{kafka_broker.bootstrap}", topic_prefix=f"{run_id}.",
        registry_signing_key=keys.signing,
    )  # fmt: skip
    registry = open_registry(settings)
    info = train_demo_bundle(root / "a", name=NAME, version="1.0.0", seed=1, n_rows=200)
    registry.register(NAME, "1.0.0", {"auc": 0.8}, info.directory, digest=info.digest)
    registry.promote(NAME, "1.0.0", expected_current=None,
                     gate_report=passing_report(NAME, "1.0.0"))  # fmt: skip
    common = {
        "STREAM_PARTITIONS": "1", "STREAM_MODEL_NAME": NAME, "STREAM_BUNDLE_ROOT": str(root),
        "STREAM_REGISTRY_VERIFY_KEY": str(keys.verify),
    }  # fmt: skip

    # The default: no bundle key, so no bundle can be verified and none is loaded.
    strict_id = f"strict-{run_id}"
    strict = start_worker({**common, "STREAM_APP_ID": strict_id},
                          wait_topics={chain_topics(strict_id)[0]: 1},
                          module="tests.integration.registry_app")  # fmt: skip
    health = strict.wait_for("/health", lambda h: h["model_update"]["up"] is False, "refusal")
    assert health["status"] == "unhealthy" and health["model"]["loaded"] is False
    assert health["model_update"]["error"].endswith(
        "no bundle signing key to verify the bundle with, and unsigned bundles are not "
        "allowed (set STREAM_BUNDLE_SIGNING_KEY, or STREAM_ALLOW_UNSIGNED_BUNDLES=true)"
    )

    # Allowed explicitly: it serves, and says what it could not check.
    lax_id = f"lax-{run_id}"
    lax = start_worker({**common, "STREAM_APP_ID": lax_id, "STREAM_ALLOW_UNSIGNED_BUNDLES": "true"},
                       wait_topics={chain_topics(lax_id)[0]: 1},
                       module="tests.integration.registry_app")  # fmt: skip
    lax.wait_ready()
    health = lax.wait_for("/health", lambda h: h["model"]["production"] == "1.0.0", "1.0.0")
    assert health["status"] == "degraded"
    assert health["failures"] == {"critical": [], "non_critical": ["bundle"]}
    assert health["bundle"]["warnings"] == {"1.0.0": [UNSIGNED_WARNING]}
    assert f"bundle 1.0.0: {UNSIGNED_WARNING}" in lax.log_path.read_text()
