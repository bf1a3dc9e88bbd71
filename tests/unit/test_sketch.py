"""QuantileSketch: relative accuracy against numpy.percentile, exact merge, JSON state."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.monitoring.sketch import QuantileSketch

SAMPLES = 10_000


def _distributions() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "lognormal": rng.lognormal(4.0, 0.5, SAMPLES),
        "exponential": rng.exponential(50.0, SAMPLES),
        "uniform": rng.uniform(5.0, 200.0, SAMPLES),
        "gamma": rng.gamma(2.0, 20.0, SAMPLES),
        "pareto_tail": (rng.pareto(2.5, SAMPLES) + 1.0) * 10.0,
        "bimodal": np.concatenate(
            [rng.normal(20.0, 2.0, SAMPLES // 2), rng.normal(300.0, 30.0, SAMPLES // 2)]
        ).clip(0.1),
        "with_zeros": np.where(rng.random(SAMPLES) < 0.03, 0.0, rng.lognormal(3.0, 1.0, SAMPLES)),
    }


@pytest.mark.parametrize("name", sorted(_distributions()))
def test_p95_within_one_percent_of_numpy(name: str) -> None:
    values = _distributions()[name]
    sketch = QuantileSketch()
    sketch.add_many(values)
    exact = np.percentile(values, 95)
    assert sketch.quantile(0.95) == pytest.approx(exact, rel=0.01)


@pytest.mark.parametrize("name", sorted(_distributions()))
def test_p95_within_one_percent_after_merging_partition_sketches(name: str) -> None:
    values = _distributions()[name]
    parts = []
    for chunk in np.array_split(values, [1_000, 1_700, 6_000]):
        part = QuantileSketch()
        part.add_many(chunk)
        parts.append(QuantileSketch.from_dict(json.loads(json.dumps(part.to_dict()))))
    merged = parts[0].merge(parts[1]).merge(parts[2]).merge(parts[3])
    assert merged.count == SAMPLES
    assert merged.quantile(0.95) == pytest.approx(np.percentile(values, 95), rel=0.01)


values_strategy = st.lists(
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(values=values_strategy, q=st.floats(min_value=0.0, max_value=1.0))
def test_every_quantile_is_within_the_relative_accuracy(values: list[float], q: float) -> None:
    sketch = QuantileSketch(relative_accuracy=0.02)
    sketch.add_many(values)
    exact = float(np.percentile(values, 100.0 * q))
    estimate = sketch.quantile(q)
    assert estimate is not None
    assert abs(estimate - exact) <= 0.02 * exact + 1e-9


@settings(max_examples=100, deadline=None)
@given(left=values_strategy, right=values_strategy)
def test_merge_equals_one_sketch_of_all_values(left: list[float], right: list[float]) -> None:
    a, b, whole = QuantileSketch(), QuantileSketch(), QuantileSketch()
    a.add_many(left)
    b.add_many(right)
    whole.add_many(left + right)
    assert a.merge(b) == whole
    assert b.merge(a) == whole


def test_add_one_by_one_equals_add_many() -> None:
    values = [3.0, 0.0, 17.5, 17.5, 1e-3, 250.0]
    one, many = QuantileSketch(), QuantileSketch()
    for value in values:
        one.add(value)
    many.add_many(values)
    assert one == many


def test_merge_leaves_both_inputs_unchanged() -> None:
    a, b = QuantileSketch(), QuantileSketch()
    a.add_many([1.0, 2.0])
    b.add_many([3.0])
    before = (a.to_dict(), b.to_dict())
    a.merge(b)
    assert (a.to_dict(), b.to_dict()) == before


def test_empty_sketch_has_no_quantile_and_json_safe_state() -> None:
    sketch = QuantileSketch()
    assert sketch.quantile(0.95) is None
    state = sketch.to_dict()
    assert state["min"] is None and state["max"] is None
    json.dumps(state, allow_nan=False)
    assert QuantileSketch.from_dict(state) == sketch


def test_zeros_are_exact() -> None:
    sketch = QuantileSketch()
    sketch.add_many([0.0, 0.0, 0.0, 0.0, 10.0])
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(0.75) == 0.0
    assert sketch.quantile(1.0) == 10.0


def test_single_value_is_returned_exactly() -> None:
    sketch = QuantileSketch()
    sketch.add(42.0)
    assert sketch.quantile(0.95) == 42.0


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_invalid_values_are_refused_and_leave_the_sketch_unchanged(bad: float) -> None:
    sketch = QuantileSketch()
    sketch.add(5.0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        sketch.add_many([1.0, bad])
    assert sketch.count == 1


@pytest.mark.parametrize("accuracy", [0.0, 1.0, -0.1, 1.5])
def test_relative_accuracy_out_of_range(accuracy: float) -> None:
    with pytest.raises(ValueError, match=r"relative_accuracy must be in \(0, 1\)"):
        QuantileSketch(accuracy)


def test_merge_refuses_different_accuracies() -> None:
    with pytest.raises(ValueError, match="must be equal"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))


@pytest.mark.parametrize("q", [-0.01, 1.01])
def test_quantile_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match=r"q must be in \[0, 1\]"):
        QuantileSketch().quantile(q)


def test_from_dict_refuses_inconsistent_counts() -> None:
    sketch = QuantileSketch()
    sketch.add_many([1.0, 2.0])
    state = sketch.to_dict()
    state["count"] = 3
    with pytest.raises(ValueError, match="count"):
        QuantileSketch.from_dict(state)
