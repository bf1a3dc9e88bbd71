"""The registry's event log on the model-registry topic (one partition, kept forever).

:class:`KafkaRegistryStore` is the ``RegistryStore`` the CLI writes through; the
worker's registry follower reads the same topic with :func:`registry_consumer` and
:func:`decode_record`.

How ``append`` makes "the log still has p events" and the write one step against
writers in other processes: every writer of one app id and topic uses the same
``transactional.id``. Starting a transactional producer sends InitProducerId, which
bumps the producer epoch (any earlier writer's later produce or commit fails with
ProducerFenced) and returns only after the coordinator has finished any transaction
still open under that id. Only then is the log read to its last stable offset with
``read_committed`` and the count compared; the event is produced and committed in a
transaction. So a writer that counted ``p`` either commits at ``p`` or is fenced by a
writer that started after its count, whose own count then includes everything
committed before it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError, ProducerFenced

from stream_app.config import Settings
from stream_app.errors import KafkaUnavailableError, RegistryConflictError, RegistryError
from stream_app.kafka_admin import TopicRequest, ensure_topics
from stream_app.kafka_auth import check_login, client_security
from stream_app.lifecycle.registry import ModelRegistry
from stream_app.lifecycle.registry_signing import EventVerifier, sign_event
from stream_app.lifecycle.registry_state import RegistryEvent
from stream_app.lifecycle.registry_store import check_position
from stream_app.topics import SPECS, topic_names

__all__ = [
    "KafkaRegistryStore",
    "decode_record",
    "event_verifier",
    "open_registry",
    "read_registry_events",
    "registry_consumer",
    "registry_partition",
    "run_sync",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
_TIMEOUT = 30.0


def registry_partition(settings: Settings) -> TopicPartition:
    """The one partition that holds the registry log.

    Example:
        >>> from stream_app.config import load_settings
        >>> registry_partition(load_settings({}, topic_prefix="t."))
        TopicPartition(topic='t.model-registry', partition=0)
    """
    return TopicPartition(topic_names(settings)["model_registry"], 0)


def event_verifier(settings: Settings) -> EventVerifier | None:
    """The checker of registry events this process applies: the verify key's, else the
    signing key's public half (a writer folds what the workers fold), else None."""
    key = settings.registry_verifier
    if key is None:
        signer = settings.registry_signer
        key = None if signer is None else signer.public_key()
    return None if key is None else EventVerifier(key, registry_partition(settings).topic)


def open_registry(settings: Settings) -> ModelRegistry:
    """The registry on the model-registry topic, signing what it writes when
    ``STREAM_REGISTRY_SIGNING_KEY`` is set and folding only the events that verify."""
    topic = registry_partition(settings).topic
    signer = settings.registry_signer
    verifier = event_verifier(settings)
    return ModelRegistry(
        KafkaRegistryStore(settings),
        sign=None if signer is None else (lambda event: sign_event(event, topic, signer)),
        check=None if verifier is None else verifier.check,
    )


def decode_record(value: bytes | None, offset: int) -> RegistryEvent:
    """A registry event from a record's value; RegistryError naming the offset."""
    try:
        return RegistryEvent.from_json(value or b"")
    except RegistryError as exc:
        raise RegistryError(f"model-registry offset {offset}: {exc}") from exc


def registry_consumer(
    settings: Settings, security: Mapping[str, Any] | None = None
) -> AIOKafkaConsumer:
    """A consumer outside any group (every reader sees every event), committed reads only.

    Start it, then ``assign([registry_partition(settings)])`` and seek to the beginning.
    ``security``: the options of ``kafka_auth.client_security`` (built from the
    settings when None).
    """
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=int(_TIMEOUT * 1000),
        **(client_security(settings) if security is None else security),
    )


async def read_registry_events(
    settings: Settings, security: Mapping[str, Any] | None = None
) -> list[RegistryEvent]:
    """The whole committed log, from offset 0 to its last stable offset now."""
    consumer = registry_consumer(settings, security)
    tp = registry_partition(settings)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        # read_committed: the end offset is the last stable offset, so a transaction
        # still open is neither waited for nor counted.
        end = (await consumer.end_offsets([tp]))[tp]
        events: list[RegistryEvent] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=200)
            events.extend(decode_record(r.value, r.offset) for r in batch.get(tp, []))
        return events
    finally:
        await consumer.stop()


