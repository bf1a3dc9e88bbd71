"""Registry stores: the in-memory fake and the append-only JSON-lines file."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from stream_app.errors import RegistryConflictError, RegistryError
from stream_app.lifecycle.registry import (
    InMemoryRegistryStore,
    JsonlRegistryStore,
    ModelRegistry,
    RegistryEvent,
    RegistryStore,
)
from tests.utils.lifecycle import (
    START,
    TickingClock,
    passing_report,
    registry_operations,
    run_operations,
)


def event(version: str, name: str = "m") -> RegistryEvent:
    return RegistryEvent("registered", name, version, START, {"path": f"{name}/{version}"})


@pytest.mark.parametrize("make", [lambda p: InMemoryRegistryStore(), JsonlRegistryStore])
def test_stores_keep_order_and_filter_by_name(tmp_path: Path, make: Any) -> None:
    store = make(tmp_path / "registry.jsonl")
    assert isinstance(store, RegistryStore)
    for position, e in enumerate((event("1.0.0"), event("2.0.0", "other"), event("1.1.0"))):
        assert store.append(e, expected_position=position) == position + 1
    assert [e.version for e in store.events()] == ["1.0.0", "2.0.0", "1.1.0"]
    assert [e.version for e in store.events("m")] == ["1.0.0", "1.1.0"]
    assert store.events("missing") == []


@pytest.mark.parametrize("make", [lambda p: InMemoryRegistryStore(), JsonlRegistryStore])
@pytest.mark.parametrize("stale", [0, 2, -1])
def test_append_at_a_position_the_log_has_left_is_refused(
    tmp_path: Path, make: Any, stale: int
) -> None:
    store = make(tmp_path / "registry.jsonl")
    store.append(event("1.0.0"), expected_position=0)
    with pytest.raises(RegistryConflictError) as info:
        store.append(event("1.1.0"), expected_position=stale)
    assert f"expected position {stale}, the log has 1 event" in str(info.value)
    assert [e.version for e in store.events()] == ["1.0.0"]
    assert isinstance(info.value, RegistryError)


def test_jsonl_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    path = tmp_path / "registry.jsonl"
    first, second = JsonlRegistryStore(path), JsonlRegistryStore(path)
    first.append(event("1.0.0"), expected_position=0)
    assert [e.version for e in second.events()] == ["1.0.0"]
    with pytest.raises(RegistryConflictError):
        first.append(event("1.1.0"), expected_position=0)
    second.append(event("1.1.0"), expected_position=1)
    assert [e.version for e in first.events()] == ["1.0.0", "1.1.0"]
    assert [json.loads(line)["version"] for line in path.read_text().splitlines()] == [
        "1.0.0",
        "1.1.0",
    ]


def test_jsonl_reader_leaves_a_partial_last_line_alone(tmp_path: Path) -> None:
    path = tmp_path / "registry.jsonl"
    JsonlRegistryStore(path).append(event("1.0.0"), expected_position=0)
    fragment = event("1.1.0").to_json()[:25]
    with path.open("a") as handle:
        handle.write(fragment)  # a writer mid-append, or one that died there
    before = path.read_bytes()
    reader = JsonlRegistryStore(path)
    assert [e.version for e in reader.events()] == ["1.0.0"]
    assert path.read_bytes() == before  # opening and reading never cut the file
    reader.append(event("1.2.0"), expected_position=1)  # the writer, under the lock, does
    assert [e.version for e in JsonlRegistryStore(path).events()] == ["1.0.0", "1.2.0"]
    assert path.read_text().count("\n") == 2  # the fragment is gone, not glued on


def test_jsonl_append_waits_for_the_exclusive_lock(tmp_path: Path) -> None:
    path = tmp_path / "registry.jsonl"
    store = JsonlRegistryStore(path)
    store.append(event("1.0.0"), expected_position=0)
    holder = path.open("rb")
    fcntl.flock(holder.fileno(), fcntl.LOCK_EX)  # another process checking and appending
    appender = threading.Thread(
        target=store.append, args=(event("1.1.0"),), kwargs={"expected_position": 1}
    )
    try:
        appender.start()
        appender.join(0.3)
        assert appender.is_alive()
        assert len(path.read_text().splitlines()) == 1
    finally:
        fcntl.flock(holder.fileno(), fcntl.LOCK_UN)
        holder.close()
    appender.join()
    assert [e.version for e in JsonlRegistryStore(path).events()] == ["1.0.0", "1.1.0"]


def test_in_memory_events_are_a_copy() -> None:
    store = InMemoryRegistryStore([event("1.0.0")])
    store.events().clear()
    assert len(store.events()) == 1


def test_jsonl_writes_one_line_per_event_and_replays_on_open(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "registry.jsonl"
    path.parent.mkdir()
    registry = ModelRegistry(JsonlRegistryStore(path), clock=TickingClock())
    registry.register("churn", "1.0.0", {"accuracy": 0.85}, "m/1.0.0", tags={"team": "ml"})
    registry.register("churn", "1.1.0", {"accuracy": 0.88}, "m/1.1.0")
    gate = passing_report("churn", "1.1.0")
    registry.promote("churn", "1.1.0", expected_current=None, gate_report=gate)
    lines = path.read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["registered", "registered", "promoted"]

    reopened = ModelRegistry(JsonlRegistryStore(path), clock=TickingClock())
    assert reopened.state == registry.state
    assert reopened.production("churn") == "1.1.0"
    assert reopened.store.events() == registry.store.events()


def test_jsonl_fsyncs_every_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    store = JsonlRegistryStore(tmp_path / "registry.jsonl")
    store.append(event("1.0.0"), expected_position=0)  # the file and its new directory entry
    assert len(synced) == 2
    store.append(event("1.1.0"), expected_position=1)
    assert len(synced) == 3


def test_jsonl_drops_a_torn_last_line_and_appends_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "registry.jsonl"
    store = JsonlRegistryStore(path)
    store.append(event("1.0.0"), expected_position=0)
    with path.open("a") as handle:
        handle.write(event("1.1.0").to_json()[:25])  # a write cut off mid-line
    reopened = JsonlRegistryStore(path)
    assert [e.version for e in reopened.events()] == ["1.0.0"]
    reopened.append(event("1.2.0"), expected_position=1)
    assert [e.version for e in JsonlRegistryStore(path).events()] == ["1.0.0", "1.2.0"]


def test_jsonl_refuses_a_corrupt_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "registry.jsonl"
    good = event("1.0.0").to_json()
    path.write_text(f"{good}\nnot json\n{good}\n")
    with pytest.raises(RegistryError, match=r"registry\.jsonl:2: not a registry event"):
        JsonlRegistryStore(path)
    path.write_bytes(good.encode() + b"\n\xff\xfe\n")
    with pytest.raises(RegistryError, match=r"registry\.jsonl:2:"):
        JsonlRegistryStore(path)


def test_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "registry.jsonl"
    path.write_text(f"\n{event('1.0.0').to_json()}\n\n")
    assert [e.version for e in JsonlRegistryStore(path).events()] == ["1.0.0"]


def test_a_log_the_fold_refuses_is_reported_on_open(tmp_path: Path) -> None:
    path = tmp_path / "registry.jsonl"
    path.write_text(f"{event('1.0.0').to_json()}\n{event('1.0.0').to_json()}\n")
    with pytest.raises(RegistryError, match="already registered"):
        ModelRegistry(JsonlRegistryStore(path))


@settings(max_examples=40, deadline=None)
@given(operations=registry_operations())
def test_jsonl_round_trip_rebuilds_the_state(operations: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "registry.jsonl"
        registry = ModelRegistry(JsonlRegistryStore(path), clock=TickingClock())
        memory = ModelRegistry(clock=TickingClock())
        run_operations(registry, operations)
        run_operations(memory, operations)
        reopened = ModelRegistry(JsonlRegistryStore(path), clock=TickingClock())
        assert reopened.store.events() == memory.store.events()
        assert reopened.state == registry.state == memory.state
