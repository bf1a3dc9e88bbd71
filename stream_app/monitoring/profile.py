"""The reference profile of the training data that drift is measured against.

Built at training time with :meth:`ReferenceProfile.from_data`, stored in the model
bundle as :meth:`ReferenceProfile.to_dict` (JSON-safe) and read back with
:meth:`ReferenceProfile.from_dict`. :mod:`stream_app.monitoring.stats` re-exports it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_app.jsonfloat import decode_float, encode_float

__all__ = [
    "OTHER_CATEGORY",
    "CategoricalProfile",
    "Column",
    "NumericProfile",
    "ReferenceProfile",
    "categorical_counts",
    "finite_values",
]

Column: TypeAlias = ArrayLike | Sequence[str]
OTHER_CATEGORY = "__other__"
MAX_BINS = 1000


def finite_values(values: Column) -> tuple[NDArray[np.float64], int]:
    """Split a numeric column into its finite values and the number of missing ones.

    ``None``, ``NaN`` and ``+/-inf`` count as missing.

    Example:
        >>> finite_values([1, None, 2.5, float("inf")])
        (array([1. , 2.5]), 2)
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    keep = np.isfinite(x)
    return x[keep], int(x.size - np.count_nonzero(keep))


def categorical_counts(values: Column) -> tuple[Counter[str], int]:
    """Count the categories of a column; ``None`` and float ``NaN`` count as missing.

    Example:
        >>> categorical_counts(["home", None, "home", "sports"])
        (Counter({'home': 2, 'sports': 1}), 1)
    """
    raw: Counter[Any] = Counter(np.asarray(values, dtype=object).ravel().tolist())
    counts: Counter[str] = Counter()
    missing = 0
    for value, n in raw.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            missing += n
        else:
            counts[str(value)] += n
    return counts, missing


@dataclass(frozen=True)
class NumericProfile:
    """Reference statistics of one numeric feature.

    ``edges`` has ``len(bin_counts) + 1`` entries, the first ``-inf`` and the last
    ``+inf``, so every production value lands in a bin; bin ``i`` is
    ``[edges[i], edges[i+1])``. ``std`` is the population standard deviation.
    """

    count: int
    mean: float
    std: float
    min: float
    max: float
    edges: tuple[float, ...]
    bin_counts: tuple[int, ...]
    missing: int = 0

    @property
    def cuts(self) -> tuple[float, ...]:
        """The interior edges (the finite ones)."""
        return self.edges[1:-1]

    @classmethod
    def from_values(cls, values: Column, n_bins: int) -> NumericProfile:
        """Profile one column on ``n_bins`` quantile bins (fewer if values repeat)."""
        x, missing = finite_values(values)
        if x.size == 0:
            raise ValueError("a numeric reference column needs at least one finite value")
        # "higher" puts every cut on an observed value, so discrete features get cuts
        # such as "age >= 30" rather than interpolated ones between two values.
        quantiles = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1)[1:-1], method="higher")
        # Repeated values give repeated quantiles; a cut at the minimum would only open
        # an empty bottom bin.
        cuts = np.unique(quantiles)
        cuts = cuts[cuts > x.min()]
        counts = np.bincount(np.searchsorted(cuts, x, side="right"), minlength=cuts.size + 1)
        return cls(
            count=int(x.size),
            mean=float(x.mean()),
            std=float(x.std()),
            min=float(x.min()),
            max=float(x.max()),
            edges=(-math.inf, *(float(c) for c in cuts), math.inf),
            bin_counts=tuple(int(c) for c in counts),
            missing=missing,
        )


@dataclass(frozen=True)
class CategoricalProfile:
    """Reference counts per category of one categorical feature (sorted by category)."""

    counts: Mapping[str, int]
    missing: int = 0

    @property
    def total(self) -> int:
        """Number of non-missing reference values."""
        return sum(self.counts.values())

    @property
    def frequencies(self) -> dict[str, float]:
        """Share of each category among the non-missing values."""
        total = self.total
        return {k: n / total for k, n in self.counts.items()}

    @classmethod
    def from_values(cls, values: Column) -> CategoricalProfile:
        """Profile one categorical column."""
        counts, missing = categorical_counts(values)
        if not counts:
            raise ValueError("a categorical reference column needs at least one value")
        if OTHER_CATEGORY in counts:
            raise ValueError(f"{OTHER_CATEGORY!r} is reserved for unseen categories")
        return cls({k: counts[k] for k in sorted(counts)}, missing)


