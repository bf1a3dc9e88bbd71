"""Faust behaviours that lose or repeat work after a crash, and what replaces them.

All are set through the app (``StreamApp``): a TableManager whose recovery seeks before
it resumes the streams and which reports commits to the driver's table stores, a
consumer whose commits wait for the batches in flight, and a consumer thread that asks
the broker for the end of a changelog under exactly_once.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import AsyncIterator, Coroutine, Generator, Mapping, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import faust
from aiokafka.errors import IllegalOperation
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import CONSUMER_PARTITIONS_REVOKED
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.types import TP
from faust.types.transports import TPorTopicSet
from mode import Service
from mode.services import WaitArgT, WaitResults

# How long a stopping worker waits for events its streams hold beyond the batches in
# flight (those it always waits for): events read but not decided are read again from the
# committed offset by the partition's next owner.
STOP_WAIT_SECONDS = 5.0

__all__ = [
    "BatchAlignedConsumer",
    "BrokerHighwaterThread",
    "CommitGate",
    "CommitListener",
    "QuietWorker",
    "SeekingTableManager",
]


class SeekThenResume(Recovery):
    """Faust's table recovery, with the stream partitions positioned before they resume.

    After the changelogs are read, Faust (faust/tables/recovery.py:
    ``on_recovery_completed``, ``_resume_streams``) resumes the stream partitions, awaits
    ``consumer.perform_seek()`` (a committed-offset fetch per assigned partition), then
    calls ``app.flow_control.resume()``, which empties every stream queue. The fetcher
    runs all along (the flow was resumed when recovery began), so what it delivers
    during the seek is dropped after the consumer counted it as read: never processed,
    never acked, not fetched again. The consumer then never commits that partition past
    the first of those offsets (``Consumer._new_offset`` stops at a gap): their requests
    get no fate, and under exactly_once the partition's offsets never reach its
    transaction. Here the seek comes first, with the stream partitions still paused,
    and they are resumed in the same step as the queues are cleared (no await between).
    """

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        pending = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if pending:
            await asyncio.wait(pending)
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._seek_then_resume()
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _resume_streams(self, generation_id: int = 0) -> None:
        await self.app.on_rebalance_complete.send()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._seek_then_resume()
        self.tables.on_actives_ready()
        self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _seek_then_resume(self) -> None:
        consumer = self.app.consumer
        assignment = consumer.assignment()
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            timeout = self.app.conf.broker_request_timeout
            await self._wait(consumer.perform_seek(), timeout=timeout)
        # From here to flow_control.resume(), which clears the stream queues: no await.
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        self.completed.set()
        self.app.flow_control.resume()
        consumer.resume_flow()
        await self.app._fetcher.maybe_start()  # type: ignore[attr-defined]


class CommitListener(Protocol):
    """Told by :class:`SeekingTableManager` what was committed and when a rebalance ends."""

    def on_commit(self, offsets: Mapping[TP, int]) -> None: ...

    def on_rebalance(self) -> None: ...


class SeekingTableManager(TableManager):
    """Faust's TableManager with :class:`SeekThenResume` as its recovery, and commits
    reported to ``commit_listeners`` (the driver's table stores).

    Under exactly_once Faust means a changelog write's offset to reach a persistent
    store only once its transaction commits (``persist_offset_on_commit``), but it files
    the offset under the changelog partition and looks it up under the committed
    source partitions (``on_commit``), so it is never written: every restart read each
    changelog from the start. The driver's stores keep their own (agents/table_store.py)
    and apply a transaction's rows and offset here, once Faust has committed it; not
    after a crash (a fenced producer: the transaction will be aborted).
    """

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.commit_listeners: list[CommitListener] = []

    def on_commit(self, offsets: MutableMapping[TP, int]) -> None:
        super().on_commit(offsets)
        if self.app.crashed:
            return
        for listener in self.commit_listeners:
            listener.on_commit(offsets)

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        # The revoke handler has committed what could be: the rest is aborted.
        for listener in self.commit_listeners:
            listener.on_rebalance()
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekThenResume(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


class CommitGate:
    """Keeps transaction commits between batches.

    Faust commits on a timer (``broker_commit_interval``), and a commit of a
    partition's transaction takes everything sent in it so far with the offsets acked
    so far. Landing in the middle of a batch, it committed the outputs of the batch
    without their input offsets (a replay then re-sent its rejections) or without the
    table rows written after them (a replay then re-sent its predictions). A batch runs
    from :meth:`begin` to :meth:`end`, a commit inside :meth:`commit`: the commit waits for the
    batches in flight to end, and no batch starts while a commit waits or runs.

    A batch ends once it is acked (agents/faust_step.py acks it, then calls :meth:`end`),
    so a commit takes it whole or not at all. Two batches may be in flight at once (one
    decided while the one before waits for its acknowledgements).
    """

    def __init__(self) -> None:
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()
        self._committing = asyncio.Lock()

    async def begin(self) -> None:
        """A batch starts (once no commit waits or runs); :meth:`end` when it is done."""
        while not self._open.is_set():
            await self._open.wait()
        self._in_flight += 1
        self._idle.clear()

    def end(self) -> None:
        """A batch begun with :meth:`begin` is done."""
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    async def idle(self) -> None:
        """Return once no batch is in flight."""
        await self._idle.wait()

    @asynccontextmanager
    async def commit(self) -> AsyncIterator[None]:
        async with self._committing:
            self._open.clear()
            try:
                await self._idle.wait()
                yield
            finally:
                self._open.set()


class BrokerHighwaterThread(AIOKafkaConsumerThread):
    """The consumer thread, with a changelog's end always asked of the broker.

    Under exactly_once Faust takes it from aiokafka's ``last_stable_offset``, which
    aiokafka learns only from a fetch of that partition: a worker that has just started
    has fetched none, gets -1, and its recovery reads nothing. Its tables then start
    empty while the input offsets they stand for are committed: after a kill the drift
    windows had lost the summary folded in the first transaction. ``end_offsets`` asks
    the broker with the consumer's isolation level (the last stable offset under
    read_committed), and Faust's recovery steps over the transaction markers at the end.
    """

    async def _highwaters(self, partitions: list[TP]) -> Any:
        return await self._ensure_consumer().end_offsets(partitions)


@types.coroutine
def _suspend_on(future: Any) -> Generator[Any, None, None]:
    """Hand ``future`` to the running task, as a coroutine awaiting it does."""
    yield future


async def _resume(coro: Coroutine[Any, Any, Any], future: Any) -> Any:
    """Drive ``coro``, whose first step already ran and yielded ``future``, as its task
    would have: resume it once ``future`` is done, throw in what is thrown at this task
    (a cancellation), return its result."""
    while True:
        try:
            await _suspend_on(future)
        except BaseException as error:  # noqa: BLE001 - passed on to coro, as a task does
            try:
                future = coro.throw(error)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                future = coro.send(None)
            except StopIteration as stop:
                return stop.value


def run_first_step(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run ``coro``'s first step in the calling task: ``(True, result)`` when that step
    finished it, else ``(False, task)`` with a task that drives the rest of it."""
    try:
        future = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, asyncio.ensure_future(_resume(coro, future))


