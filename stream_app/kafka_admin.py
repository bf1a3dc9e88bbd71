"""Talking to the broker outside Faust: is it there, and do our topics exist as declared."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from stream_app.errors import ConfigError, KafkaUnavailableError

__all__ = [
    "ConfigDrift",
    "TopicRequest",
    "broker_answers",
    "config_drift",
    "ensure_topics",
    "metadata_brokers",
]

_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicRequest:
    """A topic the app needs, with the partition count its tables depend on."""

    name: str
    partitions: int
    replicas: int
    config: Mapping[str, str] = field(default_factory=dict)


async def metadata_brokers(
    bootstrap: str | Sequence[str],
    timeout: float = 3.0,
    *,
    security: Mapping[str, Any] | None = None,
) -> int:
    """Ask for cluster metadata; return how many brokers the answer lists (0: no answer).

    ``security``: the TLS and SASL options of ``kafka_auth.client_security`` (every
    function here takes them; None is PLAINTEXT).
    """
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **(security or {})
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return len(client.cluster.brokers())
    except Exception:  # refused, timed out, not Kafka: each means "no broker here"
        return 0
    finally:
        await client.close()


def broker_answers(
    bootstrap: str | Sequence[str],
    timeout: float = 3.0,
    *,
    security: Mapping[str, Any] | None = None,
) -> bool:
    """True when a broker answers a metadata request listing at least one broker.

    For polling outside a running worker (a broker booting, a test session): aiokafka's
    logger is silenced meanwhile, which would hide a worker's own client logs.
    """
    with _quiet("aiokafka"):
        return asyncio.run(metadata_brokers(bootstrap, timeout, security=security)) > 0


async def ensure_topics(
    bootstrap: str | Sequence[str],
    wanted: Sequence[TopicRequest],
    timeout: float = 30.0,
    *,
    security: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create the missing topics; return their names.

    A topic that exists with another partition count is refused: Faust's tables
    need their changelog co-partitioned with the source, so a silent mismatch
    would lose state on the first rebalance.
    """
    admin = _admin(bootstrap, timeout, security)
    try:
        await admin.start()
    except Exception as exc:
        await admin.close()
        raise KafkaUnavailableError(
            f"no Kafka broker answers at {bootstrap} ({exc.__class__.__name__}); "
            "start one with `make kafka-up` or point STREAM_BROKER_URL at one"
        ) from exc
    try:
        existing = {
            t["topic"]: len(t["partitions"])
            for t in await admin.describe_topics()
            if t["error_code"] == 0
        }
        _check_partitions(wanted, existing)
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            response = await admin.create_topics([_new_topic(t) for t in missing])
            _check_created(response.to_object())
        return [t.name for t in missing]
    finally:
        await admin.close()


@dataclass(frozen=True)
class ConfigDrift:
    """A topic whose setting ``key`` is ``found`` on the broker, not the ``wanted`` value."""

    topic: str
    key: str
    wanted: str
    found: str

    def fix(self, bootstrap: str | Sequence[str]) -> str:
        """The Kafka command that sets the wanted value.

        Example:
            >>> ConfigDrift("t", "message.timestamp.type", "LogAppendTime", "CreateTime").fix(
            ...     "b:9092")
            'kafka-configs.sh --bootstrap-server b:9092 --alter --entity-type topics \
--entity-name t --add-config message.timestamp.type=LogAppendTime'
        """
        server = bootstrap if isinstance(bootstrap, str) else ",".join(bootstrap)
        return (
            f"kafka-configs.sh --bootstrap-server {server} --alter --entity-type topics "
            f"--entity-name {self.topic} --add-config {self.key}={self.wanted}"
        )


async def config_drift(
    bootstrap: str | Sequence[str],
    wanted: Sequence[TopicRequest],
    keys: Sequence[str],
    timeout: float = 30.0,
    *,
    security: Mapping[str, Any] | None = None,
) -> list[ConfigDrift]:
    """The settings among ``keys`` that existing topics hold with another value than the
    one the app declares for them (a topic created before the app, by hand or by an older
    version, keeps its own). Topics that declare none of ``keys`` are not asked about."""
    asked = {t.name: {k: t.config[k] for k in keys if k in t.config} for t in wanted}
    asked = {name: configs for name, configs in asked.items() if configs}
    if not asked:
        return []
    admin = _admin(bootstrap, timeout, security)
    await admin.start()
    try:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(configs))
            for name, configs in asked.items()
        ]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    drift = []
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                continue
            name = resource["resource_name"]
            for entry in resource["config_entries"]:
                key, found = entry["config_names"], entry["config_value"]
                if key in asked[name] and found != asked[name][key]:
                    drift.append(ConfigDrift(name, key, asked[name][key], found))
    return drift


def _admin(
    bootstrap: str | Sequence[str], timeout: float, security: Mapping[str, Any] | None
) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **(security or {})
    )


def _new_topic(topic: TopicRequest) -> Any:
    return NewTopic(topic.name, topic.partitions, topic.replicas, topic_configs=dict(topic.config))


def _check_partitions(wanted: Sequence[TopicRequest], existing: Mapping[str, int]) -> None:
    for topic in wanted:
        found = existing.get(topic.name)
        if found is not None and found != topic.partitions:
            raise ConfigError(
                f"topic {topic.name!r} exists with {found} partitions but STREAM_PARTITIONS "
                f"asks for {topic.partitions}: set STREAM_PARTITIONS={found} or recreate the topic"
            )


def _check_created(response: Mapping[str, Any]) -> None:
    for error in response["topic_errors"]:
        # Another worker may have created it between our look and our request.
        if error["error_code"] not in (0, _TOPIC_ALREADY_EXISTS):
            raise KafkaUnavailableError(
                f"creating topic {error['topic']!r} failed: error {error['error_code']} "
                f"{error['error_message'] or ''}".rstrip()
            )


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    # A probe that expects "no" while a broker boots would log a connection error
    # every few hundred milliseconds; the caller reports the outcome instead.
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
