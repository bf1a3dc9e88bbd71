"""The batch driver on Faust: its sink and table store, and the agent that runs a step.

:func:`install_step` declares a step's table and an agent that feeds the step's
:class:`~agents.driver.BatchDriver` with :func:`take_batches` batches, deciding the next
batch while the last one completes (``STREAM_BATCH_OVERLAP``). Under exactly_once each
message goes out in the transaction of its source partition (the one that commits that
partition's input offsets), a batch is processed one source partition at a time
(:func:`transaction_parts`), and batches take turns with commits (``app.commit_gate``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, TypeVar

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from agents.driver import BatchDriver, Decided, Message, StatefulStep
from agents.partition_scan import PartitionScan
from agents.table_store import TableStore
from stream_app.app import StreamApp
from stream_app.faust_store import HeldTable

__all__ = [
    "EXIT_TRANSACTION_FAILED",
    "FaustSink",
    "install_step",
    "json_table",
    "take_batches",
    "transaction_parts",
]

log = logging.getLogger(__name__)

_MAX_RETRY_SECONDS = 30.0
# Messages to one topic partition in one send_all from which they go as record batches of
# their own (see _send_batches): a backlog's batch of 256 requests gives about 64 per
# partition of each output topic; a steady load's batches give a few.
RECORD_BATCH_MIN = 32
# A worker whose batch failed under exactly_once exits with this (EX_TEMPFAIL): start it
# again; nothing of the failed batch or of the uncommitted ones before it was committed.
EXIT_TRANSACTION_FAILED = 75

S = TypeVar("S")
E = TypeVar("E")
R = TypeVar("R")


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
        if self.app.in_transaction:
            waiting = self._send_each(messages)
        else:
            producer: Any = self.app.producer  # Faust's, over aiokafka's
            waiting = _send_batches(producer._ensure_producer(), messages)  # noqa: SLF001
        try:
            return await asyncio.wait_for(waiting, self.ack_timeout)
        except TimeoutError as error:
            topics = sorted({m.topic for _, m in messages})
            raise TimeoutError(
                f"no acknowledgement within {self.ack_timeout:g} s for {len(messages)} "
                f"messages to {', '.join(topics)}"
            ) from error

    async def _send_each(self, messages: Sequence[tuple[int, Message]]) -> list[Any]:
        """One send per message through Faust's producer, in its source's transaction."""
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
        return list(await asyncio.gather(*pending))

    def _transaction(self, partition: int) -> str | None:
        if not self.app.in_transaction:
            return None
        group = self.app.assignor.group_for_topic(self.source_topic)
        return f"{self.app.conf.id}-{group}-{partition}"


async def _send_batches(producer: Any, messages: Sequence[tuple[int, Message]]) -> list[Any]:
    """Send through aiokafka's producer, a topic partition's messages as record batches
    of their own when there are at least :data:`RECORD_BATCH_MIN` of them (a backlog's
    batches), else one ``send`` each into the producer's shared batches. -> each
    message's record metadata, in order (in a record batch of its own, the batch's base
    offset plus its place in it).

    A record batch of its own skips, for each message, a metadata lookup, two copies of
    the topic's partition set, the partitioning and a future (a sixth of the event
    loop's time in a profile of the worker draining a backlog). But aiokafka queues such
    a batch behind the partition's pending one, so a few messages sent that way wait
    for every other sender's batch before them: at a steady 425 requests/s the p99 of a
    prediction was 1.8 s with record batches for every send, against 0.5 s for the old
    code's one send per message (BENCHMARKS.md).
    A partition's messages are sent in order; the partitions' side by side.
    """
    by_partition: dict[tuple[str, int], list[int]] = {}
    topics: set[str] = set()
    for index, (_, m) in enumerate(messages):
        if m.topic not in topics:
            await producer.client._wait_on_metadata(m.topic)  # noqa: SLF001 - as send does
            topics.add(m.topic)
        partition = m.partition
        if partition is None:  # the producer's partitioner, as send would choose
            partition = producer._partition(m.topic, None, m.key, m.value, m.key, m.value)  # noqa: SLF001
        by_partition.setdefault((m.topic, partition), []).append(index)
    acks: list[Any] = [None] * len(messages)

    async def send_each(topic: str, partition: int, indexes: list[int]) -> None:
        sent = []
        for index in indexes:
            m = messages[index][1]
            future = await producer.send(
                topic, m.value, key=m.key, partition=partition,
                timestamp_ms=_millis(m), headers=list(m.headers),
            )  # fmt: skip
            sent.append(future)
        for index, future in zip(indexes, sent, strict=True):
            acks[index] = await future

    async def send(topic: str, partition: int, indexes: list[int]) -> None:
        if len(indexes) < RECORD_BATCH_MIN:
            await send_each(topic, partition, indexes)
            return
        batches: list[tuple[Any, list[int]]] = [(producer.create_batch(), [])]
        for index in indexes:
            m = messages[index][1]
            if not _append(batches[-1][0], m):  # full: the next batch (an empty one takes any)
                batches.append((producer.create_batch(), []))
                if not _append(batches[-1][0], m):
                    raise ValueError(f"a message to {topic} does not fit in a record batch")
            batches[-1][1].append(index)
        sent = []
        for builder, members in batches:
            builder.close()  # what it holds is what these acks stand for
            sent.append((await producer.send_batch(builder, topic, partition=partition), members))
        for future, members in sent:
            base = await future
            for place, index in enumerate(members):
                acks[index] = base._replace(offset=base.offset + place)

    await asyncio.gather(*(send(t, p, ix) for (t, p), ix in by_partition.items()))
    return acks


def _append(builder: Any, m: Message) -> bool:
    """``m`` into the record batch; False when the batch is full."""
    headers = list(m.headers)
    return (
        builder.append(timestamp=_millis(m), key=m.key, value=m.value, headers=headers) is not None
    )


def _millis(m: Message) -> int | None:
    """The message's timestamp as Kafka's milliseconds (None: the producer's now)."""
    return None if m.timestamp is None else int(m.timestamp * 1000)


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
    driver = BatchDriver(step, TableStore(app, table, sink, names), sink)
    app.drivers[step.name] = driver
    size, within = app.settings.batch_size, app.settings.batch_within_seconds
    overlap = app.settings.batch_overlap

    @app.agent(topic, name=step.name)
    async def run(stream: Any) -> None:
        await _run(app, driver, step.name, stream, take_batches(stream, size, within), overlap)

    return driver


async def _run(
    app: StreamApp,
    driver: BatchDriver[Any, Any, Any],
    name: str,
    stream: Any,
    batches: AsyncIterator[list[Any]],
    overlap: bool,
) -> None:
    """Decide each batch, then complete it in a task while the next one is decided
    (``overlap``; else each completes before the next is taken).

    A batch is acked, and its hold on the commit gate released, once it is complete:
    never before what it caused is on the broker. Batches complete in the order they
    were decided (the later one's rows overwrite the earlier's).
    """
    completing: asyncio.Future[None] | None = None
    decide_lock = asyncio.Lock()  # a failed completion decides again: never meanwhile
    async for records in batches:
        await app.commit_gate.begin()
        try:
            async with decide_lock:
                decided = [(part, await _decide(app, driver, name, part))
                           for part in transaction_parts(app, records)]  # fmt: skip
        except BaseException:
            app.commit_gate.end()
            raise
        if completing is not None:
            await asyncio.shield(completing)
        completing = asyncio.ensure_future(
            _complete(app, driver, name, stream, records, decided, decide_lock)
        )
        if not overlap:
            await asyncio.shield(completing)
            completing = None


async def _decide(
    app: StreamApp, driver: BatchDriver[Any, Any, Any], name: str, part: Sequence[Any]
) -> Decided | None:
    """The part decided, or None when deciding it failed (its completion then
    processes it whole: :func:`_complete`)."""
    try:
        return await driver.decide(part)
    except Exception as error:
        _failed(app, name, error, len(part))
        return None


async def _complete(
    app: StreamApp,
    driver: BatchDriver[Any, Any, Any],
    name: str,
    stream: Any,
    records: Sequence[Any],
    decided: Sequence[tuple[Sequence[Any], Decided | None]],
    decide_lock: asyncio.Lock,
) -> None:
    """Complete each part, ack the batch, release its hold on the commit gate.

    A part that could not be decided or completed is processed again whole
    (:func:`_process`), with every row decided and not yet written forgotten first: a
    batch decided meanwhile read them (or missed this part's), so it is decided again
    too when its turn comes (its :attr:`Decided.epoch` is then stale).
    """
    try:
        for part, done in decided:
            if done is not None and done.epoch == driver.epoch:
                try:
                    await driver.complete(done)
                except Exception as error:
                    _failed(app, name, error, len(part))
                else:
                    app.faults.recovered(name)
                    continue
            if done is not None:
                await asyncio.gather(done.sending, return_exceptions=True)
            async with decide_lock:
                driver.forget_unwritten()
                await _process(app, driver, name, part)
        for record in records:
            await stream.ack(record)
    finally:
        app.commit_gate.end()


async def _process(
    app: StreamApp, driver: BatchDriver[Any, Any, Any], name: str, part: Sequence[Any]
) -> None:
    """Process one part; while it fails, the agent is down on /health and /readyz.

    The error never leaves the agent: a batch whose error escaped would stop the agent
    with its records neither decided nor acked.
    Under at_least_once the same part is tried again (after 1 s, doubling up to
    ``_MAX_RETRY_SECONDS``): its records are neither lost nor skipped, and what the
    failed attempt sent is at worst sent again. Under exactly_once the open
    transactions may hold part of the failed attempt and of the batches before it,
    so the worker exits at once (:data:`EXIT_TRANSACTION_FAILED`), as if killed: its
    transactions are aborted when the next owner of its partitions fences them, and
    that owner resumes from the last committed offsets.
    """
    delay = 1.0
    while True:
        try:
            await driver.process(part)
        except Exception as error:
            _failed(app, name, error, len(part))
            log.error("agent %s: a batch failed (%s); trying it again in %g s",
                      name, type(error).__name__, delay,
                      extra={"agent": name, "count": len(part)})  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_SECONDS)
            continue
        app.faults.recovered(name)
        return


