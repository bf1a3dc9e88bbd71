"""A local follower: every worker reads small output topics whole, for its pages.

Pages about published state (/alerts, /reports/drift, /reports/ab, /dashboard) read
followers, so every worker answers from what was actually published, also while a
rebalance moves the table that produced it, and without a hop to another worker's web
server. A follower is a plain consumer outside the consumer group: it assigns every
partition of its topics, reads them from the beginning (read_committed), hands each
record to ``apply``, and starts over after a failure (``apply`` must therefore be safe
to see a record twice).
The followed topics carry one message per interval, model or service, so that is little.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["LatestByKey", "TopicFollower"]

log = logging.getLogger(__name__)


class TopicFollower:
    """Feeds every record of ``topics`` (``partitions`` each) to ``apply``, forever.

    ``caught_up`` turns True once everything that was in the topics when the follower
    (re)started has been applied; ``read`` counts the records applied. ``security``:
    the app's TLS and SASL options (``app.kafka_security``).
    """

    def __init__(
        self,
        bootstrap_servers: Sequence[str],
        topics: Sequence[str],
        partitions: int,
        apply: Callable[[Any], None],
        *,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = list(bootstrap_servers)
        self.security = dict(security or {})
        self.topics = list(topics)
        self.partitions = partitions
        self.apply = apply
        self.caught_up = False
        self.read = 0

    async def run(self) -> None:
        """Follow until cancelled; a failure is logged and the follower starts over."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a page must not freeze for good
                log.warning("follower of %s failed (%s); restarting",
                            ", ".join(self.topics), type(error).__name__)  # fmt: skip
                self.caught_up = False
                await asyncio.sleep(2.0)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            isolation_level="read_committed",
            **self.security,
        )
        await consumer.start()
        try:
            while not set(self.topics) <= await consumer.topics():
                await asyncio.sleep(0.5)  # the worker creates them as it starts
            partitions = [
                TopicPartition(topic, p) for topic in self.topics for p in range(self.partitions)
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self._apply(record)
                if not self.caught_up:
                    positions = [await consumer.position(tp) for tp in partitions]
                    self.caught_up = all(
                        p >= ends[tp] for p, tp in zip(positions, partitions, strict=True)
                    )
        finally:
            await consumer.stop()

    def _apply(self, record: Any) -> None:
        try:
            self.apply(record)
            self.read += 1
        except (ValueError, KeyError, TypeError) as error:
            log.warning("follower: skipped a %s message (%s)", record.topic, type(error).__name__)


class LatestByKey:
    """The newest value per key of one topic, kept by a :class:`TopicFollower`, for at
    most ``max_keys`` keys: past that, the key written longest ago is dropped, so a
    producer writing new keys cannot grow a worker's memory or its page without bound.
    """

    def __init__(
        self,
        bootstrap_servers: Sequence[str],
        topic: str,
        partitions: int,
        max_keys: int,
        *,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.latest: OrderedDict[bytes, bytes] = OrderedDict()
        self.max_keys = max_keys
        self.follower = TopicFollower(
            bootstrap_servers, [topic], partitions, self._keep, security=security
        )

    def _keep(self, record: Any) -> None:
        if record.key is None:
            return
        if record.value is None:
            self.latest.pop(record.key, None)
            return
        self.latest[record.key] = record.value
        self.latest.move_to_end(record.key)
        while len(self.latest) > self.max_keys:
            self.latest.popitem(last=False)

    @property
    def read(self) -> int:
        """Records read so far."""
        return self.follower.read

    async def run(self) -> None:
        """Follow the topic until cancelled."""
        await self.follower.run()
