"""Intake: validate each request, re-key it when needed, rate-limit it per client.

prediction-requests (and the app's re-key topic) -> parse_request ->
requests-invalid (Rejection) | requests-rekeyed | requests-throttled | requests-scoring.

The rate-limit table is keyed by client_id, so a request must sit on the partition its
client_id hashes to before the limiter sees it; a request with a missing or wrong key
(or written with another partitioner) goes once through requests-rekeyed, never dropped.

A client's row keeps its limiter window and, per origin partition, the offset of the last
request decided, written after that request's output was sent (a re-keyed copy carries
its origin in a header). A request at or below it is a replay of a decided event
(at_least_once, after a rebalance): it is skipped rather than counted twice, which would
throttle a request that was already scored. A request stamped later than the broker's
receipt allows (STREAM_MAX_EVENT_TIME_AHEAD_SECONDS) is refused: it would move every
event-time watermark into the future.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from agents.support import json_table
from schemas.codec import encode
from schemas.events import PredictionRequest, Rejection, ThrottledRequest
from schemas.monitor import RequestCounted
from stream_app.app import StreamApp
from stream_app.inference.rate_limit import ClientWindow, is_idle, rate_limit
from stream_app.inference.validate import check_event_time, parse_request
from stream_app.partitioner import default_partition

__all__ = ["event_time", "install"]

# Idle clients are swept from a partition's share of the table at most this often (event
# time): a sweep reads every key the worker holds, so sweeping per window would cost more
# than the limiter itself. Memory is bounded by the clients active within an hour.
SWEEP_EVERY_SECONDS = 3600.0
ORIGIN_HEADER = "stream-app-origin"

log = logging.getLogger(__name__)


def received_at(kafka_timestamp: float | None) -> datetime:
    """When the broker received the message (its Kafka timestamp, seconds), else now."""
    if kafka_timestamp is not None:
        return datetime.fromtimestamp(kafka_timestamp, UTC)
    return datetime.now(UTC)  # a broker always stamps; this is for hand-built events


def event_time(request: PredictionRequest, kafka_timestamp: float | None) -> datetime:
    """The request's own timestamp, else when the broker received it."""
    return request.timestamp or received_at(kafka_timestamp)


def install(app: StreamApp) -> None:
    """Add the intake agent and its rate-limit table."""
    settings, topics = app.settings, app.kafka_topics
    rekeyed_name = topics.requests_rekeyed.get_topic_name()
    source = app.topic(
        topics.prediction_requests.get_topic_name(),
        rekeyed_name,
        key_serializer="raw",
        value_serializer="raw",
    )
    limits = json_table(app, "rate-limits")
    monitor_key = settings.model_name.encode()
    window = settings.rate_limit_window_seconds
    next_sweep: dict[int, float] = {}

    def sweep(partition: int, now: float) -> None:
        # Only keys of the current event's partition: Faust writes the tombstone there.
        if now < next_sweep.get(partition, -1.0):
            return
        next_sweep[partition] = now + max(window, SWEEP_EVERY_SECONDS)
        idle = [
            key
            for key, value in list(limits.items())
            if default_partition(key, settings.partitions) == partition
            and is_idle(ClientWindow.from_json(value["window"]), now, window)
        ]
        for key in idle:
            del limits[key]

    async def count(kind: Literal["rejected", "throttled"], at: datetime) -> None:
        counted = RequestCounted(kind=kind, timestamp=at)
        await topics.monitor_events.send(key=monitor_key, value=encode(counted))

    @app.agent(source, name="intake")
    async def intake(stream: Any) -> None:
        async for event in stream.events():
            message, raw = event.message, bytes(event.value or b"")
            received = received_at(message.timestamp)
            parsed = parse_request(raw)
            if isinstance(parsed, PredictionRequest):
                ahead = settings.max_event_time_ahead_seconds
                parsed = check_event_time(parsed, raw, received, max_ahead_seconds=ahead) or parsed
            if isinstance(parsed, Rejection):
                key = parsed.client_id.encode() if parsed.client_id else None
                await topics.requests_invalid.send(key=key, value=encode(parsed))
                await count("rejected", received)
                continue
            client = parsed.client_id.encode()
            where, offset = origin(message)
            misplaced = event.key != client or message.partition != default_partition(
                client, settings.partitions
            )
            if misplaced and message.topic != rekeyed_name:
                await topics.requests_rekeyed.send(key=client, value=raw, headers=[
                    (ORIGIN_HEADER, f"{where}@{offset}".encode())])  # fmt: skip
                continue
            row = limits.get(client) or {}
            if offset <= row.get("offsets", {}).get(where, -1):
                log.info("intake: %s@%d already decided, skipped as a replay", where, offset)
                continue  # a replay after a rebalance: decided and sent before
            at = event_time(parsed, message.timestamp)
            request = parsed.model_copy(update={"timestamp": at})
            decision, new_state = rate_limit(
                ClientWindow.from_json(row["window"]) if "window" in row else None,
                at.timestamp(),
                max_requests=settings.rate_limit_max_requests,
                window_seconds=window,
            )
            if decision.allowed:
                await topics.requests_scoring.send(key=client, value=encode(request))
            else:
                throttled = ThrottledRequest(
                    request=request,
                    remaining=decision.remaining,
                    retry_after_seconds=decision.retry_after_seconds,
                )
                await topics.requests_throttled.send(key=client, value=encode(throttled))
                await count("throttled", at)
            # Written after the sends, with the offset, so a replayed event is recognised.
            offsets = {**row.get("offsets", {}), where: offset}
            limits[client] = {"window": new_state.to_json(), "offsets": offsets}
            sweep(message.partition, at.timestamp())


def origin(message: Any) -> tuple[str, int]:
    """``("topic:partition", offset)`` of where a request first arrived.

    A re-keyed copy carries its origin in a header, so a replay of the origin (which
    re-sends the copy at a new offset) is recognised by the same origin offset.
    """
    headers = message.headers or ()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name == ORIGIN_HEADER and value:
            where, _, offset = bytes(value).decode("ascii", "replace").rpartition("@")
            if where and offset.isdigit():
                return where, int(offset)
    return f"{message.topic}:{message.partition}", int(message.offset)
