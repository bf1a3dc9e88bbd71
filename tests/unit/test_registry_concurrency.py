"""Two registries writing to one store: optimistic concurrency keeps the log replayable.

Each write refreshes from the store, validates against that fresh state and appends at
the position it saw; a store that moved in between refuses with RegistryConflictError.
Every scenario runs on the in-memory store, on one JSON-lines store shared by both
registries, and on two JSON-lines stores opened on the same file (two processes).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stream_app.errors import PromotionRefusedError, RegistryConflictError, RegistryError
from stream_app.lifecycle.registry import (
    InMemoryRegistryStore,
    JsonlRegistryStore,
    ModelRegistry,
    RegistryEvent,
    RegistryStore,
    fold,
)
from tests.utils.lifecycle import TickingClock, passing_report

STORE_KINDS = ("memory", "jsonl_shared", "jsonl_two_files")


def two_stores(kind: str, path: Path) -> tuple[RegistryStore, RegistryStore]:
    if kind == "memory":
        shared: RegistryStore = InMemoryRegistryStore()
        return shared, shared
    if kind == "jsonl_shared":
        one = JsonlRegistryStore(path)
        return one, one
    return JsonlRegistryStore(path), JsonlRegistryStore(path)


@pytest.fixture(params=STORE_KINDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ModelRegistry, ModelRegistry]:
    first, second = two_stores(request.param, tmp_path / "registry.jsonl")
    return ModelRegistry(first, clock=TickingClock()), ModelRegistry(second, clock=TickingClock())


def assert_replayable(registry: ModelRegistry) -> None:
    """A registry built afresh on the store folds the whole log without error."""
    events = registry.store.events()
    fresh = ModelRegistry(registry.store, clock=TickingClock())
    assert fresh.state == fold(events)
    assert fresh.position == len(events)


def test_stale_promote_is_refused_by_the_compare_and_set(
    pair: tuple[ModelRegistry, ModelRegistry],
) -> None:
    a, b = pair
    a.register("m", "1.0.0", {}, "p")
    b.register("m", "1.1.0", {}, "p")  # b saw 1.0.0 before writing
    a.promote("m", "1.0.0", expected_current=None, gate_report=passing_report("m", "1.0.0"))
    # b still believes nothing is in production; its write re-validates on fresh state.
    with pytest.raises(PromotionRefusedError, match="is '1.0.0', caller expected None"):
        b.promote("m", "1.1.0", expected_current=None, gate_report=passing_report("m", "1.1.0"))
    assert [e.kind for e in a.store.events()] == ["registered", "registered", "promoted"]
    assert b.production("m") == "1.0.0"  # the refusal left b with the fresh view
    assert_replayable(a)
    assert_replayable(b)


def test_stale_writer_with_the_right_expectation_promotes(
    pair: tuple[ModelRegistry, ModelRegistry],
) -> None:
    a, b = pair
    a.register("m", "1.0.0", {}, "p")
    a.register("m", "1.1.0", {}, "p")
    a.promote("m", "1.0.0", expected_current=None, gate_report=passing_report("m", "1.0.0"))
    # b never reloaded: its cached view has no model "m" at all.
    change = b.promote(
        "m", "1.1.0", expected_current="1.0.0", gate_report=passing_report("m", "1.1.0")
    )
    assert (change.version, change.previous) == ("1.1.0", "1.0.0")
    assert a.reload().models["m"].production == "1.1.0"
    assert_replayable(a)


def test_duplicate_registration_by_two_writers_is_refused(
    pair: tuple[ModelRegistry, ModelRegistry],
) -> None:
    a, b = pair
    a.register("n", "1.0.0", {"acc": 0.1}, "p")
    with pytest.raises(RegistryError, match="already registered"):
        b.register("n", "1.0.0", {"acc": 0.9}, "q")
    assert len(a.store.events()) == 1
    assert b.get("n", "1.0.0").metrics == {"acc": 0.1}
    assert_replayable(b)


def test_stale_rollback_is_checked_against_the_fresh_lineage(
    pair: tuple[ModelRegistry, ModelRegistry],
) -> None:
    a, b = pair
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        a.register("m", version, {}, "p")
    a.promote("m", "1.0.0", expected_current=None, gate_report=passing_report("m", "1.0.0"))
    a.promote("m", "1.1.0", expected_current="1.0.0", gate_report=passing_report("m", "1.1.0"))
    b.reload()  # b sees production 1.1.0 with 1.0.0 before it
    a.rollback("m")
    with pytest.raises(PromotionRefusedError, match="no earlier production version"):
        b.rollback("m")
    a.promote("m", "1.2.0", expected_current="1.0.0", gate_report=passing_report("m", "1.2.0"))
    with pytest.raises(PromotionRefusedError, match="is '1.2.0', caller expected '1.1.0'"):
        b.rollback("m", expected_current="1.1.0")
    change = b.rollback("m", expected_current="1.2.0")
    assert (change.version, change.previous) == ("1.0.0", "1.2.0")
    assert_replayable(a)


class RacingStore:
    """Wraps a store; before the next append, lets ``intruder`` write first (once)."""

    def __init__(self, inner: RegistryStore) -> None:
        self.inner = inner
        self.intruder: Callable[[], Any] | None = None

    def append(self, event: RegistryEvent, *, expected_position: int) -> int:
        intruder, self.intruder = self.intruder, None
        if intruder is not None:
            intruder()
        return self.inner.append(event, expected_position=expected_position)

    def events(self, name: str | None = None) -> list[RegistryEvent]:
        return self.inner.events(name)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_write_between_refresh_and_append_is_a_conflict(kind: str, tmp_path: Path) -> None:
    first, second = two_stores(kind, tmp_path / "registry.jsonl")
    racing = RacingStore(first)
    a = ModelRegistry(racing, clock=TickingClock())
    b = ModelRegistry(second, clock=TickingClock())
    a.register("m", "1.0.0", {}, "p")
    a.register("m", "1.1.0", {}, "p")
    gate = passing_report("m", "1.0.0")
    racing.intruder = lambda: b.promote("m", "1.0.0", expected_current=None, gate_report=gate)
    with pytest.raises(RegistryConflictError, match="expected position 2, the log has 3"):
        a.promote("m", "1.1.0", expected_current=None, gate_report=passing_report("m", "1.1.0"))
    assert [e.kind for e in first.events()] == ["registered", "registered", "promoted"]
    assert_replayable(b)
    # Calling again re-validates on the fresh log: now the compare-and-set refuses.
    with pytest.raises(PromotionRefusedError, match="caller expected None"):
        a.promote("m", "1.1.0", expected_current=None, gate_report=passing_report("m", "1.1.0"))


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_threads_racing_on_one_store_leave_a_replayable_log(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "registry.jsonl"
    setup = ModelRegistry(two_stores(kind, path)[0], clock=TickingClock())
    shared = setup.store
    versions = [f"1.{i}.0" for i in range(6)]
    for version in versions:
        setup.register("m", version, {}, "p")
    accepted: list[tuple[str, str | None]] = []
    guard = threading.Lock()

    def worker(seed: int) -> None:
        store = shared if kind != "jsonl_two_files" else JsonlRegistryStore(path)
        registry = ModelRegistry(store, clock=TickingClock())
        for attempt in range(15):
            current = registry.production("m")
            target = versions[(seed * 7 + attempt) % len(versions)]
            try:
                if target == current:
                    change = registry.rollback("m", expected_current=current)
                else:
                    report = passing_report("m", target)
                    change = registry.promote(
                        "m", target, expected_current=current, gate_report=report
                    )
            except (PromotionRefusedError, RegistryConflictError):
                registry.reload()
                continue
            with guard:
                accepted.append((change.version, change.previous))

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so that writes really interleave
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert_replayable(setup)
    history = ModelRegistry(shared, clock=TickingClock()).history("m")
    assert len(history) == len(accepted) > 0
    assert Counter((c.version, c.previous) for c in history) == Counter(accepted)
