"""Intake: validate each request, re-key it when needed, rate-limit it per client.

prediction-requests (and the app's re-key topic) -> parse_request ->
requests-invalid (Rejection) | requests-rekeyed | requests-throttled | requests-scoring.

The rate-limit table is keyed by client_id, so a request must sit on the partition its
client_id hashes to before the limiter sees it; a request with a missing or wrong key
(or written with another partitioner) goes once through requests-rekeyed, never dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from agents.support import json_table
from schemas.events import PredictionRequest, Rejection, ThrottledRequest
from schemas.monitor import RequestCounted
from stream_app.app import StreamApp
from stream_app.inference.rate_limit import ClientWindow, is_idle, rate_limit
from stream_app.inference.validate import parse_request
from stream_app.partitioner import default_partition

__all__ = ["event_time", "install"]

# Idle clients are swept from a partition's share of the table at most this often (event
# time): a sweep reads every key the worker holds, so sweeping per window would cost more
# than the limiter itself. Memory is bounded by the clients active within an hour.
SWEEP_EVERY_SECONDS = 3600.0


def event_time(request: PredictionRequest, kafka_timestamp: float | None) -> datetime:
    """The request's own timestamp, else the Kafka timestamp (seconds), else now."""
    if request.timestamp is not None:
        return request.timestamp
    if kafka_timestamp is not None:
        return datetime.fromtimestamp(kafka_timestamp, UTC)
    return datetime.now(UTC)  # a broker always stamps; this is for hand-built events


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
        await topics.monitor_events.send(key=monitor_key, value=_json(counted))

    @app.agent(source, name="intake")
    async def intake(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            parsed = parse_request(bytes(event.value or b""))
            now = datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else None
            if isinstance(parsed, Rejection):
                key = parsed.client_id.encode() if parsed.client_id else None
                await topics.requests_invalid.send(key=key, value=_json(parsed))
                await count("rejected", now or datetime.now(UTC))
                continue
            client_id = parsed.client_id
            client = client_id.encode()
            misplaced = event.key != client or message.partition != default_partition(
                client, settings.partitions
            )
            if misplaced and message.topic != rekeyed_name:
                await topics.requests_rekeyed.send(key=client, value=event.value)
                continue
            at = event_time(parsed, message.timestamp)
            row = limits.get(client) or {}
            if message.offset <= row.get("offsets", {}).get(message.topic, -1):
                continue  # a replay after a rebalance: decided and sent before
            request = parsed.model_copy(update={"timestamp": at})
            decision, new_state = rate_limit(
                ClientWindow.from_json(row["window"]) if "window" in row else None,
                at.timestamp(),
                max_requests=settings.rate_limit_max_requests,
                window_seconds=window,
            )
            if decision.allowed:
                await topics.requests_scoring.send(key=client, value=_json(request))
            else:
                throttled = ThrottledRequest(
                    request=request,
                    remaining=decision.remaining,
                    retry_after_seconds=decision.retry_after_seconds,
                )
                await topics.requests_throttled.send(key=client, value=_json(throttled))
                await count("throttled", at)
            # Written after the sends, with the offset, so a replayed event is recognised.
            offsets = {**row.get("offsets", {}), message.topic: message.offset}
            limits[client] = {"window": new_state.to_json(), "offsets": offsets}
            sweep(message.partition, at.timestamp())


def _json(model: Any) -> bytes:
    return bytes(model.model_dump_json().encode())
