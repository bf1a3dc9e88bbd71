"""Intake's decisions: where a raw request goes, and the rate limit as a fold.

:func:`route_request` reads one message of the request topic (or of the app's re-key
topic) and says its fate: a :class:`~schemas.events.Rejection` for requests-invalid, a
:class:`Misplaced` request to re-key (its key or partition is not its client's), or the
valid request, stamped with its event time, for the rate limit. :func:`limit_fold` is
the rate limit over one client's batch of :class:`Arrived` requests: each allowed request
is scored in the same batch step, each refused one goes to requests-throttled.

The limiter's clock is the broker's time of a request's arrival, never the request's own
``timestamp``: a client that back-dates, forward-dates or spaces out the timestamps of a
burst is still judged by when the burst reached the broker. The event time (the
request's ``timestamp``) serves the monitoring windows. A prediction's latency starts at
the request's arrival too (:func:`latency_start`), by the worker's clock where the
producers choose the Kafka timestamps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.events import PredictionRequest, Rejection
from stream_app.fold import Fold, Folded
from stream_app.inference.rate_limit import ClientWindow, RateDecision, is_idle, rate_limit
from stream_app.inference.validate import (
    DEFAULT_MAX_EXTRA_BYTES,
    DEFAULT_MAX_EXTRA_FIELDS,
    check_event_time,
    parse_request,
)
from stream_app.partitioner import default_partition

__all__ = [
    "Arrived",
    "Limited",
    "Misplaced",
    "latency_start",
    "limit_fold",
    "rejection_time",
    "route_request",
]


@dataclass(frozen=True)
class Misplaced:
    """A valid request on another key or partition than its client_id's: re-key it."""

    client_id: str
    request: PredictionRequest


@dataclass(frozen=True)
class Arrived:
    """A valid request and when it reached the broker (epoch seconds): the limiter's clock.

    A re-keyed copy arrives with its original's time (the app copies the Kafka timestamp).
    ``since`` is where its prediction's latency starts (:func:`latency_start`); None: ``at``.
    """

    request: PredictionRequest
    at: float
    since: float | None = None


@dataclass(frozen=True)
class Limited:
    """The rate limit's answer for one request, and where its latency started."""

    request: PredictionRequest
    decision: RateDecision
    since: float


def latency_start(broker_time: float, received: float, *, broker_stamped: bool) -> float:
    """When a request arrived, for its prediction's latency (epoch seconds).

    ``broker_time`` is the request's Kafka timestamp, ``received`` the worker's clock
    when its batch reached the driver. On a topic with LogAppendTime
    (``broker_stamped``) the broker's stamp is the arrival, so the latency includes any
    wait in Kafka (a backlog, a failover). On a CreateTime topic the producer chose the
    stamp (a replayed day carries its original times, months back), so the arrival is
    the worker's receipt: the latency then leaves out the time in Kafka.

    Example:
        >>> latency_start(100.0, 100.25, broker_stamped=True)
        100.0
        >>> latency_start(1_767_225_600.0, 1_780_000_000.0, broker_stamped=False)
        1780000000.0
    """
    return broker_time if broker_stamped else received


def route_request(
    raw: bytes,
    *,
    key: bytes | None,
    partition: int,
    partitions: int,
    received: datetime,
    max_ahead_seconds: float,
    placed_by_app: bool = False,
    max_extra_fields: int = DEFAULT_MAX_EXTRA_FIELDS,
    max_extra_bytes: int = DEFAULT_MAX_EXTRA_BYTES,
) -> Rejection | Misplaced | PredictionRequest:
    """The fate of one message: rejected, misplaced, or the request with its event time.

    ``received`` is the broker's time for the message: a request without a timestamp
    takes it, one stamped more than ``max_ahead_seconds`` after it is refused.
    ``placed_by_app`` marks a copy the app re-keyed itself: it is never bounced again.
    Extras beyond ``max_extra_fields`` or ``max_extra_bytes`` are refused (parse_request).

    Example:
        >>> from datetime import UTC
        >>> raw = (b'{"request_id": "r1", "client_id": "c1", "user_id": "USR1", "age": 30,'
        ...        b' "purchase_history": [9.5], "category_preference": "home",'
        ...        b' "session_duration_minutes": 3}')
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> def fate(raw, key, partition):
        ...     return route_request(raw, key=key, partition=partition, partitions=4,
        ...                          received=at, max_ahead_seconds=300)
        >>> fate(b"{oops", b"c1", 0).reason
        'malformed_json'
        >>> fate(raw, None, 0).client_id
        'c1'
        >>> r = fate(raw, b"c1", default_partition(b"c1", 4))
        >>> r.request_id, r.timestamp == at
        ('r1', True)
    """
    parsed = parse_request(raw, max_extra_fields=max_extra_fields, max_extra_bytes=max_extra_bytes)
    if isinstance(parsed, PredictionRequest):
        late = check_event_time(parsed, raw, received, max_ahead_seconds=max_ahead_seconds)
        parsed = late or parsed
    if isinstance(parsed, Rejection):
        return parsed
    client = parsed.client_id.encode()
    if not placed_by_app and (key != client or partition != default_partition(client, partitions)):
        return Misplaced(parsed.client_id, parsed)
    if parsed.timestamp is None:
        return parsed.model_copy(update={"timestamp": received})
    return parsed


