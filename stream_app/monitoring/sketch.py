"""A mergeable quantile sketch with a relative-error guarantee (log buckets, DDSketch-style).

The A/B agent keeps one sketch of latencies per variant in a Faust table, so the state has
to merge exactly and round-trip through JSON. The idea is DDSketch's (Masson, Rim and Lee,
VLDB 2019): bucket boundaries grow geometrically, so every bucket is narrow relative to the
values it holds. Why not the ``ddsketch`` package: its only serialised form is protobuf
(an extra dependency) which, by its own documentation, drops count, min, max and sum, and a
JSON form would have to read its private store fields.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_RELATIVE_ACCURACY", "QuantileSketch"]

# 0.5 % keeps the p95 within 1 % of numpy.percentile with room for float noise.
DEFAULT_RELATIVE_ACCURACY = 0.005


class QuantileSketch:
    """Quantiles of non-negative values, each within a relative error of the exact one.

    A value ``x > 0`` is counted in bucket ``k = ceil(log(x) / log(gamma))`` with
    ``gamma = (1 + a) / (1 - a)``; bucket ``k`` spans ``(gamma**(k-1), gamma**k]`` and is read
    back as ``2 * gamma**k / (gamma + 1)``, which is within ``a`` (relative) of every value in
    it. Zeros are counted apart. ``quantile(q)`` interpolates between neighbouring order
    statistics as ``numpy.percentile`` does, so it is within ``a`` of ``numpy.percentile``.
    Memory is one counter per occupied bucket: about ``ln(max / min) / (2 a)`` buckets
    (about 230 for values spanning ten-fold at ``a = 0.005``), whatever the number of values.

    Example:
        >>> sketch = QuantileSketch(relative_accuracy=0.01)
        >>> sketch.add_many([10.0, 20.0, 30.0, 40.0])
        >>> other = QuantileSketch(relative_accuracy=0.01)
        >>> other.add(50.0)
        >>> merged = sketch.merge(other)
        >>> merged.count, round(merged.quantile(0.5), 1)
        (5, 30.3)
        >>> QuantileSketch.from_dict(merged.to_dict()) == merged
        True
    """

    __slots__ = ("_accuracy", "_buckets", "_count", "_log_gamma", "_max", "_min", "_zeros")

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy!r}")
        self._accuracy = float(relative_accuracy)
        self._log_gamma = math.log((1.0 + self._accuracy) / (1.0 - self._accuracy))
        self._buckets: dict[int, int] = {}
        self._zeros = 0
        self._count = 0
        self._min = math.inf
        self._max = -math.inf

    @property
    def relative_accuracy(self) -> float:
        """The guaranteed relative error of every quantile."""
        return self._accuracy

    @property
    def count(self) -> int:
        """How many values were added (merged sketches add up)."""
        return self._count

    def add(self, value: float) -> None:
        """Count one value (finite, at least 0)."""
        self.add_many([value])

    def add_many(self, values: npt.ArrayLike) -> None:
        """Count a batch of values (finite, at least 0) in one vectorised pass."""
        array = np.asarray(values, dtype=np.float64).ravel()
        if array.size == 0:
            return
        if not np.all(np.isfinite(array)) or np.any(array < 0):
            raise ValueError("sketch values must be finite and >= 0")
        positive = array[array > 0]
        keys, counts = np.unique(np.ceil(np.log(positive) / self._log_gamma), return_counts=True)
        for key, n in zip(keys.tolist(), counts.tolist(), strict=True):
            self._buckets[int(key)] = self._buckets.get(int(key), 0) + int(n)
        self._zeros += int(array.size - positive.size)
        self._count += int(array.size)
        self._min = min(self._min, float(array.min()))
        self._max = max(self._max, float(array.max()))

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A new sketch of the values of both; the two must share their relative accuracy."""
        if other._accuracy != self._accuracy:
            raise ValueError(
                "cannot merge sketches of relative accuracy "
                f"{self._accuracy!r} and {other._accuracy!r}: they must be equal"
            )
        merged = QuantileSketch(self._accuracy)
        merged._buckets = dict(self._buckets)
        for key, n in other._buckets.items():
            merged._buckets[key] = merged._buckets.get(key, 0) + n
        merged._zeros = self._zeros + other._zeros
        merged._count = self._count + other._count
        merged._min = min(self._min, other._min)
        merged._max = max(self._max, other._max)
        return merged

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0 <= q <= 1) as numpy.percentile(x, 100 q); None when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q!r}")
        if self._count == 0:
            return None
        rank = q * (self._count - 1)
        low = math.floor(rank)
        fraction = rank - low
        keys = sorted(self._buckets)
        cumulative = np.cumsum([self._buckets[k] for k in keys]) + self._zeros
        value_low = self._value_at(low, keys, cumulative)
        value_high = self._value_at(min(low + 1, self._count - 1), keys, cumulative)
        estimate = value_low + fraction * (value_high - value_low)
        # The exact answer lies in [min, max]; clamping can only move towards it.
        return min(max(estimate, self._min), self._max)

    def _value_at(self, rank: int, keys: list[int], cumulative: npt.NDArray[Any]) -> float:
        """The representative value of the order statistic of 0-based ``rank``."""
        if rank < self._zeros:
            return 0.0
        key = keys[int(np.searchsorted(cumulative, rank, side="right"))]
        return 2.0 * math.exp(key * self._log_gamma) / (1.0 + math.exp(self._log_gamma))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state: buckets as sorted [key, count] pairs, min/max None when empty."""
        return {
            "relative_accuracy": self._accuracy,
            "count": self._count,
            "zeros": self._zeros,
            "min": self._min if self._count else None,
            "max": self._max if self._count else None,
            "buckets": [[key, self._buckets[key]] for key in sorted(self._buckets)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantileSketch:
        """Rebuild a sketch from :meth:`to_dict` output."""
        sketch = cls(float(data["relative_accuracy"]))
        sketch._buckets = {int(key): int(n) for key, n in data["buckets"]}
        sketch._zeros = int(data["zeros"])
        sketch._count = int(data["count"])
        if sketch._count != sketch._zeros + sum(sketch._buckets.values()):
            raise ValueError("sketch count does not equal its zero and bucket counts")
        if sketch._count:
            sketch._min = float(data["min"])
            sketch._max = float(data["max"])
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __repr__(self) -> str:
        return (
            f"QuantileSketch(relative_accuracy={self._accuracy}, count={self._count}, "
            f"buckets={len(self._buckets)})"
        )