class KafkaRegistryStore:
    """RegistryStore on the model-registry topic; a sync API usable from any thread.

    Each call runs its own event loop (in a helper thread when the calling thread
    already runs one) and creates the topic first if it is missing, so the CLI works
    before any worker ran.
    """

    def __init__(self, settings: Settings, *, timeout: float = _TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.settings = settings
        self.timeout = timeout
        self.topic = registry_partition(settings).topic
        # One id per app id and topic: every writer of this log fences the one before it.
        self.transactional_id = f"{settings.app_id}:{self.topic}:writer"
        self.security = client_security(settings)
        self._topic_ready = False

    def append(self, event: RegistryEvent, *, expected_position: int) -> int:
        """Commit ``event`` at ``expected_position``; RegistryConflictError when the log moved."""
        return run_sync(lambda: self._bounded(self._append(event, expected_position)))

    def events(self, name: str | None = None) -> list[RegistryEvent]:
        """The committed log now, optionally of one model only."""
        found = run_sync(lambda: self._bounded(self._events()))
        return [e for e in found if name is None or e.name == name]

    async def _bounded(self, work: Coroutine[Any, Any, T]) -> T:
        try:
            return await asyncio.wait_for(work, self.timeout)
        except (TimeoutError, KafkaError) as exc:
            raise KafkaUnavailableError(
                f"the registry topic {self.topic!r} on {self.settings.broker_url} did not "
                f"answer ({exc.__class__.__name__}); is Kafka up (`make kafka-up`)?"
            ) from None

    async def _events(self) -> list[RegistryEvent]:
        await self._ensure_topic()
        return await read_registry_events(self.settings, self.security)

    async def _append(self, event: RegistryEvent, expected: int) -> int:
        await self._ensure_topic()
        producer = await self._fencing_producer()
        offset: int | None = None
        try:
            check_position(expected, len(await read_registry_events(self.settings, self.security)))
            try:
                async with producer.transaction():
                    sent = await producer.send_and_wait(
                        self.topic, event.to_json().encode(), key=event.name.encode(), partition=0
                    )
                    offset = sent.offset
                return expected + 1
            except (KafkaError, IllegalOperation) as exc:
                failure: Exception = exc
        finally:
            await _stop_quietly(producer)
        return await self._settle(event, expected, failure, offset)

    async def _settle(
        self, event: RegistryEvent, expected: int, failure: Exception, offset: int | None
    ) -> int:
        """After a failed transaction: was the event committed after all?

        Fenced: a newer writer's start resolved our transaction (a commit that reached
        the coordinator is completed, anything else aborted); once the log is stable
        past our record, reading it tells which. Fenced before our record was appended:
        nothing was written. Any other failure: a new producer with our id resolves the
        open transaction the same way, then the log is read.
        """
        fenced = isinstance(failure, ProducerFenced)
        if fenced and offset is None:
            raise _lost_race(expected)
        if fenced and offset is not None:
            await self._wait_stable_past(offset)
        else:
            await _stop_quietly(await self._fencing_producer())
        events = await read_registry_events(self.settings, self.security)
        if len(events) > expected and events[expected].to_json() == event.to_json():
            return expected + 1
        if fenced:
            raise _lost_race(expected)
        raise KafkaUnavailableError(
            f"the registry write failed ({failure.__class__.__name__}); nothing was written"
        )

    async def _wait_stable_past(self, offset: int) -> None:
        consumer = registry_consumer(self.settings, self.security)
        tp = registry_partition(self.settings)
        await consumer.start()
        try:
            # The last stable offset moves past our record once its transaction's
            # commit or abort marker is written.
            while (await consumer.end_offsets([tp]))[tp] <= offset:
                await asyncio.sleep(0.05)
        finally:
            await consumer.stop()

    async def _fencing_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            transactional_id=self.transactional_id,
            acks="all",
            request_timeout_ms=int(self.timeout * 1000),
            **self.security,
        )
        try:
            await producer.start()  # InitProducerId: fences earlier writers of this id
        except BaseException:
            await _stop_quietly(producer)
            raise
        return producer

    async def _ensure_topic(self) -> None:
        if self._topic_ready:
            return
        # A refused login is a ConfigError naming the setting, not "is Kafka up?".
        await check_login(self.settings, self.security, timeout=self.timeout)
        spec = next(s for s in SPECS if s.attr == "model_registry")
        request = TopicRequest(self.topic, 1, self.settings.replication_factor, spec.config)
        await ensure_topics(
            self.settings.bootstrap_servers, [request], timeout=self.timeout, security=self.security
        )
        self._topic_ready = True


def _lost_race(expected: int) -> RegistryConflictError:
    return RegistryConflictError(
        f"registry log moved: another writer started while this write at position "
        f"{expected} was in flight, and fenced it; nothing was written; read it again "
        "and retry"
    )


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, in a private event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_quiet_kafka_futures(make()))
    # Called from a thread that runs a loop already: asyncio.run would refuse there.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(_quiet_kafka_futures(make()))).result()


async def _quiet_kafka_futures(work: Coroutine[Any, Any, T]) -> T:
    # A fenced producer leaves futures failed with ProducerFenced that nobody awaits;
    # the outcome is already reported, so asyncio's "never retrieved" dumps are noise.
    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), KafkaError):
            log.debug("registry client: %s", context.get("message"))
        else:
            loop.default_exception_handler(context)

    asyncio.get_running_loop().set_exception_handler(handle)
    return await work


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    # A fenced producer's sender has died with ProducerFenced; stopping it must not
    # replace the outcome the caller is about to report.
    try:
        await producer.stop()
    except KafkaError as exc:
        log.debug("registry producer stopped with %r", exc)
