"""The outcome join: predictions + outcomes -> JoinedOutcome on monitor-events.

Both topics are keyed by request_id and co-partitioned, so one agent reads them (and
the internal outcomes-rekeyed topic) and keeps one table row per request_id on the
event's own partition. An outcome with a missing or wrong key, or on another partition
than its request_id hashes to, is re-sent once through outcomes-rekeyed to the right
partition. The rules (TTL, duplicates, expiry) are in stream_app.monitoring.ab_join.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from pydantic import ValidationError

from agents.driver import json_table
from schemas.codec import decode, encode
from schemas.events import Outcome, Prediction, Rejection
from stream_app.app import StreamApp
from stream_app.monitoring.ab_join import (
    Exposure,
    JoinEntry,
    JoinStep,
    OutcomeJoin,
    PartitionClock,
    needs_rekey,
    parse_outcome,
)
from stream_app.partitioner import default_partition

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(app: StreamApp) -> None:
    """Declare the join agent and its two tables (entries, per-partition clocks)."""
    topics = app.kafka_topics
    names = [t.get_topic_name() for t in (topics.predictions, topics.outcomes)]
    source = app.topic(
        *names, topics.outcomes_rekeyed.get_topic_name(),
        key_serializer="raw", value_serializer="raw",
    )  # fmt: skip
    handler = _Join(app)

    @app.agent(source, name="ab-join")
    async def ab_join(stream: Any) -> None:
        async for event in stream.events():
            await handler.handle(event)


class _Join:
    """Per-event work of the agent: decode, route, fold into the table, publish."""

    def __init__(self, app: StreamApp) -> None:
        settings, topics = app.settings, app.kafka_topics
        self.app = app
        self.join = OutcomeJoin(settings.ab_outcome_ttl_seconds)
        self.partitions = settings.partitions
        self.entries = json_table(app, "ab-join")
        self.clocks = json_table(app, "ab-join-clock")
        self.predictions = topics.predictions.get_topic_name()
        self.outcomes = topics.outcomes.get_topic_name()
        self.model_key = settings.model_name.encode()
        self.counts: Counter[str] = Counter()

    async def handle(self, event: Any) -> None:
        message = event.message
        raw = bytes(event.value or b"")
        if message.topic == self.predictions:
            parsed = _prediction(raw, message.timestamp)
            if parsed is None:
                self.counts["undecodable_prediction"] += 1
                log.warning("ab-join: undecodable prediction skipped (%d so far)",
                            self.counts["undecodable_prediction"])  # fmt: skip
                return
            request_id, exposure = parsed
            await self._fold(request_id, exposure.at, message.partition, exposure, None, raw)
            return
        outcome = parse_outcome(raw)
        if isinstance(outcome, Rejection):
            await _reject(self.app, outcome)
            return
        request_id = outcome.request_id
        # An outcome read back from outcomes-rekeyed was placed by us: never bounce it again.
        if message.topic == self.outcomes and needs_rekey(
            event.key, message.partition, request_id, self.partitions
        ):
            key = request_id.encode()
            await self.app.kafka_topics.outcomes_rekeyed.send(
                key=key, value=raw, partition=default_partition(key, self.partitions)
            )
            return
        at = outcome.timestamp.timestamp()
        await self._fold(request_id, at, message.partition, None, outcome, raw)

    async def _fold(
        self,
        request_id: str,
        at: float,
        partition: int,
        exposure: Exposure | None,
        outcome: Outcome | None,
        raw: bytes,
    ) -> None:
        clock_key = str(partition).encode()
        stored = self.clocks.get(clock_key)
        clock, sweep_due = self.join.tick(None if stored is None else PartitionClock(**stored), at)
        self.clocks[clock_key] = {"watermark": clock.watermark, "swept_at": clock.swept_at}
        key = request_id.encode()
        current = self.entries.get(key)
        entry = None if current is None else JoinEntry.from_dict(current)
        wm = clock.watermark
        if exposure is not None:
            step = self.join.on_prediction(
                entry, request_id, exposure, partition=partition, watermark=wm
            )
        else:
            assert outcome is not None  # noqa: S101 - one of the two is always given
            step = self.join.on_outcome(entry, outcome, raw, partition=partition, watermark=wm)
        # Sent before the state is written, as in intake: a replay after a crash in between
        # publishes again (same request_id) rather than finding the join done and silent.
        await self._publish(step)
        self.entries[key] = step.entry.to_dict()
        if sweep_due:
            await self._sweep(partition, wm)

    async def _publish(self, step: JoinStep) -> None:
        if step.expired is not None:
            await _reject(self.app, step.expired)
        if step.joined is not None:
            await self.app.kafka_topics.monitor_events.send(
                key=self.model_key, value=encode(step.joined)
            )
        self.counts["duplicate"] += step.duplicate

    async def _sweep(self, partition: int, watermark: float) -> None:
        # Collected first: the table must not change size while it is iterated.
        rows = [JoinEntry.from_dict(v) for v in list(self.entries.values()) if v is not None]
        for request_id, rejection in self.join.sweep(
            rows, partition=partition, watermark=watermark
        ):
            if rejection is not None:
                await _reject(self.app, rejection)
            del self.entries[request_id.encode()]


def _prediction(raw: bytes, kafka_time: float | None) -> tuple[str, Exposure] | None:
    """request_id and what the join keeps; event time is the prediction's, else Kafka's."""
    try:
        p = decode(raw, Prediction)
    except ValidationError:
        return None
    at = p.timestamp.timestamp() if p.timestamp is not None else float(kafka_time or 0.0)
    return p.request_id, Exposure(p.variant, p.model_version, at)


async def _reject(app: StreamApp, rejection: Rejection) -> None:
    # requests-invalid is keyed by client_id or null; outcomes carry no client_id.
    await app.kafka_topics.requests_invalid.send(key=None, value=encode(rejection))
