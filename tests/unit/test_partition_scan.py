"""Scans of rocksdb:// partition databases on real rocksdict databases: slices, the offset
key, every key once, and what an assignment does to a scan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faust.stores.rocksdb import Store as RocksDBStore
from rocksdict import Options, Rdict, WriteBatch

from agents.partition_scan import KEYS_PER_CALL, PartitionScan

OFFSET = RocksDBStore.offset_key


@pytest.fixture
def dbs(tmp_path: Path) -> Iterator[dict[int, Rdict]]:
    """Partition -> an open raw-mode database, as Faust's rocksdb:// store opens them."""
    opened: dict[int, Rdict] = {}
    yield opened
    for db in opened.values():
        db.close()


def fill(dbs: dict[int, Rdict], where: Path, partition: int, keys: list[bytes]) -> None:
    db = dbs[partition] = Rdict(str(where / f"t-{partition}.db"), Options(raw_mode=True))
    batch = WriteBatch(raw_mode=True)
    for key in keys:
        batch.put(key, b'{"state":1}')
    batch.put(OFFSET, b"41")
    db.write(batch)


def keys(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{i:05d}".encode() for i in range(n)]


def started(partitions: set[int]) -> PartitionScan:
    scan = PartitionScan(skip=OFFSET)
    scan.assign(partitions)
    return scan


def drain(scan: PartitionScan, dbs: dict[int, Rdict], limit: int) -> list[list[tuple[int, bytes]]]:
    slices = []
    while taken := scan.take(dbs.__getitem__, limit):
        slices.append(taken)
    return slices


def test_every_key_once_in_bounded_slices_without_the_offset_key(
    dbs: dict[int, Rdict], tmp_path: Path
) -> None:
    big, small = keys("client", 5000), keys("other", 7)
    fill(dbs, tmp_path, 0, big)
    fill(dbs, tmp_path, 3, small)
    scan = started({0, 3})
    slices = drain(scan, dbs, KEYS_PER_CALL)
    assert [len(s) for s in slices] == [2048, 2048, 904 + 7]
    taken = [pair for s in slices for pair in s]
    assert sorted(taken) == sorted([(0, k) for k in big] + [(3, k) for k in small])
    assert len(set(taken)) == len(taken)
    assert scan.scanning == set() and scan.take(dbs.__getitem__, 10) == []


def test_a_slice_that_ends_on_the_last_key_finishes_on_the_next_call(
    dbs: dict[int, Rdict], tmp_path: Path
) -> None:
    fill(dbs, tmp_path, 0, keys("k", 3))
    scan = started({0})
    assert scan.take(dbs.__getitem__, 3) == [(0, k) for k in keys("k", 3)]
    assert scan.scanning == {0}
    assert scan.take(dbs.__getitem__, 3) == []
    assert scan.scanning == set()


def test_writes_during_a_scan_deleted_keys_are_not_handed_out(
    dbs: dict[int, Rdict], tmp_path: Path
) -> None:
    fill(dbs, tmp_path, 0, keys("k", 10))
    scan = started({0})
    first = scan.take(dbs.__getitem__, 3)
    assert first == [(0, k) for k in keys("k", 3)]
    db = dbs[0]
    db.delete(b"k-00002")  # the cursor's own key, expired meanwhile
    db.delete(b"k-00005")  # a key ahead of the cursor
    db.put(b"k-00001x", b"{}")  # behind the cursor: written by the driver, filed already
    db.put(b"k-00007x", b"{}")  # ahead of it: a row the scan has not reached
    rest = [key for _, key in scan.take(dbs.__getitem__, 100)]
    assert rest == [b"k-00003", b"k-00004", b"k-00006", b"k-00007", b"k-00007x",
                    b"k-00008", b"k-00009"]  # fmt: skip


def test_a_partition_given_up_stops_and_one_taken_again_starts_afresh(
    dbs: dict[int, Rdict], tmp_path: Path
) -> None:
    fill(dbs, tmp_path, 0, keys("a", 6))
    fill(dbs, tmp_path, 1, keys("b", 6))
    scan = started({0, 1})
    assert scan.take(dbs.__getitem__, 3) == [(0, k) for k in keys("a", 3)]
    scan.assign({1})  # 0 revoked mid-scan: its database may close, its cursor is gone
    assert scan.scanning == {1}
    assert {p for p, _ in scan.take(dbs.__getitem__, 100)} == {1}
    scan.assign({0, 1})  # 0 back: read from its first key; 1, kept, stays finished
    assert scan.take(dbs.__getitem__, 100) == [(0, k) for k in keys("a", 6)]
    assert scan.scanning == set()


def test_a_partition_kept_through_a_rebalance_goes_on_where_it_was(
    dbs: dict[int, Rdict], tmp_path: Path
) -> None:
    fill(dbs, tmp_path, 0, keys("a", 6))
    fill(dbs, tmp_path, 2, keys("c", 2))
    scan = started({0})
    assert scan.take(dbs.__getitem__, 3) == [(0, k) for k in keys("a", 3)]
    scan.assign({0, 2})  # a second partition joins: 0 is neither restarted nor stopped
    assert scan.owned == {0, 2}
    assert scan.take(dbs.__getitem__, 100) == [(0, k) for k in keys("a", 6)[3:]] + [
        (2, k) for k in keys("c", 2)
    ]


@pytest.mark.parametrize("limit", [0, -1])
def test_the_limit_is_checked(limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        PartitionScan(skip=OFFSET).take({}.__getitem__, limit)
