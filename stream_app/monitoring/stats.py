"""Reference profiles and mergeable per-window feature statistics.

A :class:`ReferenceProfile` is built once from training data and stored in the model
bundle. A :class:`WindowStats` is what a table keeps per window: it is updated once per
micro-batch and two of them merge, with the same result as computing on the
concatenated data. It holds counts and moments only, never raw values, so its size
depends on the number of features and bins, not on the number of events.

Missing values: in a numeric column ``NaN``, ``None`` and ``+/-inf`` are not part of
the moments or the bins; they are counted in ``missing``. In a categorical column
``None`` and float ``NaN`` are counted in ``missing``; a category the reference never
saw is counted under :data:`OTHER_CATEGORY`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from stream_app.errors import FeatureMismatchError
from stream_app.jsonfloat import decode_float, encode_float
from stream_app.monitoring.profile import (
    OTHER_CATEGORY,
    CategoricalProfile,
    Column,
    NumericProfile,
    ReferenceProfile,
    categorical_counts,
    finite_values,
)

__all__ = [
    "OTHER_CATEGORY",
    "CategoricalProfile",
    "CategoricalWindow",
    "Column",
    "NumericProfile",
    "NumericWindow",
    "ReferenceProfile",
    "WindowStats",
]


@dataclass(frozen=True)
class NumericWindow:
    """Count, mean, M2, min, max and bin counts of one numeric feature in a window.

    ``cuts`` are the reference profile's interior bin edges; bin ``i`` holds values in
    ``[cuts[i-1], cuts[i])`` with the outer bins open to -inf and +inf.
    """

    cuts: tuple[float, ...]
    bin_counts: tuple[int, ...]
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    missing: int = 0

    @property
    def variance(self) -> float:
        """Population variance; NaN for an empty window."""
        return self.m2 / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation; NaN for an empty window."""
        return math.sqrt(self.variance)

    def add(self, values: Column) -> NumericWindow:
        """Return the state after also seeing ``values`` (one vectorised pass)."""
        x, missing = finite_values(values)
        if x.size == 0:
            return replace(self, missing=self.missing + missing)
        # The batch's own moments (two-pass, so M2 carries no cancellation error),
        # then the same parallel merge as two windows.
        mean = float(x.mean())
        bins = np.searchsorted(np.asarray(self.cuts), x, side="right")
        batch = NumericWindow(
            self.cuts,
            tuple(int(c) for c in np.bincount(bins, minlength=len(self.cuts) + 1)),
            int(x.size),
            mean,
            float(np.square(x - mean).sum()),
            float(x.min()),
            float(x.max()),
            missing,
        )
        return self.merge(batch)

    def merge(self, other: NumericWindow) -> NumericWindow:
        """Combine two windows over the same bins (Chan et al. parallel update)."""
        if other.cuts != self.cuts:
            raise ValueError("cannot merge numeric windows built on different bin edges")
        n = self.count + other.count
        if n == 0:
            return replace(self, missing=self.missing + other.missing)
        delta = other.mean - self.mean
        return NumericWindow(
            self.cuts,
            tuple(a + b for a, b in zip(self.bin_counts, other.bin_counts, strict=True)),
            n,
            self.mean + delta * (other.count / n),
            self.m2 + other.m2 + delta * delta * (self.count * other.count / n),
            min(self.min, other.min),
            max(self.max, other.max),
            self.missing + other.missing,
        )


@dataclass(frozen=True)
class CategoricalWindow:
    """Counts per category of one categorical feature in a window.

    ``counts`` has every reference category (zeros included) plus :data:`OTHER_CATEGORY`.
    """

    counts: Mapping[str, int]
    missing: int = 0

    @property
    def count(self) -> int:
        """Number of non-missing values seen."""
        return sum(self.counts.values())

    def add(self, values: Column) -> CategoricalWindow:
        """Return the state after also seeing ``values``."""
        seen, missing = categorical_counts(values)
        counts = dict(self.counts)
        for category, n in seen.items():
            key = category if category in counts else OTHER_CATEGORY
            counts[key] += n
        return CategoricalWindow(counts, self.missing + missing)

    def merge(self, other: CategoricalWindow) -> CategoricalWindow:
        """Combine two windows over the same categories."""
        if other.counts.keys() != self.counts.keys():
            raise ValueError("cannot merge categorical windows with different categories")
        total = Counter(self.counts)
        total.update(other.counts)
        return CategoricalWindow({k: total[k] for k in self.counts}, self.missing + other.missing)


