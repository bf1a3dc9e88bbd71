"""WindowStats: mergeable per-window statistics on the reference profile's bins."""

from __future__ import annotations

import json
import math
from functools import reduce

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import CATEGORIES as EVENT_CATEGORIES
from stream_app.errors import FeatureMismatchError
from stream_app.monitoring.stats import OTHER_CATEGORY, ReferenceProfile, WindowStats

CATEGORIES = list(EVENT_CATEGORIES)


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(11)
    n = 1_000
    return ReferenceProfile.from_data(
        {
            "age": rng.integers(18, 80, n),
            "purchase_total": rng.lognormal(4.0, 0.8, n),
            "category_preference": rng.choice(CATEGORIES, n).tolist(),
        },
        categorical=["category_preference"],
    )


def test_empty_window(profile: ReferenceProfile) -> None:
    w = WindowStats.empty(profile)
    assert w.features == ("age", "purchase_total", "category_preference")
    assert w.count("age") == 0
    assert math.isnan(w.mean("age"))
    assert math.isnan(w.std("age"))
    assert math.isnan(w.min("age"))
    assert math.isnan(w.max("age"))
    assert w.bin_counts("age") == (0,) * len(profile.numeric["age"].bin_counts)
    assert w.category_counts("category_preference") == {
        **dict.fromkeys(sorted(CATEGORIES), 0),
        OTHER_CATEGORY: 0,
    }


def test_update_computes_exact_statistics(profile: ReferenceProfile) -> None:
    batch = {
        "age": [20, 30, 40, 50],
        "purchase_total": [1.0, 2.0, 3.0, 10.0],
        "category_preference": ["home", "home", "sports", "toys"],
    }
    w = WindowStats.empty(profile).update(batch)
    assert (w.count("age"), w.mean("age"), w.variance("age"), w.std("age")) == (
        4,
        35.0,
        125.0,
        math.sqrt(125.0),
    )
    assert (w.min("purchase_total"), w.max("purchase_total")) == (1.0, 10.0)
    assert w.category_counts("category_preference")["home"] == 2
    assert w.category_counts("category_preference")[OTHER_CATEGORY] == 1
    assert w.count("category_preference") == 4


def test_update_returns_new_state(profile: ReferenceProfile) -> None:
    empty = WindowStats.empty(profile)
    empty.update({"age": [30], "purchase_total": [5.0], "category_preference": ["home"]})
    assert empty.count("age") == 0


def test_values_outside_the_reference_range_land_in_the_outer_bins(
    profile: ReferenceProfile,
) -> None:
    w = WindowStats.empty(profile).update(
        {"age": [-1e9, 1e9, 1e9], "purchase_total": [], "category_preference": []}
    )
    counts = w.bin_counts("age")
    assert (counts[0], counts[-1], sum(counts)) == (1, 2, 3)


def test_missing_values_are_counted_not_used(profile: ReferenceProfile) -> None:
    w = WindowStats.empty(profile).update(
        {
            "age": [30.0, float("nan"), None, 50.0],
            "purchase_total": [float("inf")],
            "category_preference": ["home", None, float("nan")],
        }
    )
    assert (w.count("age"), w.missing("age"), w.mean("age")) == (2, 2, 40.0)
    assert sum(w.bin_counts("age")) == 2
    assert (w.count("purchase_total"), w.missing("purchase_total")) == (0, 1)
    assert (w.count("category_preference"), w.missing("category_preference")) == (1, 2)


def test_missing_column_is_an_error_and_extra_columns_are_ignored(
    profile: ReferenceProfile,
) -> None:
    w = WindowStats.empty(profile)
    with pytest.raises(FeatureMismatchError, match=r"\['category_preference'\]"):
        w.update({"age": [1], "purchase_total": [1.0]})
    updated = w.update(
        {"age": [1], "purchase_total": [1.0], "category_preference": ["home"], "user_id": ["x"]}
    )
    assert updated.features == w.features


def test_merge_refuses_windows_of_different_profiles(profile: ReferenceProfile) -> None:
    other = ReferenceProfile.from_data(
        {"age": [1, 2, 3, 4], "purchase_total": [1.0, 2.0], "category_preference": ["home"]},
        categorical=["category_preference"],
    )
    with pytest.raises(ValueError, match="different bin edges"):
        WindowStats.empty(profile).merge(WindowStats.empty(other))
    age_only = ReferenceProfile.from_data({"age": [1, 2, 3]})
    with pytest.raises(ValueError, match="different features"):
        WindowStats.empty(profile).merge(WindowStats.empty(age_only))


