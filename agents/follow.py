"""A local follower: the newest message per key of a small output topic, on every worker.

Pages about published reports (/reports/ab) read it, so every worker answers from
what was actually published, also while a rebalance moves the table that produced it
and without a hop to another worker's web server. Each worker reads the whole topic
(no consumer group, from the earliest offset): report topics carry one message per
interval per model, so that is little.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer

__all__ = ["LatestByKey"]

log = logging.getLogger(__name__)


class LatestByKey:
    """Keeps ``latest[key] = value`` for every keyed message of ``topic``."""

    def __init__(self, bootstrap_servers: list[str], topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.latest: dict[bytes, bytes] = {}
        self.read = 0

    async def run(self) -> None:
        """Follow the topic until cancelled; reconnects after a broker error."""
        while True:
            # group_id=None: no group, aiokafka assigns every partition of the topic.
            consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            try:
                await consumer.start()
                while True:
                    batches = await consumer.getmany(timeout_ms=1000)
                    for records in batches.values():
                        for record in records:
                            self.read += 1
                            if record.key is not None and record.value is not None:
                                self.latest[record.key] = record.value
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a page must outlive a broker hiccup
                log.warning("follower of %s: %s; retrying", self.topic, type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()
