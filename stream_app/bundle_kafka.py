"""The bundle store on Kafka: chunks and manifests in the model-bundles topic.

The topic is compacted and has one partition; its records are ``bundle_chunks``'s:
``chunk:<sha256>`` -> the chunk's bytes, ``bundle:<digest>`` -> the manifest. A read
scans the partition from its start to its end offset at that moment and keeps the
newest value of each wanted key, which is what compaction keeps too: the answer is the
same before and after the cleaner ran. A record written there by anyone else under a
chunk's key is read as that chunk, and the chunk's digest check refuses it.

A fleet therefore needs nothing but Kafka to get its bundles: ``stream-app registry
register`` with ``STREAM_BUNDLE_STORE=kafka`` uploads, and every worker (and the
``promote`` command) fetches a ``kafka:<digest>`` location into its bundle root.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Coroutine, Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from stream_app.config import Settings
from stream_app.errors import KafkaUnavailableError
from stream_app.kafka_admin import TopicRequest, ensure_topics
from stream_app.kafka_auth import client_security
from stream_app.lifecycle.bundle_store import ChunkedBundleStore
from stream_app.registry_kafka import run_sync
from stream_app.topics import SPECS, topic_names

__all__ = ["KafkaChunkLog", "open_bundle_store"]

T = TypeVar("T")
_TIMEOUT = 60.0
# Room for the largest chunk (Settings.bundle_chunk_bytes) with its key and batch overhead.
_MAX_RECORD_BYTES = 1024 * 1024 + 64 * 1024
# Chunks in flight at once while uploading: bounds the producer's buffer.
_IN_FLIGHT = 16


def open_bundle_store(settings: Settings) -> ChunkedBundleStore:
    """The Kafka bundle store of these settings (its topic is created when first used)."""
    return ChunkedBundleStore(KafkaChunkLog(settings), chunk_bytes=settings.bundle_chunk_bytes)


class KafkaChunkLog:
    """A ChunkLog on the model-bundles topic; a sync API usable from any thread."""

    def __init__(self, settings: Settings, *, timeout: float = _TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.settings = settings
        self.timeout = timeout
        self.topic = topic_names(settings)["model_bundles"]
        self.security = client_security(settings)
        self._topic_ready = False

    def write(self, records: Iterable[tuple[str, bytes]]) -> None:
        """Send the records in order to the one partition; returns once all are acked."""
        run_sync(lambda: self._bounded(self._write(records)))

    def read(self, keys: Collection[str]) -> dict[str, bytes]:
        """The newest value of each of ``keys`` up to the partition's end now."""
        return run_sync(lambda: self._bounded(self._read(frozenset(keys))))

    async def _bounded(self, work: Coroutine[Any, Any, T]) -> T:
        try:
            return await asyncio.wait_for(work, self.timeout)
        except (TimeoutError, KafkaError) as exc:
            raise KafkaUnavailableError(
                f"the bundle topic {self.topic!r} on {self.settings.broker_url} did not "
                f"answer ({exc.__class__.__name__}); is Kafka up?"
            ) from None

    async def _write(self, records: Iterable[tuple[str, bytes]]) -> None:
        await self._ensure_topic()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            acks="all",
            enable_idempotence=True,  # retries neither reorder nor repeat the records
            max_request_size=_MAX_RECORD_BYTES,
            request_timeout_ms=int(self.timeout * 1000),
            **self.security,
        )
        await producer.start()
        try:
            pending: list[asyncio.Future[Any]] = []
            for key, value in records:
                pending.append(
                    await producer.send(self.topic, value, key=key.encode(), partition=0)
                )
                if len(pending) >= _IN_FLIGHT:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    async def _read(self, keys: frozenset[str]) -> dict[str, bytes]:
        await self._ensure_topic()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=_MAX_RECORD_BYTES * 2,
            fetch_max_bytes=_MAX_RECORD_BYTES * 4,
            request_timeout_ms=int(self.timeout * 1000),
            **self.security,
        )
        tp = TopicPartition(self.topic, 0)
        found: dict[str, bytes] = {}
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, []):
                    if record.offset >= end:
                        break
                    key = (record.key or b"").decode("utf-8", "replace")
                    if key not in keys:
                        continue
                    if record.value is None:  # a tombstone deletes the key
                        found.pop(key, None)
                    else:
                        found[key] = record.value
            return found
        finally:
            await consumer.stop()

    async def _ensure_topic(self) -> None:
        if self._topic_ready:
            return
        spec = next(s for s in SPECS if s.attr == "model_bundles")
        request = TopicRequest(self.topic, 1, self.settings.replication_factor, spec.config)
        await ensure_topics(
            self.settings.bootstrap_servers, [request], timeout=self.timeout, security=self.security
        )
        self._topic_ready = True
