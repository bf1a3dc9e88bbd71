"""Produce to and read from the real broker in integration tests (plain aiokafka).

Reads use ``read_committed`` so that, under exactly_once, aborted writes stay invisible,
and they always start at the earliest offset: every test uses its own topic prefix.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

__all__ = ["Record", "produce", "read_topics", "read_until"]


@dataclass(frozen=True)
class Record:
    """One message read back: topic, partition, key, value, timestamp (ms), offset."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes
    timestamp: int
    offset: int = -1


async def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    *,
    partition_of: Callable[[bytes | None], int | None] | None = None,
    timestamp_of: Callable[[bytes], int | None] | None = None,
    security: Mapping[str, Any] | None = None,
) -> int:
    """Send ``(key, value)`` pairs in order (acks=all); return how many were sent.

    ``partition_of`` picks an explicit partition per key (None: the default
    murmur2 partitioner, as Java clients and the app use); ``timestamp_of`` the
    Kafka timestamp in ms per value (None: now), as a producer replaying history sets.
    ``security``: TLS and SASL options of ``kafka_auth.client_security`` (None: PLAINTEXT).
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        max_request_size=8 * 1024 * 1024,
        **(security or {}),
    )
    await producer.start()
    sent = 0
    try:
        for key, value in messages:
            partition = partition_of(key) if partition_of is not None else None
            stamp = timestamp_of(value) if timestamp_of is not None else None
            await producer.send(
                topic, key=key, value=value, partition=partition, timestamp_ms=stamp
            )
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def read_topics(
    bootstrap: str,
    topics: Sequence[str],
    *,
    idle_seconds: float = 2.0,
    timeout: float = 120.0,
    security: Mapping[str, Any] | None = None,
) -> dict[str, list[Record]]:
    """Everything in ``topics`` until nothing new arrives for ``idle_seconds``."""
    return await read_until(
        bootstrap, topics, None, idle_seconds=idle_seconds, timeout=timeout, security=security
    )


async def read_until(
    bootstrap: str,
    topics: Sequence[str],
    done: Callable[[dict[str, list[Record]]], bool] | None,
    *,
    idle_seconds: float = 2.0,
    timeout: float = 120.0,
    security: Mapping[str, Any] | None = None,
) -> dict[str, list[Record]]:
    """Read ``topics`` from the start until ``done(records)`` holds and then nothing new
    arrives for ``idle_seconds`` (so duplicates are caught).

    ``done=None`` reads until the topics go idle. ``timeout`` is a guard against a hang,
    not a measure of speed: when ``done`` still does not hold then, TimeoutError says how
    much was read, so a test fails on the state it waited for rather than later.
    """
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **(security or {}),
    )
    out: dict[str, list[Record]] = {topic: [] for topic in topics}
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        satisfied = done is None
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=250)
            for records in batches.values():
                for r in records:
                    value = r.value if r.value is not None else b""
                    out[r.topic].append(
                        Record(r.topic, r.partition, r.key, value, r.timestamp, r.offset)
                    )
                    last_new = time.monotonic()
            satisfied = satisfied or (done is not None and done(out))
            if satisfied and time.monotonic() - last_new >= idle_seconds:
                break
            await asyncio.sleep(0)
        if not satisfied:
            counts = {topic: len(records) for topic, records in out.items()}
            raise TimeoutError(f"gave up after {timeout:.0f} s; read so far: {counts}")
        return out
    finally:
        await consumer.stop()