def _failed(app: StreamApp, name: str, error: Exception, count: int) -> None:
    """A batch failed: the agent is down on /health; under exactly_once the worker exits
    at once (:data:`EXIT_TRANSACTION_FAILED`; see :func:`_process`)."""
    app.faults.failed(name, error)
    if app.in_transaction:
        log.critical("agent %s: a batch failed (%s) under exactly_once; the worker "
                     "exits so that its open transactions are aborted",
                     name, type(error).__name__,
                     extra={"agent": name, "count": count})  # fmt: skip
        logging.shutdown()
        os._exit(EXIT_TRANSACTION_FAILED)


async def take_batches(stream: Any, size: int, within: float) -> AsyncIterator[list[Any]]:
    """The stream's events in batches of at most ``size``, each handed out once it is
    full or its first event has waited ``within`` seconds; never acked here (the agent
    acks a batch once it is complete).

    Faust's ``take_events`` acks a batch when the agent asks for the next one, so the
    next one could not be decided while the last waits for its acknowledgements; it
    also buffers nothing while a batch is processed and then waits ``within`` afresh,
    so a request that came meanwhile waited for both. Here events keep arriving into
    the next batch (up to ``size``; then the stream waits), and a batch whose first
    event has already waited ``within`` is handed out at once.
    """
    events: list[Any] = []
    arrived, full, room = asyncio.Event(), asyncio.Event(), asyncio.Event()
    room.set()
    first_at = 0.0
    loop = asyncio.get_running_loop()

    async def add(value: Any) -> Any:
        nonlocal first_at
        event = stream.current_event
        if event is None:
            raise RuntimeError("a batch found no current event")
        while len(events) >= size:
            room.clear()
            await stream.wait(room)
        if not events:
            first_at = loop.time()
            arrived.set()
        events.append(event)
        if len(events) >= size:
            full.set()
        return value

    acks = stream.enable_acks
    stream.enable_acks = False  # acked by the agent, once complete
    stream.add_processor(add)
    stream._enable_passive(aiter(stream.channel))  # noqa: SLF001 - as take_events does
    try:
        while not stream.should_stop:
            if not events:
                await stream.wait_for_stopped(arrived)
                continue
            remaining = first_at + within - loop.time()
            if len(events) < size and remaining > 0:
                await stream.wait_for_stopped(full, timeout=remaining)
            if not events:
                continue
            batch = events[:]
            events.clear()
            arrived.clear()
            full.clear()
            room.set()
            yield batch
    finally:
        stream.enable_acks = acks
        stream._processors.remove(add)  # noqa: SLF001 - as take_events does


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
    """A table with raw-bytes keys and rows kept as their JSON bytes, co-partitioned with
    its sources (:class:`TableStore` decodes a row when the driver reads it).

    Bytes, not dicts: the garbage collector does not walk bytes, and its full passes over
    a million rows held as dicts held the event loop for seconds (bench_state: the
    longest stall 3.1 s against 0.9 s, 1.4 s against 38 ms during expiry); a row as
    bytes also takes 40 % of the memory.
    ``key_type=bytes`` and ``value_type=bytes`` matter: changelog recovery decodes with
    the serializers Faust derives from them (JSON when unset), not with ``schema``'s, so
    without them a restarted worker cannot read back the raw keys it wrote and would
    hold its rows as dicts.

    Each changelog record recovery (or a standby) reads into the table is counted in
    ``app.changelog_reads`` (/health, ``app.changelog_records_read``): after a restart on
    a ``rocksdb://`` data directory it is the changelog's tail, with ``memory://`` all of it.
    """

    async def count(event: Any) -> None:
        app.changelog_reads[name] += 1

    table = RecoveringTable(
        app,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        key_type=bytes,
        value_type=bytes,
        schema=faust.Schema(key_serializer="raw", value_serializer="raw"),
        partitions=app.settings.partitions,
        on_changelog_event=count,
    )
    return app.tables.add(table)


class RecoveringTable(HeldTable):
    """A Faust table that tells the driver's expiry index of the rows it never saw
    written (``Store.recovered``): the keys its changelog recovery read back, and with
    ``rocksdb://`` the keys persisted in each partition database this worker takes
    (:attr:`scan`), which a restart on the data directory does not read back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recovered_keys: deque[tuple[int, bytes]] = deque()
        self.scan: PartitionScan | None = None  # rocksdb:// only, from the first rebalance

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        events = list(batch)
        super().apply_changelog_batch(events)
        self.recovered_keys.extend(
            (e.message.partition, e.key) for e in events if e.value is not None
        )

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        """Scan each partition this worker now owns and did not before (its database is
        open once Faust's store has taken the assignment); stop the scan of each it gave
        up first, before the store closes its database."""
        data = self.data
        if self.scan is None and isinstance(data, RocksDBStore):
            self.scan = PartitionScan(skip=data.offset_key)
        topic = self.changelog_topic.get_topic_name()
        actives = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}
        if self.scan is not None:
            self.scan.assign(self.scan.owned & actives)
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        if self.scan is not None:
            self.scan.assign(actives)
