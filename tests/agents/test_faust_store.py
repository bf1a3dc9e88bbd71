"""The memory store that keeps what it holds across a rebalance (stream_app/faust_store.py):
which offsets recovery may trust, and which rows an assignment drops."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from stream_app.faust_store import HeldMemoryStore

CHANGELOG = "app-rate-limits-changelog"


class Assignor:
    def __init__(self) -> None:
        self.actives: set[TP] = set()
        self.standbys: set[TP] = set()

    def assigned_actives(self) -> set[TP]:
        return self.actives

    def assigned_standbys(self) -> set[TP]:
        return self.standbys


def store_with(assignor: Assignor) -> HeldMemoryStore:
    store = HeldMemoryStore.__new__(HeldMemoryStore)
    store.__post_init__()
    topic = SimpleNamespace(get_topic_name=lambda: CHANGELOG)
    store.app = SimpleNamespace(assignor=assignor)
    store.table = SimpleNamespace(changelog_topic=topic)
    return store


async def assign(
    store: HeldMemoryStore, assignor: Assignor, active: set[int], standby: set[int] | None = None
) -> None:
    assignor.actives = {TP(CHANGELOG, p) for p in active} | {TP("requests", p) for p in active}
    assignor.standbys = {TP(CHANGELOG, p) for p in standby or ()}
    await store.on_rebalance(set(), set(), set())


def changelog(records: list[tuple[int, int, bytes, Any]]) -> list[Any]:
    """(partition, offset, key, value) as the recovery hands them to the store."""
    return [
        SimpleNamespace(key=key, value=value,
                        message=SimpleNamespace(partition=p, offset=o, value=b"x"))
        for p, o, key, value in records
    ]  # fmt: skip


def offsets(store: HeldMemoryStore) -> dict[int, int | None]:
    return {p: store.persisted_offset(TP(CHANGELOG, p)) for p in range(4)}


async def test_a_partition_kept_through_a_rebalance_is_read_only_past_its_rows() -> None:
    assignor = Assignor()
    store = store_with(assignor)
    await assign(store, assignor, active={0, 1, 2, 3})
    store.apply_changelog_batch(changelog([(0, 4, b"a", 1), (1, 9, b"b", 2)]), bytes, int)
    for partition, key, offset in ((0, b"c", 5), (2, b"d", 0)):  # the driver's own writes
        store.data[key] = 3
        store.place(key, partition)
        store.set_persisted_offset(TP(CHANGELOG, partition), offset)
    # A second worker joins: this one keeps 0 and 1, and holds 2 as its standby.
    await assign(store, assignor, active={0, 1}, standby={2})
    await store.on_recovery_completed({TP(CHANGELOG, 0), TP(CHANGELOG, 1)}, {TP(CHANGELOG, 2)})
    assert offsets(store) == {0: 5, 1: 9, 2: 0, 3: None}
    assert dict(store.data) == {b"a": 1, b"b": 2, b"c": 3, b"d": 3}


async def test_a_partition_given_away_leaves_whole_and_is_read_from_its_start_later() -> None:
    assignor = Assignor()
    store = store_with(assignor)
    await assign(store, assignor, active={0, 1})
    store.apply_changelog_batch(changelog([(0, 4, b"a", 1), (1, 9, b"b", 2)]), bytes, int)
    store.data[b"c"] = 3
    store.place(b"c", 1)
    store.set_persisted_offset(TP(CHANGELOG, 1), 10)
    await assign(store, assignor, active={0})  # 1 went to another worker
    assert offsets(store) == {0: 4, 1: None, 2: None, 3: None}
    assert dict(store.data) == {b"a": 1}  # the driver's row of 1 went too
    # Records of a partition not held (a standby no longer assigned) set no offset.
    store.apply_changelog_batch(changelog([(1, 30, b"b", 5)]), bytes, int)
    assert store.persisted_offset(TP(CHANGELOG, 1)) is None


async def test_a_standby_applied_from_its_start_serves_a_failover_from_its_last_record() -> None:
    assignor = Assignor()
    store = store_with(assignor)
    await assign(store, assignor, active={0}, standby={1})
    store.apply_changelog_batch(changelog([(1, o, b"k%d" % o, o) for o in range(3)]), bytes, int)
    await store.on_recovery_completed({TP(CHANGELOG, 0)}, {TP(CHANGELOG, 1)})
    store.apply_changelog_batch(changelog([(1, 3, b"k3", 3)]), bytes, int)
    await assign(store, assignor, active={0, 1})  # the other worker died
    assert store.persisted_offset(TP(CHANGELOG, 1)) == 3
    assert sorted(store.data) == [b"k0", b"k1", b"k2", b"k3"]
