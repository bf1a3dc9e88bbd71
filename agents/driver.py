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
its source partition, the one that commits that partition's input offsets.
"""

from __future__ import annotations

import asyncio
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
    value: bytes
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
    # Expiry: a key whose state ``idle(state, now)`` says is done is deleted; keys are
    # looked at ``idle_after`` seconds (of the batch clock) after their last write.
    idle: Callable[[S, float], bool] | None = None
    idle_after: float = 3600.0


class Sink(Protocol):
    """Where messages go: send them all and return when every one is acknowledged."""

    async def send_all(self, messages: Sequence[tuple[int, Message]]) -> None:
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


@dataclass
class BatchDriver(Generic[S, E, R]):
    """Runs one :class:`StatefulStep` over batches of records (see the module doc)."""

    step: StatefulStep[S, E, R]
    store: Store
    sink: Sink
    expiry: ExpiryIndex = field(init=False)

    def __post_init__(self) -> None:
        self.expiry = ExpiryIndex(self.step.idle_after)

    @property
    def skips(self) -> SkipLog:
        """What the step skipped, by reason."""
        return self.step.skips

    async def process(self, records: Sequence[Any]) -> None:
        """One batch: route, fold per key, send and wait, then write and wait."""
        direct: list[tuple[int, Message]] = []
        groups: dict[bytes, list[tuple[Any, Keyed[E]]]] = {}
        for record in records:
            routed = self._route(record)
            if isinstance(routed, Keyed):
                groups.setdefault(routed.key, []).append((record, routed))
            else:
                direct.extend((record.message.partition, m) for m in routed)
        sourced: list[int] = []
        results: list[R] = []
        rows: list[tuple[int, bytes, Any]] = []
        clocks: dict[int, float] = {}
        for key, items in groups.items():
            partition = items[-1][0].message.partition
            row, folded, now = self._fold_key(key, items)
            if row is None:
                continue
            clocks[partition] = max(now, clocks.get(partition, now))
            rows.append((partition, key, row))
            results.extend(folded)
            sourced.extend([partition] * len(folded))
        emitted = await self.step.emit(results) if results else []
        messages = direct + [(p, m) for p, out in zip(sourced, emitted, strict=True) for m in out]
        await self.sink.send_all([(p, m) for p, m in messages if not m.derived])
        await self.sink.send_all([(p, m) for p, m in messages if m.derived])
        await self.store.write(rows + self._expired(rows, clocks))

    def _expired(
        self, rows: Sequence[tuple[int, bytes, Any]], clocks: Mapping[int, float]
    ) -> list[tuple[int, bytes, None]]:
        """Deletions for the keys that went idle, looked up through the expiry index
        only for the partitions of this batch (the ones this worker surely owns)."""
        idle = self.step.idle
        if idle is None:
            return []
        for partition, key, _ in rows:  # at the partition's clock: at most a batch late
            self.expiry.touch(partition, key, clocks[partition])
        gone: list[tuple[int, bytes, None]] = []
        for partition, now in clocks.items():
            for key in self.expiry.due(partition, now):
                data = (self.store.get(key) or {}).get("state")
                if data is not None and not idle(self.step.load(data), now):
                    self.expiry.touch(partition, key, now)
                elif data is not None:
                    gone.append((partition, key, None))
        return gone

    def _route(self, record: Any) -> Route[E]:
        try:
            return self.step.route(record)
        except Exception as error:  # noqa: BLE001 - an agent never dies on one record
            self.skips.skip("a record the step could not route", error)
            return ()

    def _fold_key(
        self, key: bytes, items: Sequence[tuple[Any, Keyed[E]]]
    ) -> tuple[dict[str, Any] | None, tuple[R, ...], float]:
        """Fold one key's fresh events; -> (the row to write or None, results, clock)."""
        stored = self.store.get(key) or {}
        offsets: dict[str, int] = dict(stored.get("offsets", {}))
        fresh = [(r, k) for r, k in items if k.offset > offsets.get(k.origin, -1)]
        if len(fresh) < len(items):
            self.skips.skip("replayed records, already decided", n=len(items) - len(fresh))
        if not fresh:
            return None, (), 0.0
        for _, keyed in fresh:
            offsets[keyed.origin] = max(keyed.offset, offsets.get(keyed.origin, -1))
        data = stored.get("state")
        state = None if data is None else self.step.load(data)
        now = max(float(r.message.timestamp or 0.0) for r, _ in fresh)
        folded = self._fold(state, [k.event for _, k in fresh], now)
        dumped = None if folded.state is None else self.step.dump(folded.state)
        return {"offsets": offsets, "state": dumped}, folded.results, now

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


def origin_of(record: Any) -> tuple[str, int]:
    """``("topic:partition", offset)`` of a Faust event's own message."""
    message = record.message
    return f"{message.topic}:{message.partition}", int(message.offset)


class FaustSink:
    """Sends through the app's producer and waits for the acknowledgements.

    Under exactly_once a message goes in the transaction of its source partition (the
    id Faust gives the transaction that commits that partition's input offsets), not of
    its destination partition, which another worker may own.
    """

    def __init__(self, app: StreamApp, source_topic: str) -> None:
        self.app = app
        self.source_topic = source_topic

    async def send_all(self, messages: Sequence[tuple[int, Message]]) -> None:
        if not messages:
            return
        producer = self.app.producer
        pending = []
        for source, m in messages:
            pending.append(
                await producer.send(
                    m.topic,
                    m.key,
                    m.value,
                    m.partition,
                    None,
                    list(m.headers) or None,
                    transactional_id=self._transaction(source),
                )  # fmt: skip
            )
        await asyncio.gather(*pending)

    def _transaction(self, partition: int) -> str | None:
        if not self.app.in_transaction:
            return None
        group = self.app.assignor.group_for_topic(self.source_topic)
        return f"{self.app.conf.id}-{group}-{partition}"


class TableStore:
    """A Faust table as the driver's :class:`Store`: rows in the table's local store,
    each write on the changelog partition of the key's source partition."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: bytes) -> Any:
        return self.table.get(key)

    async def write(self, rows: Sequence[tuple[int, bytes, Any]]) -> None:
        pending = []
        for partition, key, row in rows:
            if row is None:  # a tombstone, as Faust writes for ``del table[key]``
                pending.append(self.table.send_changelog(partition, key, None, None, "raw"))
                self.table.data.pop(key, None)
                continue
            pending.append(self.table.send_changelog(partition, key, row))
            self.table.data[key] = row
        if pending:
            await asyncio.gather(*pending)


def install_step(
    app: StreamApp,
    step: StatefulStep[S, E, R],
    sources: Iterable[str],
) -> BatchDriver[S, E, R]:
    """Declare the step's table and agent on ``app``; return its driver."""
    names = list(sources)
    table = json_table(app, step.table)
    topic = app.topic(*names, key_serializer="raw", value_serializer="raw")
    driver = BatchDriver(step, TableStore(table), FaustSink(app, names[0]))
    size, within = app.settings.batch_size, app.settings.batch_within_seconds

    @app.agent(topic, name=step.name)
    async def run(stream: Any) -> None:
        async for records in stream.take_events(size, within=within):
            await driver.process(records)

    return driver


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
