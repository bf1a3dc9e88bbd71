"""ReferenceProfile: what a model bundle stores about its training data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from stream_app.monitoring.profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    categorical_counts,
    finite_values,
)


@pytest.fixture
def training_columns() -> dict[str, object]:
    rng = np.random.default_rng(7)
    n = 2_000
    return {
        "age": rng.integers(18, 80, n),
        "purchase_total": rng.lognormal(4.0, 0.8, n),
        "session_duration_minutes": rng.normal(12.0, 3.0, n),
        "category_preference": rng.choice(
            ["electronics", "clothing", "home", "sports"], n, p=[0.4, 0.3, 0.2, 0.1]
        ).tolist(),
    }


def test_numeric_moments_match_numpy(training_columns: dict[str, object]) -> None:
    profile = ReferenceProfile.from_data(training_columns, categorical=["category_preference"])
    x = np.asarray(training_columns["purchase_total"], dtype=float)
    p = profile.numeric["purchase_total"]
    assert p.count == x.size
    assert p.mean == pytest.approx(np.mean(x), rel=1e-12)
    assert p.std == pytest.approx(np.std(x), rel=1e-12)  # population std (ddof=0)
    assert (p.min, p.max) == (x.min(), x.max())
    assert p.missing == 0


def test_continuous_feature_gets_equal_quantile_bins(training_columns: dict[str, object]) -> None:
    profile = ReferenceProfile.from_data(training_columns, categorical=["category_preference"])
    p = profile.numeric["session_duration_minutes"]
    assert len(p.bin_counts) == 10
    assert len(p.edges) == 11
    assert (p.edges[0], p.edges[-1]) == (-math.inf, math.inf)
    assert list(p.edges) == sorted(p.edges)
    assert sum(p.bin_counts) == 2_000
    assert all(c == 200 for c in p.bin_counts)


def test_bins_match_independent_count(training_columns: dict[str, object]) -> None:
    profile = ReferenceProfile.from_data(training_columns, categorical=["category_preference"])
    x = np.asarray(training_columns["age"], dtype=float)
    p = profile.numeric["age"]
    expected = [
        int(np.count_nonzero((x >= lo) & (x < hi)))
        for lo, hi in zip(p.edges, p.edges[1:], strict=False)
    ]
    assert list(p.bin_counts) == expected


@pytest.mark.parametrize(
    ("values", "n_bins", "edges", "counts"),
    [
        ([0] * 90 + [1] * 10, 10, (-math.inf, 1.0, math.inf), (90, 10)),
        ([5.0] * 7, 4, (-math.inf, math.inf), (7,)),
        ([1, 2, 3, 4], 1, (-math.inf, math.inf), (4,)),
        ([1, 1, 2, 2, 3, 3, 4, 4], 4, (-math.inf, 2.0, 3.0, 4.0, math.inf), (2, 2, 2, 2)),
    ],
)
def test_discrete_data_deduplicates_edges(
    values: list[float], n_bins: int, edges: tuple[float, ...], counts: tuple[int, ...]
) -> None:
    p = NumericProfile.from_values(values, n_bins)
    assert p.edges == edges
    assert p.bin_counts == counts


def test_non_finite_values_are_counted_as_missing() -> None:
    p = NumericProfile.from_values([1.0, None, float("nan"), 3.0, float("inf")], 2)
    assert (p.count, p.missing, p.mean, p.std) == (2, 3, 2.0, 1.0)


def test_categorical_counts_and_frequencies() -> None:
    p = CategoricalProfile.from_values(["home", "sports", None, "home", "electronics"])
    assert p.counts == {"electronics": 1, "home": 2, "sports": 1}
    assert list(p.counts) == ["electronics", "home", "sports"]
    assert (p.total, p.missing) == (4, 1)
    assert p.frequencies == {"electronics": 0.25, "home": 0.5, "sports": 0.25}


def test_helpers_split_missing_values() -> None:
    x, missing = finite_values(np.array([[1.0, np.nan], [2.0, -np.inf]]))
    assert x.tolist() == [1.0, 2.0]
    assert missing == 2
    counts, missing = categorical_counts(np.array(["a", "b", "a"]))
    assert (dict(counts), missing) == ({"a": 2, "b": 1}, 0)
    counts, missing = categorical_counts(["a", float("nan"), None])
    assert (dict(counts), missing) == ({"a": 1}, 2)


def test_features_keep_column_order(training_columns: dict[str, object]) -> None:
    profile = ReferenceProfile.from_data(training_columns, categorical=["category_preference"])
    assert profile.features == tuple(training_columns)
    assert set(profile.numeric) == {"age", "purchase_total", "session_duration_minutes"}
    assert set(profile.categorical) == {"category_preference"}


def test_to_dict_is_strict_json_and_round_trips_exactly(
    training_columns: dict[str, object],
) -> None:
    profile = ReferenceProfile.from_data(
        training_columns, categorical=["category_preference"], n_bins=7
    )
    text = json.dumps(profile.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["features"]["age"]["edges"][0] == "-inf"
    assert data["features"]["age"]["edges"][-1] == "inf"
    assert data["features"]["category_preference"]["total"] == 2_000
    restored = ReferenceProfile.from_dict(data)
    assert restored == profile
    assert restored.features == profile.features
    assert restored.n_bins == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_bins": 0}, r"n_bins must be an integer in \[1, 1000\]"),
        ({"n_bins": 1001}, r"n_bins must be an integer in \[1, 1000\]"),
        ({"n_bins": 2.5}, r"n_bins must be an integer in \[1, 1000\]"),
        ({"n_bins": True}, r"n_bins must be an integer in \[1, 1000\]"),
        ({"categorical": ["colour"]}, r"not columns: \['colour'\]"),
    ],
)
def test_from_data_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReferenceProfile.from_data({"age": [1, 2, 3]}, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("columns", "categorical", "message"),
    [
        ({"age": [float("nan"), None]}, (), r"column 'age': .*at least one finite value"),
        ({"age": []}, (), r"column 'age': .*at least one finite value"),
        ({"cat": [None]}, ("cat",), r"column 'cat': .*at least one value"),
        ({"cat": ["a", "__other__"]}, ("cat",), r"column 'cat': '__other__' is reserved"),
    ],
)
def test_from_data_rejects_unusable_columns(
    columns: dict[str, list[object]], categorical: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ReferenceProfile.from_data(columns, categorical=categorical)


def test_from_dict_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind must be numeric or categorical"):
        ReferenceProfile.from_dict({"n_bins": 10, "features": {"x": {"kind": "text"}}})
