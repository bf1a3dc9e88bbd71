"""A Faust table as the batch driver's store: rows by partition, and the offsets a
persistent store keeps so that a restart reads only the changelog's tail.

A write goes to the table's changelog partition of the key's source partition through
the same sink as the outputs (so, under exactly_once, in the same transaction), and
reaches the local store once acknowledged: under at_least_once at once, under
exactly_once when the transaction that holds it commits. Faust's own write path
(``table[key] = row``) cannot serve the driver: it queues the changelog record in a
buffer that can be awaited only indirectly, and both it and the rocksdb store's reads
take the partition from the current event, which in a batch of several partitions is
the last one read, not the key's.

With ``rocksdb://`` each partition's rows and the offset of the changelog record they
hold up to (Faust's ``offset_key``, which its recovery reads as where to start) are
written in one RocksDB write batch, so a SIGKILL leaves the two in step. Under
exactly_once a row written in a transaction that never commits must not reach the
database: recovery reads only committed records and would never overwrite it, and the
replay guard would then skip the replayed records the row claims, so their outputs
would be lost. Such rows wait in :attr:`TableStore.pending` (reads see them first) until
the app's table manager reports the commit (``stream_app.faust_fixes``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP
from pydantic_core import from_json, to_json
from rocksdict import WriteBatch

from agents.driver import Message, Sink
from agents.partition_scan import KEYS_PER_CALL
from stream_app.app import StreamApp

__all__ = ["TableStore"]

_DELETED = object()  # a pending deletion (a row of None)


class _Row(NamedTuple):
    """A row written, and its JSON (its changelog record's value and what the store keeps)."""

    value: Any
    encoded: bytes


class TableStore:
    """A Faust table as the driver's :class:`~agents.driver.Store` (see the module doc).

    ``sources`` are the topics the table's rows are decided from: a commit of one of
    their partitions commits the transaction that holds that partition's rows.
    """

    def __init__(self, app: StreamApp, table: Any, sink: Sink, sources: Iterable[str]) -> None:
        self.app = app
        self.table = table
        self.sink = sink
        self.sources = frozenset(sources)
        # exactly_once: partition -> key -> _Row (or _DELETED) sent in an open transaction,
        # and the changelog offset of the last of them.
        self.pending: dict[int, dict[bytes, Any]] = {}
        self.pending_offsets: dict[int, int] = {}
        commits = getattr(app.tables, "commit_listeners", None)
        if commits is not None:  # the app's SeekingTableManager
            commits.append(self)

    def get(self, partition: int, key: bytes) -> Any:
        row = self.pending.get(partition, {}).get(key)
        if row is not None:
            return None if row is _DELETED else row.value
        data = self.table.data
        if isinstance(data, RocksDBStore):
            value = data._db_for_partition(partition).get(key)
        else:
            value = data.get(key)
        return None if value is None else from_json(value)

    def recovered(self) -> list[tuple[int, bytes]]:
        """Keys of rows this worker never saw written, at most ``KEYS_PER_CALL`` a call
        (the rest wait for the next): first those the changelog recovery read back, then
        with ``rocksdb://`` those persisted in the partition databases this worker took
        (``RecoveringTable.scan``), which a restart does not read back."""
        backlog = self.table.recovered_keys
        out = [backlog.popleft() for _ in range(min(len(backlog), KEYS_PER_CALL))]
        scan = self.table.scan
        if scan is not None and len(out) < KEYS_PER_CALL:
            out.extend(scan.take(self.table.data._db_for_partition, KEYS_PER_CALL - len(out)))
        return out

    async def write(self, rows: Sequence[tuple[int, bytes, Any]]) -> None:
        topic = self.table.changelog_topic.get_topic_name()
        encoded: list[Any] = [
            _DELETED if row is None else _Row(row, _json(row)) for _, _, row in rows
        ]
        messages = [
            (partition, Message(topic, key, _value(row), (), partition))
            for (partition, key, _), row in zip(rows, encoded, strict=True)
        ]
        acks = await self.sink.send_all(messages)
        offsets: dict[int, int] = {}
        changes: dict[int, dict[bytes, Any]] = {}
        for (partition, key, _), row, ack in zip(rows, encoded, acks, strict=True):
            changes.setdefault(partition, {})[key] = row
            offsets[partition] = max(ack.offset, offsets.get(partition, -1))
        for partition, changed in changes.items():
            if self.app.in_transaction:
                self.pending.setdefault(partition, {}).update(changed)
                self.pending_offsets[partition] = offsets[partition]
            else:
                self._apply(partition, changed, offsets[partition])

    def on_commit(self, offsets: Mapping[Any, int]) -> None:
        """Source partitions were committed: their transactions' rows go to the store."""
        for tp in offsets:
            if tp.topic in self.sources and tp.partition in self.pending:
                changed = self.pending.pop(tp.partition)
                self._apply(tp.partition, changed, self.pending_offsets.pop(tp.partition))

    def on_rebalance(self) -> None:
        """Forget rows of transactions the rebalance did not commit (they are aborted)."""
        self.pending.clear()
        self.pending_offsets.clear()

    def _apply(self, partition: int, changed: Mapping[bytes, Any], offset: int) -> None:
        """Rows of one partition and the changelog offset they hold up to, into the store."""
        data = self.table.data
        if isinstance(data, RocksDBStore):
            batch = WriteBatch(raw_mode=True)
            for key, row in changed.items():
                if row is _DELETED:
                    batch.delete(key)
                else:
                    batch.put(key, row.encoded)
            batch.put(data.offset_key, str(offset).encode())
            data._db_for_partition(partition).write(batch)
            return
        # memory:// (stream_app.faust_store.HeldMemoryStore): the rows, the partition of
        # each, and the offset they include, so that a rebalance reads only what follows.
        place = getattr(data, "place", None)
        for key, row in changed.items():
            if row is _DELETED:
                data.pop(key, None)
            else:
                data[key] = row.encoded  # bytes: the garbage collector does not walk them
                if place is not None:
                    place(key, partition)
        if place is not None:
            data.set_persisted_offset(TP(self.table.changelog_topic.get_topic_name(), partition),
                                      offset)  # fmt: skip


def _value(row: Any) -> bytes | None:
    """A changelog record's value: the row's JSON, or None (a tombstone) for a deletion."""
    return None if row is _DELETED else row.encoded


def _json(row: Any) -> bytes:
    """A row's compact JSON, by pydantic's serializer (7 to 10 times ``json.dumps`` on
    the driver's rows, one of which every request writes); NaN and infinities as
    ``json`` writes them."""
    return to_json(row, inf_nan_mode="constants")
