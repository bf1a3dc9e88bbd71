"""The driver's table store on a real rocksdb:// table (no broker: the sink acknowledges).

Rows are read and written by their own partition; with each partition's rows goes the
changelog offset Faust's recovery starts after, at once under at_least_once and only at
the commit of the partition's transaction under exactly_once.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faust.assignor.client_assignment import ClientAssignment
from faust.types import TP

from agents.driver import Message
from agents.faust_step import json_table
from agents.partition_scan import KEYS_PER_CALL
from agents.table_store import TableStore
from stream_app.app import StreamApp, create_app
from stream_app.config import load_settings
from stream_app.metrics_page import table_rows

SOURCE = "requests"


@dataclass(frozen=True)
class Ack:
    topic_partition: TP
    offset: int


class AckingSink:
    """Acknowledges every message with the next offset of its partition."""

    def __init__(self) -> None:
        self.offsets: dict[int, itertools.count[int]] = {}
        self.sent: list[Message] = []

    async def send_all(self, messages: Sequence[tuple[int, Message]]) -> list[Ack]:
        acks = []
        for _, m in messages:
            assert m.partition is not None
            counter = self.offsets.setdefault(m.partition, itertools.count())
            acks.append(Ack(TP(m.topic, m.partition), next(counter)))
            self.sent.append(m)
        return acks


def _store(tmp_path: Path, guarantee: str) -> tuple[StreamApp, Any, TableStore, AckingSink]:
    settings = {"STREAM_STORE": "rocksdb://", "STREAM_PROCESSING_GUARANTEE": guarantee}
    app = create_app(load_settings(settings, app_id="ts", data_dir=tmp_path))
    app.in_worker = True  # as `stream-app worker` runs it: exactly_once means transactions
    table = json_table(app, "rows")
    sink = AckingSink()
    return app, table, TableStore(app, table, sink, [SOURCE]), sink


def _on_disk(table: Any, partition: int, key: bytes) -> bytes | None:
    value = table.data._db_for_partition(partition).get(key)
    return None if value is None else bytes(value)


def _persisted(table: Any, partition: int) -> int | None:
    result = table.data.persisted_offset(TP(table.changelog_topic.get_topic_name(), partition))
    return None if result is None else int(result)


async def test_at_least_once_rows_and_offset_reach_their_partition_at_once(
    tmp_path: Path,
) -> None:
    _, table, store, sink = _store(tmp_path, "at_least_once")
    await store.write([(2, b"k1", {"n": 1}), (2, b"k2", {"n": 2}), (3, b"k3", {"n": 3})])
    assert [(m.partition, m.key) for m in sink.sent] == [(2, b"k1"), (2, b"k2"), (3, b"k3")]
    assert store.get(2, b"k1") == {"n": 1}
    assert store.get(0, b"k1") is None  # another partition's database
    assert _on_disk(table, 2, b"k2") == b'{"n":2}'
    assert (_persisted(table, 2), _persisted(table, 3), _persisted(table, 0)) == (1, 0, None)
    await store.write([(2, b"k1", None)])
    assert store.get(2, b"k1") is None
    assert _on_disk(table, 2, b"k1") is None
    assert _persisted(table, 2) == 2


async def test_exactly_once_rows_wait_for_their_transactions_commit(tmp_path: Path) -> None:
    app, table, store, _ = _store(tmp_path, "exactly_once")
    await store.write([(1, b"k1", {"n": 1}), (2, b"k2", {"n": 2})])
    await store.write([(1, b"k1", None), (1, b"k4", {"n": 4})])
    # The driver sees its own writes; the database holds nothing uncommitted.
    assert (store.get(1, b"k1"), store.get(1, b"k4"), store.get(2, b"k2")) == (
        None,
        {"n": 4},
        {"n": 2},
    )
    assert _on_disk(table, 1, b"k4") is None
    assert _persisted(table, 1) is None

    # A commit of partition 1 of a source topic (as Faust's consumer reports it).
    app.tables.on_commit({TP(SOURCE, 1): 10, TP("other-topic", 2): 5})
    assert _on_disk(table, 1, b"k4") == b'{"n":4}'
    assert _on_disk(table, 1, b"k1") is None
    assert _persisted(table, 1) == 2
    assert _on_disk(table, 2, b"k2") is None  # partition 2's transaction is still open
    assert store.get(2, b"k2") == {"n": 2}

    # A rebalance drops what its revoke handler did not commit: it is aborted. (The
    # table manager tells its listeners so before Faust's own rebalance, which needs a
    # running app.)
    assert store in app.tables.commit_listeners
    store.on_rebalance()
    assert store.get(2, b"k2") is None
    app.tables.on_commit({TP(SOURCE, 2): 7})
    assert _on_disk(table, 2, b"k2") is None
    assert _persisted(table, 2) is None


async def test_table_rows_for_metrics_without_a_scan(tmp_path: Path) -> None:
    _, table, store, _ = _store(tmp_path, "at_least_once")
    await store.write([(2, b"k1", {"n": 1}), (2, b"k2", {"n": 2}), (3, b"k3", {"n": 3})])
    # RocksDB's estimate, less each database's offset key: exact for rows written once.
    assert table_rows(table) == 3

    app = create_app(load_settings({}, app_id="mem", data_dir=tmp_path / "mem"))
    held = json_table(app, "rows")
    memory = TableStore(app, held, AckingSink(), [SOURCE])
    await memory.write([(0, b"k1", {"n": 1}), (1, b"k2", {"n": 2}), (1, b"k3", {"n": 3})])
    await memory.write([(1, b"k2", None), (0, b"k1", {"n": 4})])
    assert table_rows(held) == 2  # len() of the memory store


def _restart(app: StreamApp, table: Any, tmp_path: Path) -> tuple[StreamApp, Any, TableStore]:
    """A new app on the same data directory (as a restarted worker); the old one's
    databases are closed first (RocksDB locks a database while it is open)."""
    for db in table.data._dbs.values():
        db.close()
    table.data._dbs.clear()
    settings = {"STREAM_STORE": "rocksdb://"}
    again = create_app(load_settings(settings, app_id="ts", data_dir=tmp_path))
    again_table = json_table(again, "rows")
    return again, again_table, TableStore(again, again_table, AckingSink(), [SOURCE])


async def _assign(app: StreamApp, table: Any, active: set[int], before: set[int]) -> None:
    """A rebalance that gives this worker ``active`` (it had ``before``)."""
    topic = table.changelog_topic.get_topic_name()
    app.assignor._assignment = ClientAssignment(actives={topic: sorted(active)}, standbys={})
    tps = {TP(topic, p) for p in active}
    old = {TP(topic, p) for p in before}
    await table.on_rebalance(tps, old - tps, tps - old, 0)


async def test_rows_persisted_before_a_restart_are_handed_to_the_expiry_index_in_slices(
    tmp_path: Path,
) -> None:
    app, table, store, _ = _store(tmp_path, "at_least_once")
    rows = {1: [f"c-{i:05d}".encode() for i in range(KEYS_PER_CALL + 100)],
            2: [b"d-1", b"d-2"], 3: [b"e-1"]}  # fmt: skip
    await store.write([(p, key, {"state": 1}) for p, keys in rows.items() for key in keys])
    app, table, store = _restart(app, table, tmp_path)
    assert store.recovered() == []  # no partition taken yet: nothing to hand out
    await _assign(app, table, {1, 2}, set())
    table.recovered_keys.extend([(2, b"d-2")])  # the changelog's tail, read back first
    first, second, third = store.recovered(), store.recovered(), store.recovered()
    assert len(first) == KEYS_PER_CALL and first[0] == (2, b"d-2")
    assert first[1:] == [(1, key) for key in rows[1][: KEYS_PER_CALL - 1]]
    assert second == [(1, key) for key in rows[1][KEYS_PER_CALL - 1 :]] + [
        (2, b"d-1"), (2, b"d-2")
    ]  # fmt: skip
    assert third == []  # partition 3 is another worker's; the offset keys are no rows


async def test_a_partition_revoked_mid_scan_stops_and_is_scanned_afresh_when_it_returns(
    tmp_path: Path,
) -> None:
    app, table, store, _ = _store(tmp_path, "at_least_once")
    keys = [f"c-{i:05d}".encode() for i in range(KEYS_PER_CALL + 100)]
    await store.write([(1, key, {"state": 1}) for key in keys] + [(2, b"d-1", {"state": 1})])
    app, table, store = _restart(app, table, tmp_path)
    await _assign(app, table, {1}, set())
    assert store.recovered() == [(1, key) for key in keys[:KEYS_PER_CALL]]
    await _assign(app, table, {2}, {1})  # 1 moves to another worker, 2 comes here
    assert 1 not in table.data._dbs  # Faust closed it; the scan does not open it again
    assert store.recovered() == [(2, b"d-1")]
    assert 1 not in table.data._dbs
    await _assign(app, table, {1, 2}, {2})
    assert store.recovered() == [(1, key) for key in keys[:KEYS_PER_CALL]]


async def test_a_row_is_kept_and_sent_as_the_json_it_reads_back(tmp_path: Path) -> None:
    """What the store keeps and what the changelog carries are the same JSON, and a row
    reads back equal, with the values ``json`` itself writes and reads (NaN, infinities,
    text beyond ASCII, nesting)."""
    _, table, store, sink = _store(tmp_path, "at_least_once")
    row = {"n": 1, "f": 0.1 + 0.2, "inf": math.inf, "neg": -math.inf, "t": "café ✓",
           "xs": [1, [2.5, None]], "d": {"k": True}}  # fmt: skip
    await store.write([(2, b"k", row), (2, b"nan", {"x": math.nan})])
    got = store.get(2, b"k")
    assert got == row
    assert math.isnan(store.get(2, b"nan")["x"])
    record = sink.sent[0].value
    assert record == table.data._db_for_partition(2).get(b"k")
    assert json.loads(record) == row
    assert math.isnan(json.loads(sink.sent[1].value)["x"])
