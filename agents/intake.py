"""Intake: validate, re-key, rate-limit and score each request in one batch step.

prediction-requests (and the app's re-key topic) -> route_request ->
requests-invalid (Rejection) | requests-rekeyed | the rate limit per client ->
requests-throttled | scoring -> predictions, prediction-logs, monitor-events.

The rate-limit table is keyed by client_id, so a request must sit on the partition its
client_id hashes to before the limiter sees it; a request with a missing or wrong key
(or written with another partitioner) goes once through requests-rekeyed, never dropped.
The copy carries its origin (topic, partition, offset) in a header and keeps its
original timestamp; the header counts only on the re-key topic, which only the app
writes, so a client cannot name another request's origin.

The limiter decides on the time each request reached the broker (its Kafka timestamp;
the app creates prediction-requests with LogAppendTime so that the broker, not the
client, sets it), never on the request's own ``timestamp``, which only the monitoring
windows use. The batch driver (agents/driver.py) keeps each client's limiter window with
the offset of the last request decided per origin, written after that request's outputs were
acknowledged: a replay after a crash or rebalance is skipped rather than counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any, Literal

from agents.driver import (
    Keyed,
    Message,
    StatefulStep,
    headers_of,
    origin_of,
    received_at,
)
from agents.faust_step import install_step
from agents.score import Scoring
from schemas.codec import encode
from schemas.events import PredictionRequest, Rejection, ThrottledRequest
from schemas.monitor import RequestCounted
from stream_app.app import StreamApp
from stream_app.inference.intake import (
    Arrived,
    Limited,
    Misplaced,
    latency_start,
    limit_fold,
    rejection_time,
    route_request,
)
from stream_app.inference.rate_limit import ClientWindow
from stream_app.inference.scrub import scrub
from stream_app.metrics import RequestFate

__all__ = ["ORIGIN_HEADER", "install", "origin"]

ORIGIN_HEADER = "stream-app-origin"


def origin(record: Any, *, trust_header: bool) -> tuple[str, int]:
    """``("topic:partition", offset)`` of where a request first arrived.

    A re-keyed copy carries its origin in a header, so a replay of the origin (which
    re-sends the copy at a new offset) is recognised by the same origin offset. The
    header is read only when ``trust_header`` (the record is on the app's re-key topic).
    """
    if trust_header:
        where, _, offset = (
            headers_of(record).get(ORIGIN_HEADER, b"").decode("ascii", "replace").rpartition("@")
        )
        if where and offset.isdigit():
            return where, int(offset)
    return origin_of(record)


def _arrival(record: Any, arrived: Arrived) -> float:
    return arrived.at


def install(app: StreamApp) -> None:
    """Add the intake agent and its rate-limit table.

    A prediction's latency starts at its request's Kafka timestamp, or, on a request
    topic whose producers choose them (``app.clock_drift``), when the worker's batch took
    the request, by the clock the scorers end it with (``app.serving.clock``).
    """
    settings, topics = app.settings, app.kafka_topics
    requests_topic = topics.prediction_requests.get_topic_name()
    rekeyed = topics.requests_rekeyed.get_topic_name()
    invalid = topics.requests_invalid.get_topic_name()
    throttled_topic = topics.requests_throttled.get_topic_name()
    monitor = topics.monitor_events.get_topic_name()
    monitor_key = settings.model_name.encode()
    scoring = Scoring(app)
    max_ahead = settings.max_event_time_ahead_seconds
    # The newest event time of a valid request per partition (in memory): what a refused
    # request without a readable timestamp is counted at (rejection_time).
    stream_time: dict[int, datetime] = {}

    def counted(kind: Literal["rejected", "throttled"], at: datetime) -> Message:
        counted = RequestCounted(kind=kind, timestamp=at)
        return Message(monitor, monitor_key, encode(counted), derived=True)

    def route(record: Any) -> Keyed[Arrived] | Sequence[Message]:
        message, raw = record.message, bytes(record.value or b"")
        received = received_at(message.timestamp)
        on_rekeyed = message.topic == rekeyed
        fate = route_request(
            raw, key=record.key, partition=message.partition, partitions=settings.partitions,
            received=received, max_ahead_seconds=settings.max_event_time_ahead_seconds,
            placed_by_app=on_rekeyed, max_extra_fields=settings.max_extra_fields,
            max_extra_bytes=settings.max_extra_bytes,
        )  # fmt: skip
        if isinstance(fate, Rejection):
            key = fate.client_id.encode() if fate.client_id else None
            at = rejection_time(fate, raw, received, max_ahead_seconds=max_ahead,
                                stream_time=stream_time.get(message.partition))  # fmt: skip
            note = RequestFate("invalid", reason=fate.reason)
            return (Message(invalid, key, encode(fate), note=note), counted("rejected", at))
        where, offset = origin(record, trust_header=on_rekeyed)
        if isinstance(fate, PredictionRequest) and fate.timestamp is not None:
            newest = stream_time.get(message.partition)
            if newest is None or fate.timestamp > newest:
                stream_time[message.partition] = fate.timestamp
        if isinstance(fate, Misplaced):
            header = (ORIGIN_HEADER, f"{where}@{offset}".encode())
            # The request's own fields only: the copy is internal and keeps no extras.
            value = encode(fate.request.without_extras())
            copy = Message(
                rekeyed, fate.client_id.encode(), value, (header,), None, message.timestamp
            )
            return (copy,)
        arrival = received.timestamp()
        # A re-keyed copy carries its original's timestamp: the request topic's clock.
        stamped = all(drift.topic != requests_topic for drift in app.clock_drift)
        since = latency_start(arrival, app.serving.clock(), broker_stamped=stamped)
        return Keyed(fate.client_id.encode(), Arrived(fate, arrival, since), where, offset)

    async def emit(results: Sequence[Limited]) -> list[list[Message]]:
        out: list[list[Message]] = []
        allowed: list[int] = []
        for i, limited in enumerate(results):
            if limited.decision.allowed:
                allowed.append(i)
                out.append([])
                continue
            request, decision = limited.request, limited.decision
            refused = ThrottledRequest(
                request_id=request.request_id, client_id=request.client_id,
                remaining=decision.remaining, retry_after_seconds=decision.retry_after_seconds,
                request=scrub(request.without_extras(), scoring.policy),
            )  # fmt: skip
            assert request.timestamp is not None  # noqa: S101 - route_request stamps it
            out.append([
                Message(throttled_topic, request.client_id.encode(), encode(refused),
                        note=RequestFate("throttled")),
                counted("throttled", request.timestamp),
            ])  # fmt: skip
        if allowed:
            per_request, summaries = await scoring.score(
                [results[i].request for i in allowed], [results[i].since for i in allowed]
            )
            for i, messages in zip(allowed, per_request, strict=True):
                out[i] = messages
            out[allowed[0]].extend(summaries)
        return out

    window = settings.rate_limit_window_seconds
    step = StatefulStep(
        name="intake", table="rate-limits", route=route,
        fold=limit_fold(max_requests=settings.rate_limit_max_requests, window_seconds=window),
        load=ClientWindow.from_json, dump=ClientWindow.to_json, emit=emit,
        # The limiter decides on arrival time; a client with nothing allowed in the last
        # window is forgotten, so rows are bounded by the clients of about two windows.
        clock=_arrival, expire_after=window,
        # Fates are counted once their batch is delivered, not when decided: a batch
        # tried again after a failure counts once (/metrics and the dashboard alike).
        delivered=partial(_count_delivered, app),
    )  # fmt: skip
    install_step(app, step, [topics.prediction_requests.get_topic_name(), rekeyed])


def _count_delivered(app: StreamApp, sent: Sequence[Message]) -> None:
    fates = [m.note for m in sent if isinstance(m.note, RequestFate)]
    app.metrics.count_fates(fates)
    app.traffic.count_fates(fates)
