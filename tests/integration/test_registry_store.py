"""KafkaRegistryStore on the real broker: racing writers, one winner per position."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from stream_app.config import load_settings
from stream_app.errors import RegistryConflictError
from stream_app.lifecycle.registry import ModelRegistry
from stream_app.lifecycle.registry_state import RegistryEvent
from stream_app.localkafka import BrokerInfo
from stream_app.registry_kafka import KafkaRegistryStore

pytestmark = pytest.mark.integration

ROUNDS = 4


def event(version: str) -> RegistryEvent:
    return RegistryEvent("registered", "m", version, datetime.now(UTC), {"path": version})


def test_two_writers_racing_for_each_position_one_wins(
    kafka_broker: BrokerInfo, run_id: str
) -> None:
    settings = load_settings(
        {}, broker_url=f"kafka://{kafka_broker.bootstrap}", topic_prefix=f"{run_id}."
    )
    # Two stores, as two processes would have; a fresh topic is created on first use.
    stores = [KafkaRegistryStore(settings), KafkaRegistryStore(settings)]
    assert stores[0].events() == []
    start = threading.Barrier(2)
    outcomes: dict[tuple[int, int], str] = {}

    def write(writer: int) -> None:
        for position in range(ROUNDS):
            start.wait(timeout=60)  # both aim at the same position at the same moment
            try:
                stores[writer].append(event(f"1.{position}.{writer}"), expected_position=position)
                outcomes[writer, position] = "won"
            except RegistryConflictError:
                outcomes[writer, position] = "conflict"

    threads = [threading.Thread(target=write, args=(w,)) for w in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    log = stores[1].events()
    for position in range(ROUNDS):
        results = sorted(outcomes[w, position] for w in (0, 1))
        assert results == ["conflict", "won"], (position, outcomes)
        winner = next(w for w in (0, 1) if outcomes[w, position] == "won")
        assert log[position].version == f"1.{position}.{winner}"
    assert len(log) == ROUNDS  # the losers wrote nothing


def test_a_stale_registry_is_refused_then_retries_on_the_new_log(
    kafka_broker: BrokerInfo, run_id: str
) -> None:
    settings = load_settings(
        {}, broker_url=f"kafka://{kafka_broker.bootstrap}", topic_prefix=f"{run_id}."
    )
    first = ModelRegistry(KafkaRegistryStore(settings))
    second = ModelRegistry(KafkaRegistryStore(settings))
    first.register("m", "1.0.0", {"auc": 0.8}, "models/1.0.0")
    with pytest.raises(RegistryConflictError):
        second.store.append(event("1.1.0"), expected_position=second.position)
    second.register("m", "1.1.0", {"auc": 0.9}, "models/1.1.0")  # reloads, then writes
    assert first.reload().models["m"].versions.keys() == {"1.0.0", "1.1.0"}
    assert second.best("m", "auc") is not None