@dataclass(frozen=True)
class WindowStats:
    """Mergeable statistics of every profiled feature over one window.

    Build it with :meth:`empty`, feed it with :meth:`update`, combine partial windows
    (partitions, sub-windows) with :meth:`merge`; store it with :meth:`to_dict`.
    """

    numeric: Mapping[str, NumericWindow]
    categorical: Mapping[str, CategoricalWindow]

    @classmethod
    def empty(cls, profile: ReferenceProfile) -> WindowStats:
        """An empty window binned like ``profile``."""
        numeric = {
            name: NumericWindow(p.cuts, (0,) * (len(p.cuts) + 1))
            for name, p in profile.numeric.items()
        }
        categorical = {
            name: CategoricalWindow({**dict.fromkeys(p.counts, 0), OTHER_CATEGORY: 0})
            for name, p in profile.categorical.items()
        }
        return cls(numeric, categorical)

    @property
    def features(self) -> tuple[str, ...]:
        """Feature names, numeric ones first."""
        return (*self.numeric, *self.categorical)

    def update(self, batch: Mapping[str, Column]) -> WindowStats:
        """Return the state after also seeing ``batch`` (one column per feature).

        Columns that are not profiled are ignored; a profiled column that is absent
        raises :class:`~stream_app.errors.FeatureMismatchError`.

        Example:
            >>> profile = ReferenceProfile.from_data(
            ...     {"age": [20, 30, 40, 50], "category": ["home", "sports", "home", "home"]},
            ...     categorical=["category"],
            ...     n_bins=2,
            ... )
            >>> w = WindowStats.empty(profile).update(
            ...     {"age": [25, 35, float("nan")], "category": ["home", "toys", None]}
            ... )
            >>> w.count("age"), w.mean("age"), w.std("age"), w.missing("age"), w.bin_counts("age")
            (2, 30.0, 5.0, 1, (2, 0))
            >>> w.category_counts("category"), w.missing("category")
            ({'home': 1, 'sports': 0, '__other__': 1}, 1)
        """
        absent = [name for name in self.features if name not in batch]
        if absent:
            raise FeatureMismatchError(f"batch lacks profiled features: {sorted(absent)}")
        numeric = {name: w.add(batch[name]) for name, w in self.numeric.items()}
        categorical = {name: w.add(batch[name]) for name, w in self.categorical.items()}
        return WindowStats(numeric, categorical)

    def merge(self, other: WindowStats) -> WindowStats:
        """Combine two windows of the same profile, as if one had seen both batches.

        Example:
            >>> profile = ReferenceProfile.from_data({"x": [1.0, 2.0, 3.0, 4.0]}, n_bins=2)
            >>> a = WindowStats.empty(profile).update({"x": [1.0, 2.0]})
            >>> b = WindowStats.empty(profile).update({"x": [6.0]})
            >>> both = WindowStats.empty(profile).update({"x": [1.0, 2.0, 6.0]})
            >>> a.merge(b) == both, a.merge(b).mean("x"), a.merge(b).bin_counts("x")
            (True, 3.0, (2, 1))
        """
        if other.features != self.features:
            raise ValueError("cannot merge windows over different features")
        numeric = {name: w.merge(other.numeric[name]) for name, w in self.numeric.items()}
        categorical = {
            name: w.merge(other.categorical[name]) for name, w in self.categorical.items()
        }
        return WindowStats(numeric, categorical)

    def count(self, name: str) -> int:
        """Non-missing values seen for feature ``name``."""
        if name in self.categorical:
            return self.categorical[name].count
        return self.numeric[name].count

    def missing(self, name: str) -> int:
        """Missing values seen for feature ``name``."""
        if name in self.categorical:
            return self.categorical[name].missing
        return self.numeric[name].missing

    def mean(self, name: str) -> float:
        """Mean of numeric feature ``name``; NaN when empty."""
        w = self.numeric[name]
        return w.mean if w.count else math.nan

    def variance(self, name: str) -> float:
        """Population variance of numeric feature ``name``; NaN when empty."""
        return self.numeric[name].variance

    def std(self, name: str) -> float:
        """Population standard deviation of numeric feature ``name``; NaN when empty."""
        return self.numeric[name].std

    def min(self, name: str) -> float:
        """Smallest value of numeric feature ``name``; NaN when empty."""
        w = self.numeric[name]
        return w.min if w.count else math.nan

    def max(self, name: str) -> float:
        """Largest value of numeric feature ``name``; NaN when empty."""
        w = self.numeric[name]
        return w.max if w.count else math.nan

    def bin_counts(self, name: str) -> tuple[int, ...]:
        """Counts of numeric feature ``name`` on the reference bins."""
        return self.numeric[name].bin_counts

    def category_counts(self, name: str) -> dict[str, int]:
        """Counts of categorical feature ``name``, unknown categories under ``__other__``."""
        return dict(self.categorical[name].counts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; non-finite floats as in ``stream_app.jsonfloat``."""
        return {
            "numeric": {
                name: {
                    "cuts": list(w.cuts),
                    "bin_counts": list(w.bin_counts),
                    "count": w.count,
                    "mean": w.mean,
                    "m2": w.m2,
                    "min": encode_float(w.min),
                    "max": encode_float(w.max),
                    "missing": w.missing,
                }
                for name, w in self.numeric.items()
            },
            "categorical": {
                name: {"counts": dict(w.counts), "missing": w.missing}
                for name, w in self.categorical.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowStats:
        """Rebuild a window from :meth:`to_dict` output."""
        numeric = {
            name: NumericWindow(
                cuts=tuple(float(c) for c in d["cuts"]),
                bin_counts=tuple(int(c) for c in d["bin_counts"]),
                count=int(d["count"]),
                mean=float(d["mean"]),
                m2=float(d["m2"]),
                min=decode_float(d["min"]),
                max=decode_float(d["max"]),
                missing=int(d["missing"]),
            )
            for name, d in data["numeric"].items()
        }
        categorical = {
            name: CategoricalWindow(
                {str(k): int(v) for k, v in d["counts"].items()}, int(d["missing"])
            )
            for name, d in data["categorical"].items()
        }
        return cls(numeric, categorical)
