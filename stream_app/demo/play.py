"""Play the demo day into Kafka in event-time order, never too far ahead of the pipeline.

Each message keeps its scenario time as the Kafka timestamp. The player holds back while
more than :func:`in_flight_limit` requests have no output yet: the watermark of a
monitoring agent is the newest event time it has seen across all partitions, so a
backlog read unevenly from the partitions would make the lagging partitions' events
late. Keeping the requests in flight within a fraction of the grace keeps every event
inside its window, whatever the speed of the machine.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from stream_app.config import Settings
from stream_app.demo.collect import OutputCollector
from stream_app.demo.message import EPOCH, ScenarioMessage, iso_ms
from stream_app.kafka_admin import TopicRequest
from stream_app.topics import MAX_MESSAGE_BYTES, SPECS, TIMESTAMP_TYPE, topic_names

__all__ = [
    "INPUT_TOPICS",
    "PlayProgress",
    "demo_producer",
    "in_flight_limit",
    "input_topics",
    "play",
    "progress_marks",
]

# The topics the player writes, each message stamped with its scenario time.
INPUT_TOPICS = ("prediction_requests", "outcomes", "service_metrics")
_KEEP_AFTER_RUN = timedelta(days=7)

_CHECK_EVERY = 2000  # sends between checks that the broker took what was sent
_MIN_IN_FLIGHT = 8


@dataclass(frozen=True)
class PlayProgress:
    """Where the player is: messages sent, event time reached, wall time, outputs seen."""

    sent: int
    total: int
    event_time_ms: int
    elapsed: float
    outputs: int

    def line(self) -> str:
        """One progress line.

        Example:
            >>> PlayProgress(1500, 3000, 1_767_261_600_000, 3.0, 1400).line()
            '[ 50%] event time 2026-01-01 10:00 | sent 1,500 of 3,000 | 500 msg/s | 1,400 requests out'
        """  # noqa: E501 - a doctest line is as long as the output
        moment = iso_ms(EPOCH + timedelta(milliseconds=self.event_time_ms))[:16].replace("T", " ")
        rate = self.sent / self.elapsed if self.elapsed > 0 else 0.0
        share = 100 * self.sent // max(1, self.total)
        return (
            f"[{share:3d}%] event time {moment} | sent {self.sent:,} of {self.total:,} | "
            f"{rate:,.0f} msg/s | {self.outputs:,} requests out"
        )


def in_flight_limit(requests: int, span_seconds: float, grace_seconds: float) -> int:
    """Requests allowed without output: those of a third of the grace, at least 8.

    A floor much higher would break the bound on a small day (50 requests of a
    3,000-request day span 24 minutes of event time, and reports then varied between
    runs); the pipeline is CPU-bound anyway, so a low limit costs little speed.

    Example:
        >>> in_flight_limit(30_000, 88_200.0, 1800.0)
        204
        >>> in_flight_limit(100, 88_200.0, 60.0)
        8
    """
    if span_seconds <= 0:
        return max(_MIN_IN_FLIGHT, requests)
    per_second = requests / span_seconds
    return max(_MIN_IN_FLIGHT, math.floor(per_second * grace_seconds / 3.0))


def progress_marks(total: int, steps: int = 20) -> frozenset[int]:
    """The message counts after which a progress line is printed (every 1/steps).

    Example:
        >>> sorted(progress_marks(100, steps=4))
        [25, 50, 75, 100]
    """
    return frozenset(max(1, math.ceil(total * k / steps)) for k in range(1, steps + 1))


_REPLAY = {TIMESTAMP_TYPE: "CreateTime"}


def input_topics(settings: Settings, oldest: datetime, now: datetime) -> list[TopicRequest]:
    """The input topics as the demo creates them before the worker starts.

    Kafka deletes messages by their timestamp: with the default retention (7 days) a
    day stamped months ago would be deleted by the next retention check, possibly
    before the worker read it. So these topics keep messages for the scenario's age
    plus 7 days. They keep CreateTime: a replay stamps each message with its scenario
    time, which the app would otherwise take from the broker (LogAppendTime). The worker
    says so on /health ("clocks", degraded), as for any input whose producers choose
    its Kafka timestamps: the demo is a producer the operator trusts.

    Example:
        >>> from datetime import UTC
        >>> from stream_app.config import load_settings
        >>> old, now = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC)
        >>> t = input_topics(load_settings({}, topic_prefix="d."), old, now)[0]
        >>> t.name, t.partitions, t.config["retention.ms"], t.config["max.message.bytes"]
        ('d.prediction-requests', 4, '3196800000', '3145728')
    """
    names = topic_names(settings)
    keep = max(timedelta(0), now - oldest) + _KEEP_AFTER_RUN
    retention = {"retention.ms": str(int(keep.total_seconds() * 1000))}
    specs = {spec.attr: spec for spec in SPECS}
    return [
        TopicRequest(
            names[attr],
            settings.partitions,
            settings.replication_factor,
            {**specs[attr].config, **retention, **_REPLAY},
        )
        for attr in INPUT_TOPICS
    ]


def demo_producer(
    bootstrap: list[str], security: Mapping[str, Any] | None = None
) -> AIOKafkaProducer:
    """A producer that takes the scenario's largest (oversize) requests."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_request_size=MAX_MESSAGE_BYTES + 64 * 1024,
        **(security or {}),
    )


async def play(
    producer: AIOKafkaProducer,
    names: Mapping[str, str],
    messages: Sequence[ScenarioMessage],
    collector: OutputCollector,
    *,
    limit: int,
    report: Callable[[PlayProgress], None],
    clock: Callable[[], float] = time.monotonic,
) -> Counter[str]:
    """Send every message (topic attribute -> ``names``); returns the count per attribute."""
    sent: Counter[str] = Counter()
    marks = progress_marks(len(messages))
    pending: list[asyncio.Future[object]] = []
    started = clock()
    for index, message in enumerate(messages, start=1):
        if message.topic == "prediction_requests":
            while sent["prediction_requests"] - collector.request_outputs > limit:
                await asyncio.sleep(0.005)
        future = await producer.send(
            names[message.topic],
            message.value,
            key=message.key,
            timestamp_ms=message.timestamp_ms,
        )
        pending.append(future)
        sent[message.topic] += 1
        if len(pending) >= _CHECK_EVERY:
            await asyncio.gather(*pending)  # a failed send surfaces here, not silently
            pending.clear()
        if index in marks:
            progress = PlayProgress(
                index, len(messages), message.timestamp_ms, clock() - started,
                collector.request_outputs,
            )  # fmt: skip
            report(progress)
    await producer.flush()
    await asyncio.gather(*pending)
    return sent
