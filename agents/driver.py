"""The one driver every stateful agent runs: batches in, a fold per key, send, ack, write.

An agent declares a :class:`StatefulStep` (how to route one record, the fold, how to
load and dump the state, how results become messages) and :func:`install_step` runs it
over Faust ``take_events`` batches:

1. route each record: a message to send as it is (a rejection, a re-keyed copy), or a
   :class:`Keyed` event for the fold;
2. group the keyed events by key, read each key's stored row once and drop the events
   at or below the row's offset for their origin (a replay after a crash or rebalance:
   already decided and sent);
3. fold each key's remaining events, at the clock of the newest broker timestamp among
   them;
4. turn every result into messages (one call for the whole batch, so scoring can be one
   model call), send them all and wait for every acknowledgement;
5. write each changed key's row once (state and offsets) to its table and changelog,
   and wait for those acknowledgements too.

Only then does ``take_events`` ack the batch, so an input offset is never committed
before what it caused is on the broker, and the replay guard never hides an output the
broker does not have. Under exactly_once each message goes out in the transaction of
its source partition, the one that commits that partition's input offsets, and a batch
is processed one source partition at a time (:func:`transaction_parts`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import faust

from stream_app.app import StreamApp
from stream_app.expiry import ExpiryIndex
from stream_app.fold import Fold, Folded

__all__ = [
    "BatchDriver",
    "FaustSink",
    "Keyed",
    "Message",
    "Route",
    "Sink",
    "SkipLog",
    "StatefulStep",
    "TableStore",
    "broker_time",
    "install_step",
    "origin_of",
]

log = logging.getLogger(__name__)

S = TypeVar("S")
E = TypeVar("E")
R = TypeVar("R")


@dataclass(frozen=True)
class Message:
    """One record to send: topic name, key, value, headers, an explicit partition (None:
    the key's, by the producer's murmur2 partitioner) and timestamp (None: now).

    A ``derived`` message (a monitoring summary or count) is sent only once every other
    message of the batch is acknowledged: a crash in between then repeats the outputs
    it counts (at_least_once), never the count alone, so the monitors never count more
    than was delivered plus what was delivered twice.
    """

    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None
    timestamp: float | None = None
    derived: bool = False


@dataclass(frozen=True)
class Keyed(Generic[E]):
    """An event for the fold of ``key``; ``origin@offset`` is where it first entered."""

    key: bytes
    event: E
    origin: str
    offset: int


Route = Keyed[E] | Sequence[Message]


class SkipLog:
    """Counts what an agent skips, by reason; logs the reason and an error's type only,
    never the message, which may hold request data."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.counts: Counter[str] = Counter()

    def skip(self, reason: str, error: BaseException | None = None, n: int = 1) -> None:
        self.counts[reason] += n
        kind = "" if error is None else f" ({type(error).__name__})"
        log.warning("%s: skipped %d: %s%s [%d so far]",
                    self.agent, n, reason, kind, self.counts[reason])  # fmt: skip


@dataclass
class StatefulStep(Generic[S, E, R]):
    """What an agent declares; the driver does the rest.

    ``route`` must not raise: a record it cannot read becomes a message to its
    dead-letter topic, or an empty sequence when the step ignores it. ``emit`` turns the
    batch's results into messages, one sequence per result and in the same order.
    """

    name: str
    table: str
    route: Callable[[Any], Route[E]]
    fold: Fold[S, E, R]
    load: Callable[[Any], S]
    dump: Callable[[S], Any]
    emit: Callable[[Sequence[R]], Awaitable[Sequence[Sequence[Message]]]]
    skips: SkipLog = field(default_factory=lambda: SkipLog("agent"))
    # The time of one event, for its partition's clock (the fold's ``now``); by default
    # the record's broker timestamp.
    clock: Callable[[Any, E], float] = field(default=lambda record, event: broker_time(record))
    # Expiry: a key not written for about this long (of its partition's clock) is folded
    # with no events; a state that comes back None is deleted. None: keys never expire.
    expire_after: float | None = None


