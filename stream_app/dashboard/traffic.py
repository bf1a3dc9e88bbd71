"""A worker's own traffic per interval, for the dashboard: fates, latency, lag.

:class:`TrafficTally` counts the fates of the batches the worker delivered (the same notes
the /metrics counters read, so a batch tried again after a failure counts once; a lock
keeps it safe from any thread); every interval the worker calls
:meth:`TrafficTally.take` with the time, which hands back one :class:`TrafficPoint` and
starts the next interval. :class:`TrafficRing` keeps the last ``size`` points: with the
defaults (``STREAM_DASHBOARD_INTERVAL_SECONDS`` 5, :data:`RING_SIZE` 720) one hour.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from stream_app.metrics import RequestFate
from stream_app.monitoring.sketch import QuantileSketch

__all__ = ["RING_SIZE", "TrafficPoint", "TrafficRing", "TrafficTally"]

RING_SIZE = 720


@dataclass(frozen=True)
class TrafficPoint:
    """One interval ending at ``at`` (epoch seconds) and ``seconds`` long.

    ``lag``: messages behind on the request topic's partitions this worker reads at the
    interval's end (None when the consumer could not say).
    """

    at: float
    seconds: float
    scored: int = 0
    invalid: Mapping[str, int] = field(default_factory=dict)
    throttled: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    lag: int | None = None

    def per_second(self, count: int) -> float:
        """``count`` over this interval as a rate.

        Example:
            >>> TrafficPoint(at=10.0, seconds=5.0, scored=20).per_second(20)
            4.0
        """
        return count / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "at": self.at,
            "seconds": self.seconds,
            "scored": self.scored,
            "invalid": dict(self.invalid),
            "throttled": self.throttled,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "lag": self.lag,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrafficPoint:
        """Inverse of :meth:`to_dict`."""
        p50, p99, lag = data.get("latency_p50_ms"), data.get("latency_p99_ms"), data.get("lag")
        return cls(
            at=float(data["at"]),
            seconds=float(data["seconds"]),
            scored=int(data.get("scored", 0)),
            invalid={str(k): int(v) for k, v in dict(data.get("invalid", {})).items()},
            throttled=int(data.get("throttled", 0)),
            latency_p50_ms=None if p50 is None else float(p50),
            latency_p99_ms=None if p99 is None else float(p99),
            lag=None if lag is None else int(lag),
        )


class TrafficTally:
    """Counts of the current interval; safe to feed from the scoring thread.

    Example:
        >>> tally = TrafficTally(started=0.0)
        >>> tally.scored([2.0, 4.0, 4.0]); tally.invalid("schema"); tally.throttled(2)
        >>> point = tally.take(now=5.0, lag=0)
        >>> point.scored, dict(point.invalid), point.throttled, point.seconds
        (3, {'schema': 1}, 2, 5.0)
        >>> tally.take(now=10.0).scored
        0
    """

    def __init__(self, started: float) -> None:
        self._lock = threading.Lock()
        self._started = started
        self._scored = 0
        self._invalid: Counter[str] = Counter()
        self._throttled = 0
        self._latency = QuantileSketch()

    def count_fates(self, fates: Iterable[RequestFate]) -> None:
        """Fold the fates of one delivered batch.

        Example:
            >>> tally = TrafficTally(started=0.0)
            >>> tally.count_fates([RequestFate("scored", latency_seconds=0.25),
            ...     RequestFate("invalid", reason="schema"), RequestFate("throttled")])
            >>> point = tally.take(now=1.0)
            >>> point.scored, dict(point.invalid), point.throttled
            (1, {'schema': 1}, 1)
        """
        latencies: list[float] = []
        invalid: Counter[str] = Counter()
        throttled = 0
        for fate in fates:
            if fate.fate == "scored":
                latencies.append(1000.0 * (fate.latency_seconds or 0.0))
            elif fate.fate == "invalid":
                invalid[fate.reason or "unknown"] += 1
            else:
                throttled += 1
        self.scored(latencies)
        for reason, count in invalid.items():
            self.invalid(reason, count)
        if throttled:
            self.throttled(throttled)

    def scored(self, latencies_ms: Iterable[float]) -> None:
        """Requests scored, with their latencies (ms)."""
        values = [float(v) for v in latencies_ms]
        with self._lock:
            self._scored += len(values)
            self._latency.add_many([v for v in values if v > 0])

    def invalid(self, reason: str, count: int = 1) -> None:
        """Requests refused for ``reason``."""
        with self._lock:
            self._invalid[reason] += count

    def throttled(self, count: int = 1) -> None:
        """Requests the rate limit refused."""
        with self._lock:
            self._throttled += count

    def take(self, now: float, lag: int | None = None) -> TrafficPoint:
        """The interval up to ``now`` as a point; the next interval starts at ``now``."""
        with self._lock:
            scored, invalid, throttled = self._scored, dict(self._invalid), self._throttled
            latency, started = self._latency, self._started
            self._scored, self._invalid, self._throttled = 0, Counter(), 0
            self._latency, self._started = QuantileSketch(), now
        return TrafficPoint(
            at=now, seconds=max(now - started, 0.0), scored=scored,
            invalid=dict(sorted(invalid.items())), throttled=throttled,
            latency_p50_ms=latency.quantile(0.5), latency_p99_ms=latency.quantile(0.99),
            lag=lag,
        )  # fmt: skip


class TrafficRing:
    """The newest ``size`` points, oldest first.

    Example:
        >>> ring = TrafficRing(size=2)
        >>> for at in (5.0, 10.0, 15.0):
        ...     ring.add(TrafficPoint(at=at, seconds=5.0))
        >>> [p.at for p in ring]
        [10.0, 15.0]
    """

    def __init__(self, size: int = RING_SIZE) -> None:
        if size < 1:
            raise ValueError(f"size must be an integer in [1, inf), got {size}")
        self._points: deque[TrafficPoint] = deque(maxlen=size)

    def add(self, point: TrafficPoint) -> None:
        """Keep ``point``; past ``size`` the oldest goes."""
        self._points.append(point)

    def __iter__(self) -> Iterator[TrafficPoint]:
        return iter(tuple(self._points))

    def __len__(self) -> int:
        return len(self._points)
