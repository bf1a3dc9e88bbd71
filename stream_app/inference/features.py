"""Requests -> the model's feature matrix, and the raw columns the drift monitor watches.

One definition serves training, scoring and drift: the demo trainer builds its matrix
with :func:`build_features` too, and :func:`drift_columns_from_matrix` derives the drift
columns from any matrix, so the reference profile and the live window statistics can
never disagree about what a feature means.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from schemas.events import CATEGORIES, PredictionRequest

__all__ = [
    "CATEGORICAL_DRIFT_COLUMN",
    "FEATURE_NAMES",
    "NUMERIC_FEATURES",
    "build_features",
    "drift_columns",
    "drift_columns_from_matrix",
]

NUMERIC_FEATURES: tuple[str, ...] = (
    "age",
    "purchase_count",
    "purchase_total",
    "purchase_mean",
    "purchase_max",
    "session_duration_minutes",
)
FEATURE_NAMES: tuple[str, ...] = NUMERIC_FEATURES + tuple(f"category_{c}" for c in CATEGORIES)
CATEGORICAL_DRIFT_COLUMN = "category_preference"

_N_NUMERIC = len(NUMERIC_FEATURES)
_CATEGORY_INDEX = {name: i for i, name in enumerate(CATEGORIES)}
# scikit-learn forests cast their input to float32: a value beyond this is infinity there.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def build_features(requests: Sequence[PredictionRequest]) -> np.ndarray:
    """Map a batch of requests to a float64 matrix of shape (n, 10), columns FEATURE_NAMES.

    The purchase aggregates are computed over one flat array with ``reduceat``, so a
    batch costs one pass over its purchases instead of a numpy call per request.

    Every value must be finite in float32, the type a forest casts its input to; the
    schema's upper bounds guarantee it for validated requests, and a request that
    bypassed them raises ValueError naming its request_id (rather than letting
    predict_proba fail the whole batch with no hint of which request caused it).

    Example:
        >>> r = PredictionRequest(request_id="r1", client_id="c1", user_id="USR1", age=30,
        ...     purchase_history=[10.0, 30.0], category_preference="home",
        ...     session_duration_minutes=5.0)
        >>> build_features([r]).tolist()
        [[30.0, 2.0, 40.0, 20.0, 30.0, 5.0, 0.0, 0.0, 1.0, 0.0]]
    """
    n = len(requests)
    out = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float64)
    if n == 0:
        return out
    counts = np.fromiter((len(r.purchase_history) for r in requests), dtype=np.intp, count=n)
    if counts.min() == 0:
        # reduceat would silently read the next request's first purchase for an empty slice.
        raise ValueError("every request needs at least one purchase (schema: min_length=1)")
    total_items = int(counts.sum())
    flat = np.fromiter(
        itertools.chain.from_iterable(r.purchase_history for r in requests),
        dtype=np.float64,
        count=total_items,
    )
    starts = np.zeros(n, dtype=np.intp)
    np.cumsum(counts[:-1], out=starts[1:])
    with np.errstate(over="ignore"):  # an overflowing total is reported below
        totals = np.add.reduceat(flat, starts)
    out[:, 0] = np.fromiter((r.age for r in requests), dtype=np.float64, count=n)
    out[:, 1] = counts
    out[:, 2] = totals
    out[:, 3] = totals / counts
    out[:, 4] = np.maximum.reduceat(flat, starts)
    out[:, 5] = np.fromiter(
        (r.session_duration_minutes for r in requests), dtype=np.float64, count=n
    )
    codes = np.fromiter(
        (_CATEGORY_INDEX[r.category_preference] for r in requests), dtype=np.intp, count=n
    )
    out[np.arange(n), _N_NUMERIC + codes] = 1.0
    _refuse_non_finite(out, requests)
    return out


def _refuse_non_finite(matrix: np.ndarray, requests: Sequence[PredictionRequest]) -> None:
    """ValueError naming the first request whose features are not finite in float32."""
    finite = np.abs(matrix) <= _FLOAT32_MAX  # NaN compares False as well
    if finite.all():
        return
    rows, columns = np.nonzero(~finite)
    bad_rows = np.unique(rows)
    more = f" (and {len(bad_rows) - 1} more requests)" if len(bad_rows) > 1 else ""
    raise ValueError(
        f"features of request {requests[int(rows[0])].request_id} are not finite in "
        f"float32 (feature {FEATURE_NAMES[int(columns[0])]}){more}; "
        "the schema bounds on amounts and session length should have refused it"
    )


def drift_columns_from_matrix(matrix: np.ndarray) -> dict[str, np.ndarray | list[str]]:
    """Split a feature matrix into the drift monitor's raw columns.

    The six numeric features become float arrays; the one-hot block folds back into the
    ``category_preference`` strings.

    Example:
        >>> m = np.array([[30.0, 2.0, 40.0, 20.0, 30.0, 5.0, 0.0, 0.0, 1.0, 0.0]])
        >>> cols = drift_columns_from_matrix(m)
        >>> cols["purchase_mean"].tolist(), cols["category_preference"]
        ([20.0], ['home'])
    """
    if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_NAMES):
        raise ValueError(f"expected a matrix with {len(FEATURE_NAMES)} columns, got {matrix.shape}")
    columns: dict[str, np.ndarray | list[str]] = {
        name: np.ascontiguousarray(matrix[:, i], dtype=np.float64)
        for i, name in enumerate(NUMERIC_FEATURES)
    }
    codes = np.argmax(matrix[:, _N_NUMERIC:], axis=1)
    columns[CATEGORICAL_DRIFT_COLUMN] = [CATEGORIES[int(c)] for c in codes]
    return columns


def drift_columns(requests: Sequence[PredictionRequest]) -> dict[str, np.ndarray | list[str]]:
    """The drift monitor's raw columns for a batch of requests.

    Example:
        >>> r = PredictionRequest(request_id="r1", client_id="c1", user_id="USR1", age=30,
        ...     purchase_history=[10.0, 30.0], category_preference="home",
        ...     session_duration_minutes=5.0)
        >>> sorted(drift_columns([r]))[:3]
        ['age', 'category_preference', 'purchase_count']
    """
    return drift_columns_from_matrix(build_features(requests))
