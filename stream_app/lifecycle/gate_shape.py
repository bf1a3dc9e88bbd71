"""Calling a candidate model the gate cannot trust: method lookup and the shape probes.

Whatever the model does (a missing method, a ``__getattr__`` that raises, an answer of
the wrong length) comes back as a failed ``GateCheck`` with the reason, never as an
exception out of the gate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_app.lifecycle.gate_report import GateCheck

__all__ = ["find_method", "methods_check", "probe_sizes", "raised", "shape_check"]


def find_method(model: Any, name: str) -> tuple[Callable[..., Any] | None, Exception | None]:
    """The model's callable ``name`` (None when absent), or what looking it up raised.

    ``getattr(model, name, None)`` only absorbs AttributeError; a model whose
    ``__getattr__`` raises anything else must fail a check, not crash the gate.

    Example:
        >>> class Broken:
        ...     def __getattr__(self, name):
        ...         raise RuntimeError("boom")
        >>> find_method(Broken(), "predict")
        (None, RuntimeError('boom'))
        >>> find_method(object(), "predict")
        (None, None)
    """
    try:
        value = getattr(model, name)
    except AttributeError:
        return None, None
    except Exception as exc:
        return None, exc
    return (value if callable(value) else None), None


def methods_check(model: Any, required: tuple[str, ...]) -> GateCheck:
    """Every required method present and callable; names the missing ones and why.

    Example:
        >>> methods_check(object(), ("predict",)).message
        'missing or not callable: predict'
    """
    missing, problems = [], []
    for name in required:
        method, error = find_method(model, name)
        if method is None:
            missing.append(name)
            problems.append(name if error is None else f"{name} ({type(error).__name__}: {error})")
    if missing:
        message = f"missing or not callable: {', '.join(problems)}"
        return GateCheck("required_methods", False, message, ", ".join(missing))
    return GateCheck("required_methods", True, f"present: {', '.join(required)}")


def probe_sizes(n: int) -> list[int]:
    """Row counts the shape check predicts on: the whole set, one row, a strict subset.

    Several sizes, so that a model answering a fixed number of rows cannot pass by
    chance when that number equals the size of the validation set.

    Example:
        >>> probe_sizes(50), probe_sizes(2), probe_sizes(1)
        ([50, 1, 7], [2, 1], [1])
    """
    return [k for k in dict.fromkeys((n, 1, min(n - 1, 7))) if k >= 1]


def shape_check(
    model: Any, features: NDArray[Any], shape: tuple[int | None, int]
) -> tuple[GateCheck, NDArray[Any] | None]:
    """Feature count as configured, one output row per input row; returns the predictions.

    ``predict`` and, when present, ``predict_proba`` run on each of ``probe_sizes``
    (the full set first); the predictions returned are those on the full set.

    Example:
        >>> class Fixed:  # always 3 answers: right only for a 3-row input
        ...     def predict(self, X):
        ...         return np.zeros(3)
        >>> check, predicted = shape_check(Fixed(), np.zeros((3, 2)), (None, 2))
        >>> check.passed, check.message, predicted
        (False, 'predict returned 3 rows for 1 input row', None)
    """
    rows, want = shape
    expected = f"({rows}, {want})"
    n, got = features.shape
    if got != want or (rows is not None and n != rows):
        actual = f"({n}, {got})"
        return GateCheck("input_shape", False, f"X has shape {actual}", actual, expected), None
    found = {name: find_method(model, name) for name in ("predict", "predict_proba")}
    for name, (_, error) in found.items():
        if error is not None:
            return GateCheck("input_shape", False, raised(name, error), None, expected), None
    # A missing predict is left to the probe below, which reports what calling it raised.
    methods = ("predict", "predict_proba") if found["predict_proba"][0] else ("predict",)
    outputs: dict[tuple[str, int], NDArray[Any]] = {}
    for k in probe_sizes(n):
        for method in methods:
            out, problem = _one_row_per_input(model, method, features[:k])
            if out is None:
                return GateCheck("input_shape", False, problem, None, expected), None
            outputs[method, k] = out
    predicted = outputs["predict", n]
    if predicted.ndim == 2 and predicted.shape[1] == 1:
        predicted = predicted.ravel()
    return GateCheck("input_shape", True, f"{want} features, one output row per input row"), (
        predicted
    )


def _one_row_per_input(
    model: Any, method: str, batch: NDArray[Any]
) -> tuple[NDArray[Any] | None, str]:
    """The method's output on ``batch``, or None and why it is not one row per input."""
    k = len(batch)
    rows = f"{k} input row{'' if k == 1 else 's'}"
    try:
        # The lookup is inside the try too: a __getattr__ may raise anything.
        out = np.asarray(getattr(model, method)(batch))
    except Exception as exc:  # whatever the model raises is its failure, not the gate's
        return None, f"{raised(method, exc)} (on {rows})"
    count = out.shape[0] if out.ndim else 0
    if count != k:
        return None, f"{method} returned {count} row{'' if count == 1 else 's'} for {rows}"
    return out, ""


def raised(what: str, exc: BaseException) -> str:
    """The message of a check failed by an exception.

    Example:
        >>> raised("predict", ValueError("bad input"))
        'predict raised ValueError: bad input'
    """
    return f"{what} raised {type(exc).__name__}: {exc}"
