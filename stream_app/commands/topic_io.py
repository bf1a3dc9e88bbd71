"""Kafka clients of the topic commands (tail, send, replay), with the app's settings.

Every client connects as the workers do (bootstrap servers, TLS and SASL from
``kafka_auth.client_security``). Topics are named by their short name: a ``SPECS``
entry's attribute with dashes (``prediction-requests``, ``requests-invalid``).
Consumers join no group and commit nothing: a command reads, it never moves a worker's
position.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import click
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from stream_app.config import Settings
from stream_app.errors import ConfigError, StreamAppError
from stream_app.kafka_auth import client_security
from stream_app.topics import MAX_MESSAGE_BYTES, SPECS, topic_names

__all__ = [
    "SHORT_NAMES",
    "KafkaRecord",
    "one_line_errors",
    "open_consumer",
    "open_producer",
    "read_to_end",
    "resolve_topic",
    "run",
    "topic_name",
    "topic_partitions",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# short name -> SPECS attribute, in SPECS order.
SHORT_NAMES: dict[str, str] = {spec.attr.replace("_", "-"): spec.attr for spec in SPECS}


@dataclass(frozen=True)
class KafkaRecord:
    """One message read: where it is, when the broker has it (ms), key and value."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes


def resolve_topic(short_name: str) -> str:
    """The SPECS attribute of a short name (dashes or underscores); ConfigError listing
    the valid names otherwise.

    Example:
        >>> resolve_topic("requests-invalid"), resolve_topic("model_registry")
        ('requests_invalid', 'model_registry')
        >>> resolve_topic("request")
        Traceback (most recent call last):
        ...
        stream_app.errors.ConfigError: unknown topic 'request'; one of: prediction-requests, \
requests-invalid, requests-throttled, predictions, prediction-logs, outcomes, \
service-metrics, drift-reports, ab-reports, alerts, model-registry, model-bundles
    """
    attr = SHORT_NAMES.get(short_name.replace("_", "-"))
    if attr is None:
        raise ConfigError(f"unknown topic {short_name!r}; one of: {', '.join(SHORT_NAMES)}")
    return attr


def one_line_errors(command: F) -> F:
    """A refused setting or a missing broker is one line for the operator (exit code 2)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (StreamAppError, OSError, KafkaError) as exc:
            error = click.ClickException(str(exc) or exc.__class__.__name__)
            error.exit_code = 2
            raise error from None

    return wrapper  # type: ignore[return-value]


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; Ctrl-C ends it quietly (a follow ends this way)."""
    # aiokafka's retries (a broker that went away for a moment) are not the operator's
    # business; what fails for good reaches one_line_errors.
    # Set back afterwards: a command run in-process (tests, a caller) leaves logging as it was.
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(work)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None
    finally:
        logger.setLevel(level)


def open_consumer(settings: Settings, **options: Any) -> AIOKafkaConsumer:
    """A consumer outside any group that reads committed records only."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=2 * MAX_MESSAGE_BYTES,
        **options,
        **client_security(settings),
    )


def open_producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    """A producer that waits for every replica and takes the app's largest message."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        max_request_size=MAX_MESSAGE_BYTES,
        **options,
        **client_security(settings),
    )


def topic_name(settings: Settings, short_name: str) -> str:
    """The full topic name of a short name under these settings (prefix included)."""
    return topic_names(settings)[resolve_topic(short_name)]


async def topic_partitions(settings: Settings, *topics: str) -> dict[str, list[int]]:
    """The partitions of each of ``topics``; ConfigError naming the first one the broker
    does not have (a producer would otherwise wait a minute for it to appear)."""
    client = AIOKafkaClient(
        bootstrap_servers=settings.bootstrap_servers, **client_security(settings)
    )
    try:
        await client.bootstrap()
        cluster = await client.fetch_all_metadata()
    finally:
        await client.close()
    found = {}
    for topic in topics:
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise ConfigError(
                f"topic {topic!r} does not exist on the broker (a worker creates the app's topics)"
            )
        found[topic] = sorted(partitions)
    return found


async def read_to_end(
    settings: Settings,
    consumer: AIOKafkaConsumer,
    topic: str,
    *,
    last: int | None = None,
    follow: bool = False,
) -> AsyncIterator[KafkaRecord]:
    """The records of ``topic``, partition by partition as they come, up to the end it
    has now (with ``follow``: on, until cancelled).

    ``last``: start each partition that many records before its end (None: at its
    beginning). The consumer must be started; it is assigned here.
    """
    found = await topic_partitions(settings, topic)
    parts = [TopicPartition(topic, p) for p in found[topic]]
    consumer.assign(parts)
    ends = await consumer.end_offsets(parts)
    starts = await consumer.beginning_offsets(parts)
    for tp in parts:
        # An explicit seek: seek_to_beginning after end_offsets kept the end position.
        consumer.seek(tp, starts[tp] if last is None else max(starts[tp], ends[tp] - last))
    while follow or await _behind(consumer, ends):
        batches = await consumer.getmany(*parts, timeout_ms=500)
        for tp, records in batches.items():
            for r in records:
                if not follow and r.offset >= ends[tp]:
                    continue
                value = r.value if r.value is not None else b""
                yield KafkaRecord(r.partition, r.offset, r.timestamp, r.key, value)


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False