def _close(wait: WaitArgT) -> None:
    """Close ``wait`` if it is a coroutine: it will never be awaited."""
    if asyncio.iscoroutine(wait):
        wait.close()


class BatchAlignedConsumer(Consumer):
    """The aiokafka consumer, whose commits under exactly_once pass the app's
    :class:`CommitGate` (``app.commit_gate``), over a :class:`BrokerHighwaterThread`,
    whose transactions end at a rebalance (:meth:`on_partitions_revoked`), whose fetch
    loop fetches again what it drops (:meth:`getmany`), which hands a fetched message to
    its streams without four tasks (:meth:`wait_first`), and which stops without waiting
    for events no batch will take (:meth:`wait_empty`)."""

    async def wait_first(self, *coros: WaitArgT, timeout: Any = None) -> WaitResults:
        """Service.wait_first, with its tasks only for a message whose delivery waits.

        Faust's fetch loop delivers each message with ``wait_first(callback(message),
        suspend_flow.wait())``, which makes four tasks (the callback, the flow's event,
        the stopped and crashed events) and cancels three: 12 % of a worker's event loop
        at 940 requests/s. The callback mostly finishes without waiting (its stream's
        queue has room). Here its first step runs at once; only when it waits (a full
        queue, a suspended flow) does the rest race the events, as before.
        """
        callback = coros[0] if len(coros) == 2 else None
        if (
            not asyncio.iscoroutine(callback)
            or timeout is not None
            or self.suspend_flow.is_set()
            or self._stopped.is_set()
            or self._crashed.is_set()
        ):
            return await super().wait_first(*coros, timeout=timeout)
        flow = coros[1]
        try:
            finished, outcome = run_first_step(callback)
        except BaseException:
            _close(flow)
            raise
        if finished:
            _close(flow)
            return WaitResults([callback], [outcome], False)
        return await super().wait_first(outcome, flow)

    async def wait_empty(self) -> None:
        """At a rebalance, as Faust: wait until every event handed to a stream is acked,
        unless the app starts to stop meanwhile. When the app stops, wait for the batches
        in flight, then at most ``STOP_WAIT_SECONDS`` for the rest, then commit what was
        acked.

        At a stop Faust pauses the partitions, clears the streams' queues and waits, with
        no bound, for every event a stream took to be acked. An event held in a stream's
        batch's buffer then was never acked: a SIGTERM left the worker waiting (a test's
        worker still waited after 30 s, logging "wait_empty: Waiting for tasks"). Such an
        event was never decided and its offset is not committed, so the partition's next
        owner reads it again. A batch in flight is always waited for: under exactly_once
        the commit below would otherwise close its transaction with half its outputs.
        """
        if not self.app.should_stop and await self._wait_acked_unless_stopping():
            return
        gate: CommitGate = getattr(self.app, "commit_gate")  # noqa: B009 - StreamApp's
        await gate.idle()
        # Not super().wait_empty() under a timeout: its wait for an ack swallows the
        # cancellation, so it cannot be cut short.
        deadline = asyncio.get_running_loop().time() + STOP_WAIT_SECONDS
        while self._unacked_messages and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)  # an agent asking for its next batch acks the last
            self._clean_unacked_messages()
        if self._unacked_messages:
            self.log.info(
                "stopping with %d events read but not decided: read again from the "
                "committed offsets by the partitions' next owner",
                len(self._unacked_messages),
            )
        try:
            await self.commit_and_end_transactions()
        except IllegalOperation:
            # exactly_once, when the stop's revoke has already committed and ended every
            # transaction: nothing is left that could commit. Raised, it stopped the
            # consumer's stop half-way, and its thread kept the process alive.
            self.log.info("stopping: every transaction is already committed and ended")

    async def _wait_acked_unless_stopping(self) -> bool:
        """Faust's wait at a rebalance, left as soon as the app starts to stop (a SIGTERM
        during a rebalance waited past 30 s); False when it was left that way."""
        waited = 0
        while self._unacked_messages and not (self.should_stop or self.app.should_stop):
            waited += 1
            if not waited % 10:
                self.log.warning("wait_empty: waiting for %d events", len(self._unacked_messages))
            await self.commit()
            if not self._unacked_messages:
                break
            await self._wait_for_ack(timeout=1)
            self._clean_unacked_messages()
        if self.app.should_stop:
            return False
        await self.commit_and_end_transactions()
        return True

    @Service.transitions_to(CONSUMER_PARTITIONS_REVOKED)
    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Under exactly_once, the app's revoke handler first, then forget the offsets.

        Faust (transport/consumer.py) forgets every revoked partition's acked offsets,
        then runs the app's handler, whose ``wait_empty`` commits and ends the
        transactions of the offsets acked since. A partition whose last batch ended
        before the rebalance kept its transaction open across it; its recovery read the
        changelog only up to that transaction, so the rows of the records decided in it
        went back to their committed versions, and the replay after the seek decided
        them again into the same transaction, which committed both copies.
        """
        if not self.in_transaction:
            await super().on_partitions_revoked(revoked)
            return
        if self._active_partitions is not None:
            self._active_partitions.difference_update(revoked)
        self._paused_partitions.difference_update(revoked)
        await self._on_partitions_revoked(revoked)
        for tp in revoked:
            self._gap.pop(tp, None)
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._read_offset.pop(tp, None)
            self._committed_offset.pop(tp, None)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        """Faust's fetch loop, with the records it drops for an inactive partition
        fetched again.

        Faust (transport/consumer.py ``getmany``) drops the records of a fetch whose
        partition is not active when they arrive (paused, as the stream partitions are
        while the tables recover) after aiokafka has moved the partition's position past
        them; no seek follows. A worker restarted on a backlog with no committed offset
        dropped the whole first half of the kill test's traffic that way during the
        recovery's seek, and then sat idle, healthy and ready, its positions at the end.
        Here each such partition is sought back to the first record dropped. (Records
        dropped because the flow stopped or the generation changed are left to Faust: a
        rebalance follows and seeks every partition to its committed offset.)
        """
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            await self.perform_seek()  # what Faust does
            return
        dropped: dict[TP, int] = {}
        for tp, record in self.scheduler.iterate(records):
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                break
            if (
                active_partitions is None
                or tp in active_partitions
                or tp in self._buffered_partitions
            ):
                self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                yield tp, self._to_message(tp, record)
            elif tp not in dropped:
                dropped[tp] = record.offset
        if self.app.consumer_generation_id != generation_id:
            return
        assignment = self.assignment()
        for tp, offset in dropped.items():
            if tp in assignment:
                self.log.info(
                    "fetching %s again from %d: Faust dropped it while paused", tp, offset
                )
                await self.seek(tp, offset)

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return BrokerHighwaterThread(self, loop=self.loop, beacon=self.beacon)

    async def force_commit(
        self, topics: TPorTopicSet | None = None, start_new_transaction: bool = True
    ) -> bool:
        if not self.in_transaction:
            return bool(await super().force_commit(topics, start_new_transaction))
        gate: CommitGate = getattr(self.app, "commit_gate")  # noqa: B009 - StreamApp's
        async with gate.commit():
            return bool(await super().force_commit(topics, start_new_transaction))


def new_consumer(app: Any) -> Consumer:
    """What ``faust.App._new_consumer`` makes, as a :class:`BatchAlignedConsumer`."""
    return BatchAlignedConsumer(
        app.transport,
        callback=app.topics.on_message,
        loop=app.transport.loop,
        on_partitions_revoked=app._on_partitions_revoked,
        on_partitions_assigned=app._on_partitions_assigned,
        beacon=app.beacon,
    )


class QuietWorker(faust.Worker):
    """Faust's worker without its terminal spinner.

    At a log level of WARN or above (Faust's default) the spinner set the root logger to
    DEBUG and counted every record: each library's debug line (aiokafka's for every
    message sent, with its key and value) was built as a record before the handlers
    dropped it, about a tenth of the event loop's time in a worker profiled at ``-l warn``.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)
