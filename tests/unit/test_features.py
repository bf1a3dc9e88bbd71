"""Feature matrix and drift columns: exact values, batch == row by row, one definition."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import CATEGORIES, PredictionRequest
from stream_app.inference.features import (
    CATEGORICAL_DRIFT_COLUMN,
    FEATURE_NAMES,
    NUMERIC_FEATURES,
    build_features,
    drift_columns,
    drift_columns_from_matrix,
)


def request(**overrides: Any) -> PredictionRequest:
    fields: dict[str, Any] = {
        "request_id": "r1",
        "client_id": "c1",
        "user_id": "USR1",
        "age": 30,
        "purchase_history": [10.0],
        "category_preference": "home",
        "session_duration_minutes": 5.0,
    }
    fields.update(overrides)
    return PredictionRequest(**fields)


def test_feature_names_are_the_contract() -> None:
    assert FEATURE_NAMES == (
        "age",
        "purchase_count",
        "purchase_total",
        "purchase_mean",
        "purchase_max",
        "session_duration_minutes",
        "category_electronics",
        "category_clothing",
        "category_home",
        "category_sports",
    )


@pytest.mark.parametrize(
    ("overrides", "row"),
    [
        ({}, [30, 1, 10, 10, 10, 5, 0, 0, 1, 0]),
        (
            {"purchase_history": [5.0, 20.0, 2.0], "category_preference": "electronics"},
            [30, 3, 27, 9, 20, 5, 1, 0, 0, 0],
        ),
        (
            {"age": 120, "category_preference": "clothing", "session_duration_minutes": 0.5},
            [120, 1, 10, 10, 10, 0.5, 0, 1, 0, 0],
        ),
        (
            {"age": 13, "purchase_history": [0.25, 0.25], "category_preference": "sports"},
            [13, 2, 0.5, 0.25, 0.25, 5, 0, 0, 0, 1],
        ),
    ],
)
def test_rows_have_exact_values(overrides: dict[str, Any], row: list[float]) -> None:
    out = build_features([request(**overrides)])
    assert out.dtype == np.float64
    assert out.tolist() == [[float(v) for v in row]]


def test_empty_batch_gives_an_empty_matrix() -> None:
    assert build_features([]).shape == (0, len(FEATURE_NAMES))
    columns = drift_columns([])
    assert columns[CATEGORICAL_DRIFT_COLUMN] == []
    assert all(len(columns[name]) == 0 for name in NUMERIC_FEATURES)


def test_empty_purchase_history_is_refused_not_misread() -> None:
    # model_construct skips validation, as a bypass would.
    bad = PredictionRequest.model_construct(**{**request().model_dump(), "purchase_history": []})
    with pytest.raises(ValueError, match="at least one purchase"):
        build_features([request(), bad, request()])


@pytest.mark.parametrize(
    "overrides",
    [
        {"purchase_history": [1e39]},
        {"purchase_history": [1e308, 1e308]},
        {"session_duration_minutes": 1e300},
    ],
)
def test_features_that_are_not_finite_in_float32_are_refused_naming_the_request(
    overrides: dict[str, Any],
) -> None:
    # model_construct skips validation: the schema bounds are the first line of defence,
    # this is the second. A forest casts to float32, so 1e39 would fail a whole batch.
    bad = PredictionRequest.model_construct(
        **{**request().model_dump(), "request_id": "r-poison", **overrides}
    )
    with pytest.raises(ValueError, match="request r-poison") as caught:
        build_features([request(), bad, request()])
    assert "r1" not in str(caught.value)


amounts = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
requests_strategy = st.builds(
    request,
    age=st.integers(13, 120),
    purchase_history=st.lists(amounts, min_size=1, max_size=20),
    category_preference=st.sampled_from(CATEGORIES),
    session_duration_minutes=st.floats(min_value=0.01, max_value=1e4),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(requests_strategy, min_size=1, max_size=30))
def test_batch_equals_naive_row_by_row(batch: list[PredictionRequest]) -> None:
    expected = []
    for r in batch:
        h = r.purchase_history
        one_hot = [1.0 if r.category_preference == c else 0.0 for c in CATEGORIES]
        expected.append(
            [r.age, len(h), sum(h), sum(h) / len(h), max(h), r.session_duration_minutes, *one_hot]
        )
    np.testing.assert_allclose(build_features(batch), np.array(expected), rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.lists(requests_strategy, min_size=0, max_size=20))
def test_drift_columns_match_the_requests(batch: list[PredictionRequest]) -> None:
    columns = drift_columns(batch)
    assert list(columns) == [*NUMERIC_FEATURES, CATEGORICAL_DRIFT_COLUMN]
    assert columns[CATEGORICAL_DRIFT_COLUMN] == [r.category_preference for r in batch]
    assert list(columns["age"]) == [float(r.age) for r in batch]
    assert list(columns["purchase_count"]) == [float(len(r.purchase_history)) for r in batch]
    assert list(columns["session_duration_minutes"]) == [r.session_duration_minutes for r in batch]


def test_drift_columns_from_matrix_and_from_requests_agree() -> None:
    batch = [request(category_preference=c, age=20 + i) for i, c in enumerate(CATEGORIES)]
    from_requests = drift_columns(batch)
    from_matrix = drift_columns_from_matrix(build_features(batch))
    assert from_requests[CATEGORICAL_DRIFT_COLUMN] == list(CATEGORIES)
    for name in NUMERIC_FEATURES:
        np.testing.assert_array_equal(from_requests[name], from_matrix[name])


@pytest.mark.parametrize("shape", [(3,), (2, 9), (2, 11)])
def test_drift_columns_from_matrix_checks_the_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="10 columns"):
        drift_columns_from_matrix(np.zeros(shape))
