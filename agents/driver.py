"""The one driver every stateful agent runs: batches in, a fold per key, send, ack, write.

An agent declares a :class:`StatefulStep` (how to route one record, the fold, how to
load and dump the state, how results become messages); :class:`BatchDriver` runs it on
each batch, against a :class:`Store` and a :class:`Sink` (agents/faust_step.py gives the
Faust ones and the agent):

1. route each record: a message to send as it is (a rejection, a re-keyed copy), or a
   :class:`Keyed` event for the fold;
2. group the keyed events by key, read each key's stored row once and drop the events
   at or below the row's offset for their origin (a replay after a crash or rebalance:
   already decided and sent);
3. fold each key's remaining events at its partition's clock (the newest
   ``StatefulStep.clock`` seen on that partition);
4. fold with no events the keys the expiry index hands out (``expire_after``);
5. turn every result into messages (one call for the whole batch, so scoring can be one
   model call), send them and wait for every acknowledgement;
6. then, together, send the derived ones and write each changed key's row once (state
   and offsets), and wait for both;
7. hand the batch's messages to ``StatefulStep.delivered`` (the metrics' counts).

:meth:`BatchDriver.decide` runs steps 1-5 up to handing the outputs to the sink and
:meth:`BatchDriver.complete` the rest, so the agent can decide the next batch while this
one waits for its acknowledgements (its rows, not yet written, are what the next batch
reads). Only once a batch is complete is it acked, so an input offset is never
committed before what it caused is on the broker, and the replay guard never hides an
output the broker does not have. docs/architecture.md tells the whole design.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from stream_app.expiry import ExpiryIndex
from stream_app.fold import Fold, Folded

__all__ = [
    "BatchDriver",
    "Decided",
    "Keyed",
    "Message",
    "Route",
    "Sink",
    "SkipLog",
    "StatefulStep",
    "Store",
    "broker_time",
    "headers_of",
    "origin_of",
    "received_at",
]

log = logging.getLogger(__name__)

S = TypeVar("S")
E = TypeVar("E")
R = TypeVar("R")

# Keys a batch expires per partition at most: when many keys go idle together (a crowd of
# clients that came in the same minute), they are expired over the next batches, so
# no batch holds the event loop for the whole crowd (bench_state: the longest stall).
EXPIRE_PER_BATCH = 512


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
    # Not sent: what the step wants to learn of the message once it is delivered
    # (``StatefulStep.delivered``), e.g. the fate of the request it tells.
    note: Any = field(default=None, compare=False)


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
                    self.agent, n, reason, kind, self.counts[reason],
                    extra={"agent": self.agent, "reason": reason, "count": n})  # fmt: skip


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
    skips: SkipLog | None = None  # None: a new log named after the step
    # The time of one event, for its partition's clock (the fold's ``now``); by default
    # the record's broker timestamp.
    clock: Callable[[Any, E], float] = field(default=lambda record, event: broker_time(record))
    # Expiry: a key not written for about this long (of its partition's clock) is folded
    # with no events; a state that comes back None is deleted. None: keys never expire.
    expire_after: float | None = None
    # Called with every message of a batch once they and its rows are acknowledged: once
    # per batch that completes, however often it was tried (metrics count here).
    delivered: Callable[[Sequence[Message]], None] | None = None

    def __post_init__(self) -> None:
        if self.skips is None:
            self.skips = SkipLog(self.name)


class Sink(Protocol):
    """Where messages go: send them all and return when every one is acknowledged."""

    async def send_all(self, messages: Sequence[tuple[int, Message]]) -> Sequence[Any]:
        """Send ``(source partition, message)`` pairs; wait for every acknowledgement."""
        ...


class Store(Protocol):
    """A table's rows by partition and key; ``write`` returns when the changelog has them.

    The partition is the key's source partition, which is also its changelog partition:
    a persistent store keeps one database per partition (and moves it at a rebalance).
    """

    def get(self, partition: int, key: bytes) -> Any:
        """The stored row of ``key`` on ``partition``, or None."""
        ...

    async def write(self, rows: Sequence[tuple[int, bytes, Any]]) -> None:
        """Write ``(partition, key, row)`` (row None deletes) and wait for the changelog."""
        ...

    def recovered(self) -> Sequence[tuple[int, bytes]]:
        """``(partition, key)`` of rows this worker never saw written (read back from the
        changelog, or persisted before a restart) not handed out yet; a slice a call."""
        ...


Row = tuple[int, bytes, dict[str, Any] | None]


@dataclass(frozen=True)
class Decided:
    """A batch decided by :meth:`BatchDriver.decide`: its messages, the sending of its
    outputs, its rows to write (and their boxes in the driver's unwritten rows) and the
    clock of each partition of its rows when it was decided (for the expiry index), and
    the driver's epoch then: a batch of an older epoch read rows since forgotten."""

    messages: Sequence[tuple[int, Message]]
    sending: asyncio.Future[Any]
    rows: Sequence[Row]
    boxes: Sequence[tuple[dict[str, Any] | None]]
    clocks: Mapping[int, float]
    epoch: int


@dataclass
class BatchDriver(Generic[S, E, R]):
    """Runs one :class:`StatefulStep` over batches of records (see the module doc)."""

    step: StatefulStep[S, E, R]
    store: Store
    sink: Sink
    expiry: ExpiryIndex | None = field(init=False)
    watermarks: dict[int, float] = field(init=False, default_factory=dict)
    # Rows of batches decided and not yet completed, boxed: a box is removed by the
    # batch that put it, unless a later batch has put its own since.
    _unwritten: dict[tuple[int, bytes], tuple[dict[str, Any] | None]] = field(
        init=False, default_factory=dict
    )
    # Counts :meth:`forget_unwritten`: a batch decided before the last one is stale.
    epoch: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        after = self.step.expire_after
        self.expiry = None if after is None else ExpiryIndex(after)

    @property
    def skips(self) -> SkipLog:
        """What the step skipped, by reason."""
        assert self.step.skips is not None  # noqa: S101 - set in StatefulStep.__post_init__
        return self.step.skips

    async def process(self, records: Sequence[Any]) -> None:
        """One batch: route, fold per key, expire, send and wait, then write and wait."""
        await self.complete(await self.decide(records))

    async def decide(self, records: Sequence[Any]) -> Decided:
        """Steps 1-5 up to the sending: route, fold, expire, emit, and hand the outputs
        to the sink. The rows wait unwritten until :meth:`complete`; a batch decided
        meanwhile reads them (:meth:`unwritten_row`), so two batches can overlap: the
        next one is decided while this one waits for its acknowledgements.
        Nothing is kept when it raises (an emit that fails): decide it again."""
        direct: list[tuple[int, Message]] = []
        groups: dict[bytes, list[tuple[Any, Keyed[E]]]] = {}
        for record in records:
            routed = self._route(record)
            if isinstance(routed, Keyed):
                groups.setdefault(routed.key, []).append((record, routed))
            else:
                direct.extend((record.message.partition, m) for m in routed)
        self._advance(groups.values())
        self._adopt()
        rows: list[Row] = []
        results: list[tuple[int, R]] = []
        replayed = 0
        for key, items in groups.items():
            partition = items[-1][0].message.partition
            changed, row, folded, seen = self._fold_key(partition, key, items)
            replayed += seen
            if changed:
                rows.append((partition, key, row))
                results.extend((partition, r) for r in folded)
        if replayed:  # one line per batch: a replay after a crash can be thousands
            self.skips.skip("replayed records, already decided", n=replayed)
        self._expire(set(groups), rows, results)
        emitted = await self.step.emit([r for _, r in results]) if results else []
        messages = direct + [
            (p, m) for (p, _), out in zip(results, emitted, strict=True) for m in out
        ]
        outputs = [(p, m) for p, m in messages if not m.derived]
        sending = asyncio.ensure_future(self.sink.send_all(outputs))
        boxes = []
        for partition, key, row in rows:  # no suspension since the fold: in step with it
            box = (row,)
            self._unwritten[(partition, key)] = box
            boxes.append(box)
        clocks = {p: self.watermarks[p] for p, _, _ in rows}
        return Decided(messages, sending, rows, boxes, clocks, self.epoch)

    async def complete(self, decided: Decided) -> None:
        """Steps 5-7 from the waiting: the outputs' acknowledgements, then the derived
        messages and the rows together, then ``delivered``. A batch decided after this
        one must complete after it (its rows overwrite these)."""
        try:
            await decided.sending
            messages = decided.messages
            # Both wait only for the outputs: the summaries count what is delivered, and
            # the rows' offsets must not reach the changelog before what they stand for.
            await asyncio.gather(
                self.sink.send_all([(p, m) for p, m in messages if m.derived]),
                self.store.write(decided.rows),
            )
        except BaseException:
            decided.sending.cancel()
            self._drop(decided)  # decided again from the stored rows
            raise
        self._index(decided.rows, decided.clocks)
        self._drop(decided)
        if self.step.delivered is not None:
            self.step.delivered([m for _, m in decided.messages])

    def _drop(self, decided: Decided) -> None:
        for (partition, key, _), box in zip(decided.rows, decided.boxes, strict=True):
            if self._unwritten.get((partition, key)) is box:
                del self._unwritten[(partition, key)]

    def forget_unwritten(self) -> None:
        """Drop the rows of every batch decided but not completed (one failed, and
        they are decided again from the stored rows)."""
        self._unwritten.clear()
        self.epoch += 1

    def unwritten_row(self, partition: int, key: bytes) -> Any:
        """The row of ``key`` as the batches decided so far left it: one not yet
        written if there is one, else the store's."""
        box = self._unwritten.get((partition, key))
        return self.store.get(partition, key) if box is None else box[0]

    def _advance(self, groups: Iterable[Sequence[tuple[Any, Keyed[E]]]]) -> None:
        """Move each partition's clock to the newest time among its events."""
        for items in groups:
            for record, keyed in items:
                partition, at = record.message.partition, self.step.clock(record, keyed.event)
                self.watermarks[partition] = max(at, self.watermarks.get(partition, at))

    def _expire(self, folded: set[bytes], rows: list[Row], results: list[tuple[int, R]]) -> None:
        """Fold the keys the expiry index hands out (not written for a while; at most
        ``EXPIRE_PER_BATCH`` per partition) with no events at their partition's clock: a
        state that comes back None is deleted.
        Only partitions of this batch are looked at: this worker surely owns them."""
        if self.expiry is None:
            return
        for partition in {p for p, _, _ in rows}:
            now = self.watermarks[partition]
            for key in self.expiry.due(partition, now, limit=EXPIRE_PER_BATCH):
                stored = self.unwritten_row(partition, key)
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

    def _adopt(self) -> None:
        """Rows this worker never saw written (read back at a start or a rebalance, or with
        rocksdb:// persisted before it) enter the expiry index: a key that never comes
        back expires like one written here."""
        recovered = self.store.recovered()
        if self.expiry is None or not recovered:
            return
        by_partition: dict[int, list[bytes]] = {}
        for partition, key in recovered:
            by_partition.setdefault(partition, []).append(key)
        for partition, keys in by_partition.items():
            self.expiry.adopt(partition, keys)

    def _index(self, rows: Sequence[Row], clocks: Mapping[int, float]) -> None:
        if self.expiry is None:
            return
        for partition, key, row in rows:
            if row is None:
                self.expiry.forget(partition, key)
            else:
                self.expiry.touch(partition, key, clocks[partition])

    def _route(self, record: Any) -> Route[E]:
        try:
            return self.step.route(record)
        except Exception as error:  # noqa: BLE001 - an agent never dies on one record
            self.skips.skip("a record the step could not route", error)
            return ()

    def _fold_key(
        self, partition: int, key: bytes, items: Sequence[tuple[Any, Keyed[E]]]
    ) -> tuple[bool, dict[str, Any] | None, tuple[R, ...], int]:
        """Fold one key's fresh events at its partition's clock -> (anything to write,
        the row or None to delete it, the results, how many events were replays)."""
        now = self.watermarks[partition]
        stored = self.unwritten_row(partition, key) or {}
        offsets: dict[str, int] = dict(stored.get("offsets", {}))
        fresh = [k for _, k in items if k.offset > offsets.get(k.origin, -1)]
        replayed = len(items) - len(fresh)
        if not fresh:
            return False, None, (), replayed
        for keyed in fresh:
            offsets[keyed.origin] = max(keyed.offset, offsets.get(keyed.origin, -1))
        data = stored.get("state")
        state = None if data is None else self.step.load(data)
        folded = self._fold(state, [k.event for k in fresh], now)
        if folded.state is None:
            return True, None, folded.results, replayed
        row = {"offsets": offsets, "state": self.step.dump(folded.state)}
        return True, row, folded.results, replayed

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


def received_at(kafka_timestamp: float | None) -> datetime:
    """When the broker received a message (its Kafka timestamp, seconds), else now.

    It is the broker's own clock only on a topic with LogAppendTime; on a CreateTime
    topic the producer chose it (the app warns at start about such input topics).
    """
    if kafka_timestamp is not None:
        return datetime.fromtimestamp(kafka_timestamp, UTC)
    return datetime.now(UTC)  # a broker always stamps; this is for hand-built events


def origin_of(record: Any) -> tuple[str, int]:
    """``("topic:partition", offset)`` of a Faust event's own message."""
    message = record.message
    return f"{message.topic}:{message.partition}", int(message.offset)


def headers_of(record: Any) -> Mapping[str, bytes]:
    """A record's headers as a dict (the last value of a repeated name wins)."""
    headers = record.message.headers or ()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name): bytes(value or b"") for name, value in pairs}