@dataclass(frozen=True)
class ReferenceProfile:
    """Per-feature reference statistics of the training data, in column order.

    ``OTHER_CATEGORY`` is reserved: a reference category of that name is refused.
    """

    columns: Mapping[str, NumericProfile | CategoricalProfile]
    n_bins: int = 10

    @classmethod
    def from_data(
        cls,
        columns: Mapping[str, Column],
        *,
        categorical: Collection[str] = (),
        n_bins: int = 10,
    ) -> ReferenceProfile:
        """Profile every column; names in ``categorical`` are categorical, the rest numeric.

        Raises:
            ValueError: ``n_bins`` outside 1..1000, a categorical name that is not a
                column, or a column without any usable value.

        Example:
            >>> profile = ReferenceProfile.from_data(
            ...     {"age": [10, 20, 30, 40, 50, 60, 70], "category": ["home", "home", "sports"]},
            ...     categorical=["category"],
            ...     n_bins=3,
            ... )
            >>> profile.features
            ('age', 'category')
            >>> age = profile.numeric["age"]
            >>> age.mean, age.edges, age.bin_counts
            (40.0, (-inf, 30.0, 50.0, inf), (2, 2, 3))
            >>> profile.categorical["category"].frequencies
            {'home': 0.6666666666666666, 'sports': 0.3333333333333333}
            >>> ReferenceProfile.from_dict(profile.to_dict()) == profile
            True
        """
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or not 1 <= n_bins <= MAX_BINS:
            raise ValueError(f"n_bins must be an integer in [1, {MAX_BINS}], got {n_bins!r}")
        unknown = set(categorical) - set(columns)
        if unknown:
            raise ValueError(f"categorical names that are not columns: {sorted(unknown)}")
        profiles: dict[str, NumericProfile | CategoricalProfile] = {}
        for name, values in columns.items():
            try:
                profiles[name] = (
                    CategoricalProfile.from_values(values)
                    if name in categorical
                    else NumericProfile.from_values(values, n_bins)
                )
            except ValueError as exc:
                raise ValueError(f"column {name!r}: {exc}") from exc
        return cls(profiles, n_bins)

    @property
    def features(self) -> tuple[str, ...]:
        """Feature names in column order."""
        return tuple(self.columns)

    @property
    def numeric(self) -> dict[str, NumericProfile]:
        """The numeric features' profiles."""
        return {k: p for k, p in self.columns.items() if isinstance(p, NumericProfile)}

    @property
    def categorical(self) -> dict[str, CategoricalProfile]:
        """The categorical features' profiles."""
        return {k: p for k, p in self.columns.items() if isinstance(p, CategoricalProfile)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; the outer edges are written as ``"-inf"`` and ``"inf"``."""
        features: dict[str, dict[str, Any]] = {}
        for name, p in self.columns.items():
            if isinstance(p, NumericProfile):
                features[name] = {
                    "kind": "numeric",
                    "count": p.count,
                    "mean": p.mean,
                    "std": p.std,
                    "min": p.min,
                    "max": p.max,
                    "edges": [encode_float(e) for e in p.edges],
                    "bin_counts": list(p.bin_counts),
                    "missing": p.missing,
                }
            else:
                features[name] = {
                    "kind": "categorical",
                    "counts": dict(p.counts),
                    "total": p.total,
                    "missing": p.missing,
                }
        return {"n_bins": self.n_bins, "features": features}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Rebuild a profile from :meth:`to_dict` output (an exact round trip)."""
        profiles: dict[str, NumericProfile | CategoricalProfile] = {}
        for name, d in data["features"].items():
            if d["kind"] == "numeric":
                profiles[name] = NumericProfile(
                    count=int(d["count"]),
                    mean=float(d["mean"]),
                    std=float(d["std"]),
                    min=float(d["min"]),
                    max=float(d["max"]),
                    edges=tuple(decode_float(e) for e in d["edges"]),
                    bin_counts=tuple(int(c) for c in d["bin_counts"]),
                    missing=int(d["missing"]),
                )
            elif d["kind"] == "categorical":
                counts = {str(k): int(v) for k, v in d["counts"].items()}
                profiles[name] = CategoricalProfile(counts, int(d["missing"]))
            else:
                raise ValueError(f"feature {name!r}: kind must be numeric or categorical")
        return cls(profiles, int(data["n_bins"]))