def test_json_round_trip_of_empty_and_filled_windows(profile: ReferenceProfile) -> None:
    empty = WindowStats.empty(profile)
    filled = empty.update(
        {"age": [33, 41], "purchase_total": [12.5, 80.0], "category_preference": ["toys"]}
    )
    for window in (empty, filled):
        text = json.dumps(window.to_dict(), allow_nan=False)
        assert WindowStats.from_dict(json.loads(text)) == window
    assert empty.to_dict()["numeric"]["age"]["min"] == "inf"


def _leaf_count(value: object) -> int:
    if isinstance(value, dict):
        return sum(_leaf_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(_leaf_count(v) for v in value)
    return 1


def test_state_size_does_not_grow_with_the_window(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(3)

    def window_of(n: int) -> WindowStats:
        return WindowStats.empty(profile).update(
            {
                "age": rng.integers(18, 80, n),
                "purchase_total": rng.lognormal(4.0, 0.8, n),
                "category_preference": rng.choice([*CATEGORIES, "toys"], n),
            }
        )

    small, large = window_of(10), window_of(100_000)
    assert large.count("age") == 100_000
    assert _leaf_count(large.to_dict()) == _leaf_count(small.to_dict())


# --- property: update + merge equals computing on the concatenated data -------------

# Magnitudes under 1e-100 become 0: their squares would be subnormal, where a variance
# keeps only a few significant bits (1.98661e-318 against 1.986613e-318) and no relative
# tolerance can hold. A feature of this model is never that small.
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False).map(
    lambda v: 0.0 if abs(v) < 1e-100 else v
)
value = st.one_of(finite, st.integers(-1000, 1000).map(float), st.just(float("nan")))
batches = st.lists(st.lists(value, max_size=20), min_size=1, max_size=8)
category_batches = st.lists(
    st.lists(st.sampled_from([*CATEGORIES, "toys", None]), max_size=20), min_size=1, max_size=8
)


def _close(a: float, b: float, scale: float) -> bool:
    # Relative 1e-9; the absolute floor is 1e-9 of the data's own scale, for
    # statistics that are ~0 by cancellation (the variance of equal values).
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * scale)


@settings(max_examples=200, deadline=None)
@given(batches=batches, categories=category_batches, tree=st.booleans())
def test_update_and_merge_equal_the_concatenated_data(
    profile: ReferenceProfile,
    batches: list[list[float]],
    categories: list[list[str | None]],
    tree: bool,
) -> None:
    empty = WindowStats.empty(profile)
    pairs = [
        {"age": b, "purchase_total": b[::-1], "category_preference": c}
        for b, c in zip(batches, categories + [[]] * len(batches), strict=False)
    ]
    if tree:  # one window per batch, merged: what partitions and sub-windows do
        window = reduce(WindowStats.merge, [empty.update(p) for p in pairs], empty)
    else:  # one window updated batch after batch
        window = reduce(WindowStats.update, pairs, empty)

    allv = np.array([v for b in batches for v in b], dtype=float)
    x = allv[np.isfinite(allv)]
    edges = profile.numeric["age"].edges
    for name in ("age", "purchase_total"):
        assert window.count(name) == x.size
        assert window.missing(name) == allv.size - x.size
    if x.size:
        scale = float(np.abs(x).max())
        assert _close(window.mean("age"), float(np.mean(x)), scale)
        assert _close(window.variance("age"), float(np.var(x)), scale * scale)
        assert _close(window.variance("purchase_total"), float(np.var(x)), scale * scale)
        assert (window.min("age"), window.max("age")) == (x.min(), x.max())
        expected_bins = np.histogram(x, bins=np.array(edges))[0]
        # np.histogram closes the last bin; +inf is never a value here, so it agrees.
        assert window.bin_counts("age") == tuple(int(c) for c in expected_bins)
    else:
        assert math.isnan(window.mean("age"))

    used = [c for cats in categories[: len(batches)] for c in cats]
    counts = window.category_counts("category_preference")
    assert counts["home"] == used.count("home")
    assert counts[OTHER_CATEGORY] == used.count("toys")
    assert window.missing("category_preference") == used.count(None)
    assert WindowStats.from_dict(json.loads(json.dumps(window.to_dict()))) == window