class Sink(Protocol):
    """Where messages go: send them all and return when every one is acknowledged."""

    async def send_all(self, messages: Sequence[tuple[int, Message]]) -> Sequence[Any]:
        """Send ``(source partition, message)`` pairs; wait for every acknowledgement."""
        ...


class Store(Protocol):
    """A table's rows by key; ``write`` returns when the changelog has them."""

    def get(self, key: bytes) -> Any:
        """The stored row of ``key``, or None."""
        ...

    async def write(self, rows: Sequence[tuple[int, bytes, Any]]) -> None:
        """Write ``(partition, key, row)`` (row None deletes) and wait for the changelog."""
        ...


Row = tuple[int, bytes, dict[str, Any] | None]


@dataclass
class BatchDriver(Generic[S, E, R]):
    """Runs one :class:`StatefulStep` over batches of records (see the module doc)."""

    step: StatefulStep[S, E, R]
    store: Store
    sink: Sink
    expiry: ExpiryIndex | None = field(init=False)
    watermarks: dict[int, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        after = self.step.expire_after
        self.expiry = None if after is None else ExpiryIndex(after)

    @property
    def skips(self) -> SkipLog:
        """What the step skipped, by reason."""
        return self.step.skips

    async def process(self, records: Sequence[Any]) -> None:
        """One batch: route, fold per key, expire, send and wait, then write and wait."""
        direct: list[tuple[int, Message]] = []
        groups: dict[bytes, list[tuple[Any, Keyed[E]]]] = {}
        for record in records:
            routed = self._route(record)
            if isinstance(routed, Keyed):
                groups.setdefault(routed.key, []).append((record, routed))
            else:
                direct.extend((record.message.partition, m) for m in routed)
        self._advance(groups.values())
        rows: list[Row] = []
        results: list[tuple[int, R]] = []
        for key, items in groups.items():
            partition = items[-1][0].message.partition
            changed, row, folded = self._fold_key(key, items, self.watermarks[partition])
            if changed:
                rows.append((partition, key, row))
                results.extend((partition, r) for r in folded)
        self._expire(set(groups), rows, results)
        emitted = await self.step.emit([r for _, r in results]) if results else []
        messages = direct + [
            (p, m) for (p, _), out in zip(results, emitted, strict=True) for m in out
        ]
        await self.sink.send_all([(p, m) for p, m in messages if not m.derived])
        await self.sink.send_all([(p, m) for p, m in messages if m.derived])
        await self.store.write(rows)
        self._index(rows)

    def _advance(self, groups: Iterable[Sequence[tuple[Any, Keyed[E]]]]) -> None:
        """Move each partition's clock to the newest time among its events."""
        for items in groups:
            for record, keyed in items:
                partition, at = record.message.partition, self.step.clock(record, keyed.event)
                self.watermarks[partition] = max(at, self.watermarks.get(partition, at))

    def _expire(self, folded: set[bytes], rows: list[Row], results: list[tuple[int, R]]) -> None:
        """Fold the keys the expiry index hands out (not written for a while) with no
        events at their partition's clock: a state that comes back None is deleted.
        Only partitions of this batch are looked at: this worker surely owns them."""
        if self.expiry is None:
            return
        for partition in {p for p, _, _ in rows}:
            now = self.watermarks[partition]
            for key in self.expiry.due(partition, now):
                stored = self.store.get(key)
                if key in folded or not stored or stored.get("state") is None:
                    continue
                out = self._fold(self.step.load(stored["state"]), [], now)
                if out.state is None:
                    rows.append((partition, key, None))
                elif out.results:
                    rows.append((partition, key, {**stored, "state": self.step.dump(out.state)}))
                else:
                    self.expiry.touch(partition, key, now)
                results.extend((partition, r) for r in out.results)

    def _index(self, rows: Sequence[Row]) -> None:
        if self.expiry is None:
            return
        for partition, key, row in rows:
            if row is None:
                self.expiry.forget(partition, key)
            else:
                self.expiry.touch(partition, key, self.watermarks[partition])

    def _route(self, record: Any) -> Route[E]:
        try:
            return self.step.route(record)
        except Exception as error:  # noqa: BLE001 - an agent never dies on one record
            self.skips.skip("a record the step could not route", error)
            return ()

    def _fold_key(
        self, key: bytes, items: Sequence[tuple[Any, Keyed[E]]], now: float
    ) -> tuple[bool, dict[str, Any] | None, tuple[R, ...]]:
        """Fold one key's fresh events -> (anything to write, the row or None to delete
        it, the results)."""
        stored = self.store.get(key) or {}
        offsets: dict[str, int] = dict(stored.get("offsets", {}))
        fresh = [k for _, k in items if k.offset > offsets.get(k.origin, -1)]
        if len(fresh) < len(items):
            self.skips.skip("replayed records, already decided", n=len(items) - len(fresh))
        if not fresh:
            return False, None, ()
        for keyed in fresh:
            offsets[keyed.origin] = max(keyed.offset, offsets.get(keyed.origin, -1))
        data = stored.get("state")
        state = None if data is None else self.step.load(data)
        folded = self._fold(state, [k.event for k in fresh], now)
        if folded.state is None:
            return True, None, folded.results
        return True, {"offsets": offsets, "state": self.step.dump(folded.state)}, folded.results

    def _fold(self, state: S | None, events: Sequence[E], now: float) -> Folded[S, R]:
        try:
            return self.step.fold(state, events, now)
        except Exception as error:  # noqa: BLE001 - isolate the event behind it
            self.skips.skip("a batch the fold refused; folding it one event at a time", error)
        results: list[R] = []
        for event in events:
            try:
                folded = self.step.fold(state, [event], now)
            except Exception as error:  # noqa: BLE001 - same reason
                self.skips.skip("an event the fold refused", error)
                continue
            state = folded.state
            results.extend(folded.results)
        return Folded(state, tuple(results))


def broker_time(record: Any) -> float:
    """A record's Kafka timestamp in seconds (0 when it has none)."""
    return float(record.message.timestamp or 0.0)


def origin_of(record: Any) -> tuple[str, int]:
    """``("topic:partition", offset)`` of a Faust event's own message."""
    message = record.message
    return f"{message.topic}:{message.partition}", int(message.offset)


class FaustSink:
    """Sends through the app's producer and waits for the acknowledgements.

    Under exactly_once a message goes in the transaction of its source partition (the
    id Faust gives the transaction that commits that partition's input offsets), not of
    its destination partition, which another worker may own. An acknowledgement that
    does not come within ``ack_timeout`` seconds is an error naming the topic, so a stuck
    producer stops the agent loudly instead of stalling it.
    """

    def __init__(self, app: StreamApp, source_topic: str, ack_timeout: float = 60.0) -> None:
        self.app = app
        self.source_topic = source_topic
        self.ack_timeout = ack_timeout

    async def send_all(self, messages: Sequence[tuple[int, Message]]) -> list[Any]:
        """Send, then wait for every acknowledgement; -> their record metadata."""
        if not messages:
            return []
        producer = self.app.producer
        pending = []
        for source, m in messages:
            pending.append(
                await producer.send(
                    m.topic,
                    m.key,
                    m.value,
                    m.partition,
                    m.timestamp,
                    list(m.headers) or None,
                    transactional_id=self._transaction(source),
                )  # fmt: skip
            )
        try:
            return list(await asyncio.wait_for(asyncio.gather(*pending), self.ack_timeout))
        except TimeoutError as error:
            topics = sorted({m.topic for _, m in messages})
            raise TimeoutError(
                f"no acknowledgement within {self.ack_timeout:g} s for {len(messages)} "
                f"messages to {', '.join(topics)}"
            ) from error

    def _transaction(self, partition: int) -> str | None:
        if not self.app.in_transaction:
            return None
        group = self.app.assignor.group_for_topic(self.source_topic)
        return f"{self.app.conf.id}-{group}-{partition}"


class TableStore:
    """A Faust table as the driver's :class:`Store`.

    A write goes to the table's changelog partition of the key's source partition
    through the same sink as the outputs (so, under exactly_once, in the same
    transaction), and reaches the table's local store once acknowledged. Faust's own
    write path (``table[key] = row``) queues the changelog record in a buffer that can
    be awaited only indirectly, and writes it to the current event's partition.
    """

    def __init__(self, app: StreamApp, table: Any, sink: FaustSink) -> None:
        self.app = app
        self.table = table
        self.sink = sink

    def get(self, key: bytes) -> Any:
        return self.table.get(key)

    async def write(self, rows: Sequence[tuple[int, bytes, Any]]) -> None:
        topic = self.table.changelog_topic.get_topic_name()
        messages = [
            (partition, Message(topic, key, None if row is None else _json(row), (), partition))
            for partition, key, row in rows
        ]
        acks = await self.sink.send_all(messages)
        data = self.table.data
        for (_, key, row), ack in zip(rows, acks, strict=True):
            if row is None:
                data.pop(key, None)
            else:
                data[key] = row
            # What Faust does on a changelog ack: a persistent store (rocksdb://) keeps
            # the offset it holds data up to, so a restart reads only the tail.
            if self.app.in_transaction:
                self.app.tables.persist_offset_on_commit(data, ack.topic_partition, ack.offset)
            else:
                data.set_persisted_offset(ack.topic_partition, ack.offset)


def _json(row: Any) -> bytes:
    return json.dumps(row, separators=(",", ":")).encode()


def install_step(
    app: StreamApp,
    step: StatefulStep[S, E, R],
    sources: Iterable[str],
) -> BatchDriver[S, E, R]:
    """Declare the step's table and agent on ``app``; return its driver."""
    names = list(sources)
    table = json_table(app, step.table)
    topic = app.topic(*names, key_serializer="raw", value_serializer="raw")
    sink = FaustSink(app, names[0])
    driver = BatchDriver(step, TableStore(app, table, sink), sink)
    app.drivers[step.name] = driver
    size, within = app.settings.batch_size, app.settings.batch_within_seconds

    @app.agent(topic, name=step.name)
    async def run(stream: Any) -> None:
        async for records in stream.take_events(size, within=within):
            async with app.commit_gate.batch():
                for part in transaction_parts(app, records):
                    await driver.process(part)

    return driver


def transaction_parts(app: StreamApp, records: Sequence[Any]) -> list[Sequence[Any]]:
    """The batch, or under exactly_once its records split by source partition.

    Each partition's transaction commits that partition's input offsets, so everything
    a part causes (outputs, derived summaries, table rows) goes in that one transaction.
    A summary counting records of several partitions, sent in one of their
    transactions, would stay committed when a kill aborts another's outputs: the
    replayed records were then counted twice (drift windows over the killed batch).
    """
    if not app.in_transaction:
        return [records]
    parts: dict[int, list[Any]] = {}
    for record in records:
        parts.setdefault(record.message.partition, []).append(record)
    return list(parts.values())


def json_table(app: StreamApp, name: str) -> Any:
    """A table with raw-bytes keys and JSON values, co-partitioned with its sources.

    ``key_type=bytes`` matters: changelog recovery decodes keys with the serializer
    Faust derives from ``key_type`` (JSON when unset), not with ``schema``'s, so
    without it a restarted worker cannot read back the raw keys it wrote.
    """
    return app.Table(
        name,
        default=None,
        key_type=bytes,
        schema=faust.Schema(key_serializer="raw", value_serializer="json"),
        partitions=app.settings.partitions,
    )


def headers_of(record: Any) -> Mapping[str, bytes]:
    """A record's headers as a dict (the last value of a repeated name wins)."""
    headers = record.message.headers or ()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name): bytes(value or b"") for name, value in pairs}