def rejection_time(
    rejection: Rejection,
    raw: bytes,
    received: datetime,
    *,
    max_ahead_seconds: float,
    stream_time: datetime | None = None,
) -> datetime:
    """The event time a refused request is counted at by the monitors.

    Its own ``timestamp`` when it has a readable one that is not ahead of its arrival
    (a request refused for its age still happened when it says), else ``stream_time``
    (the newest event time of its partition, when known and not after its arrival), else
    its arrival. A refused request of a replayed day is so counted in that day's windows
    rather than at the broker's clock, which would close every window of the replay; and
    a refused request can move no clock further than a valid one could.

    Example:
        >>> from datetime import UTC
        >>> from stream_app.inference.validate import parse_request
        >>> now = datetime(2026, 6, 1, 12, tzinfo=UTC)
        >>> raw = b'{"request_id": "r1", "age": 5, "timestamp": "2026-01-01T00:00:00Z"}'
        >>> rejection_time(parse_request(raw), raw, now, max_ahead_seconds=300).month
        1
        >>> rejection_time(parse_request(b"{oops"), b"{oops", now, max_ahead_seconds=300,
        ...                stream_time=datetime(2026, 3, 1, tzinfo=UTC)).month
        3
        >>> rejection_time(parse_request(b"{oops"), b"{oops", now, max_ahead_seconds=300) == now
        True
    """
    if rejection.reason in ("schema", "timestamp_ahead"):
        stamped = _stamp(raw)
        if stamped is not None and (stamped - received).total_seconds() <= max_ahead_seconds:
            return stamped
    if stream_time is not None and stream_time <= received:
        return stream_time
    return received


def _stamp(raw: bytes) -> datetime | None:
    """The ``timestamp`` of a JSON object, if it is an ISO date-time with a zone."""
    try:
        data = json.loads(raw)
        stamp = datetime.fromisoformat(data["timestamp"])
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return stamp if stamp.tzinfo is not None else None


def limit_fold(*, max_requests: int, window_seconds: float) -> Fold[ClientWindow, Arrived, Limited]:
    """The sliding-window rate limit over one client's requests, in order, at the times
    they reached the broker (:class:`Arrived`), whatever their own timestamps say. A
    client with nothing allowed in the window ending at ``now`` is forgotten (None) when
    the driver folds it with no events (expiry).

    Example:
        >>> from datetime import UTC
        >>> def req(i, arrived, stamped_day):
        ...     r = PredictionRequest(request_id=f"r{i}", client_id="c", user_id="USR1",
        ...         age=30, purchase_history=[1.0], category_preference="home",
        ...         session_duration_minutes=1.0,
        ...         timestamp=datetime(2026, 1, stamped_day, tzinfo=UTC))
        ...     return Arrived(r, arrived)
        >>> fold = limit_fold(max_requests=2, window_seconds=60)
        >>> out = fold(None, [req(1, 100.0, 1), req(2, 100.5, 2), req(3, 101.0, 3)], now=0.0)
        >>> [(r.request.request_id, r.decision.allowed) for r in out.results]
        [('r1', True), ('r2', True), ('r3', False)]
        >>> out.state.newest
        100.5
        >>> fold(out.state, [], now=160.5).state is None  # idle: forgotten
        True
    """

    def fold(
        state: ClientWindow | None, events: Sequence[Arrived], now: float
    ) -> Folded[ClientWindow, Limited]:
        results = []
        for arrived in events:
            decision, state = rate_limit(
                state, arrived.at, max_requests=max_requests, window_seconds=window_seconds
            )
            since = arrived.at if arrived.since is None else arrived.since
            results.append(Limited(arrived.request, decision, since))
        # Only a pure expiry (no events) forgets: a copy re-keyed from another partition
        # may arrive a little behind this partition's clock and still counts.
        if state is None or (not events and is_idle(state, now, window_seconds)):
            return Folded(None, tuple(results))
        return Folded(state, tuple(results))

    return fold
