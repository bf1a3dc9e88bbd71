"""Per-variant running state of an A/B test, mergeable and JSON-safe for a Faust table."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from stream_app.monitoring.sketch import DEFAULT_RELATIVE_ACCURACY, QuantileSketch

__all__ = ["ABCounters"]


class ABCounters:
    """One variant's mergeable running state: exposures, conversions, latency sum and sketch.

    Example:
        >>> a = ABCounters()
        >>> a.record_exposure(40.0)
        >>> a.record_outcome(converted=True)
        >>> b = ABCounters.from_dict(a.to_dict())
        >>> b.record_exposure(60.0)
        >>> merged = a.merge(b)
        >>> merged.exposures, merged.conversions, merged.latency_mean
        (3, 2, 46.666666666666664)
    """

    __slots__ = ("conversions", "exposures", "latency_sum", "sketch")

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        self.exposures = 0
        self.conversions = 0
        self.latency_sum = 0.0
        self.sketch = QuantileSketch(relative_accuracy)

    def record_exposure(self, latency_ms: float | None = None) -> None:
        """Count one scored request; ``latency_ms`` (finite, >= 0) when it was measured."""
        if latency_ms is not None:
            self.record_latencies([latency_ms])
        self.exposures += 1

    def record_exposures(self, latencies_ms: npt.ArrayLike) -> None:
        """Count a micro-batch of scored requests, one latency each."""
        values = np.asarray(latencies_ms, dtype=np.float64).ravel()
        self.record_latencies(values)
        self.exposures += int(values.size)

    def record_latencies(self, latencies_ms: npt.ArrayLike) -> None:
        """Add latency samples without counting exposures (checked before anything changes)."""
        values = np.asarray(latencies_ms, dtype=np.float64).ravel()
        self.sketch.add_many(values)
        self.latency_sum += float(values.sum())

    def record_outcome(self, converted: bool | int) -> None:
        """Count one joined outcome; only conversions change the state."""
        self.conversions += int(bool(converted))

    @property
    def latency_count(self) -> int:
        """Latency samples recorded: the sketch counts every one."""
        return self.sketch.count

    @property
    def latency_mean(self) -> float | None:
        """Mean latency in ms, None without samples."""
        return self.latency_sum / self.latency_count if self.latency_count else None

    def merge(self, other: ABCounters) -> ABCounters:
        """New counters holding both (e.g. two partitions of one variant)."""
        merged = ABCounters(self.sketch.relative_accuracy)
        merged.sketch = self.sketch.merge(other.sketch)
        merged.exposures = self.exposures + other.exposures
        merged.conversions = self.conversions + other.conversions
        merged.latency_sum = self.latency_sum + other.latency_sum
        return merged

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state for a Faust table."""
        return {
            "exposures": self.exposures,
            "conversions": self.conversions,
            "latency_sum": self.latency_sum,
            "latency_count": self.latency_count,
            "sketch": self.sketch.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ABCounters:
        """Rebuild counters from :meth:`to_dict` output."""
        counters = cls()
        counters.sketch = QuantileSketch.from_dict(data["sketch"])
        counters.exposures = int(data["exposures"])
        counters.conversions = int(data["conversions"])
        counters.latency_sum = float(data["latency_sum"])
        return counters

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ABCounters):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __repr__(self) -> str:
        return f"ABCounters(exposures={self.exposures}, conversions={self.conversions})"
