"""Pre-deploy gate: real small models, hand-written bad models, a fake clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score
from sklearn.tree import DecisionTreeClassifier

from stream_app.errors import GateConfigError
from stream_app.lifecycle.gate import (
    GateCheck,
    GateReport,
    ModelIdentity,
    validate_for_deployment,
)
from stream_app.lifecycle.gate_config import parse_gate_config

CLASSIC: dict[str, Any] = {
    "min_accuracy": 0.8,
    "min_precision": 0.75,
    "max_latency_ms": 50,
    "required_methods": ["predict", "predict_proba"],
    "input_shape": (None, 4),
}


class FakeClock:
    """Seconds that move only when a model says time passed."""

    def __init__(self) -> None:
        self.t = 0.0  # with binary-exact costs below, measured intervals are exact

    def __call__(self) -> float:
        return self.t


class Data:
    def __init__(self) -> None:
        X, y = make_classification(
            n_samples=600, n_features=4, n_informative=3, n_redundant=0, random_state=7
        )
        self.X_train, self.y_train = X[:400], y[:400]
        self.X, self.y = X[400:], y[400:]
        self.logistic = LogisticRegression().fit(self.X_train, self.y_train)
        self.tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(
            self.X_train, self.y_train
        )


@pytest.fixture(scope="module")
def data() -> Data:
    return Data()


class Timed:
    """Wraps a model; each predict advances the fake clock by ``cost(rows, call)`` seconds."""

    def __init__(self, inner: Any, clock: FakeClock, cost: Callable[[int, int], float]) -> None:
        self.inner, self.clock, self.cost, self.calls = inner, clock, cost, 0

    def predict(self, X: NDArray[Any]) -> Any:
        self.clock.t += self.cost(len(X), self.calls)
        self.calls += 1
        return self.inner.predict(X)

    def predict_proba(self, X: NDArray[Any]) -> Any:
        return self.inner.predict_proba(X)


class PredictOnly:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict(self, X: NDArray[Any]) -> Any:
        return self.inner.predict(X)


class FixedLength:
    def predict(self, X: NDArray[Any]) -> Any:
        return np.array([0, 1, 0])

    def predict_proba(self, X: NDArray[Any]) -> Any:
        return np.tile([0.5, 0.5], (3, 1))


class Raising:
    def predict(self, X: NDArray[Any]) -> Any:
        raise RuntimeError("weights not loaded")

    def predict_proba(self, X: NDArray[Any]) -> Any:
        raise RuntimeError("weights not loaded")


class Constant:
    def __init__(self, label: Any) -> None:
        self.label = label

    def predict(self, X: NDArray[Any]) -> Any:
        return np.full(len(X), self.label)


def names(report: GateReport) -> list[str]:
    return [c.name for c in report.checks]


def test_classic_logistic_passes_with_exact_metrics(data: Data) -> None:
    clock = FakeClock()
    model = Timed(data.logistic, clock, lambda rows, call: 0.002)
    identity = ModelIdentity("churn_predictor", "1.1.0", "ab" * 32)
    report = validate_for_deployment(model, data.X, data.y, CLASSIC, clock=clock, identity=identity)
    assert report.passed, report.to_dict()
    assert names(report) == [
        "required_methods",
        "input_shape",
        "latency_p95",
        "accuracy",
        "precision",
    ]
    predicted = data.logistic.predict(data.X)
    proba = data.logistic.predict_proba(data.X)[:, 1]
    assert report.metrics["accuracy"] == accuracy_score(data.y, predicted)
    assert report.metrics["precision"] == precision_score(data.y, predicted)
    assert report.metrics["recall"] == recall_score(data.y, predicted)
    assert report.metrics["roc_auc"] == roc_auc_score(data.y, proba)
    assert report.metrics["latency_p95_ms"] == pytest.approx(2.0)
    assert report.metrics["throughput_per_s"] == pytest.approx(200 / 0.002)
    assert report.identity == identity
    assert report.check("latency_p95").threshold == 50


def test_decision_tree_passes(data: Data) -> None:
    report = validate_for_deployment(data.tree, data.X, data.y, CLASSIC, clock=FakeClock())
    assert report.passed, report.failed


def test_missing_predict_proba_fails_required_methods_but_still_scores(data: Data) -> None:
    report = validate_for_deployment(
        PredictOnly(data.logistic), data.X, data.y, CLASSIC, clock=FakeClock()
    )
    assert not report.passed
    assert report.failed == ("required_methods",)
    check = report.check("required_methods")
    assert check.message == "missing or not callable: predict_proba"
    assert report.metrics["roc_auc"] is None
    assert report.metrics["accuracy"] == accuracy_score(data.y, data.logistic.predict(data.X))


def test_non_callable_attribute_counts_as_missing(data: Data) -> None:
    model = PredictOnly(data.logistic)
    model.predict_proba = "not a method"  # type: ignore[attr-defined]
    report = validate_for_deployment(model, data.X, data.y, CLASSIC, clock=FakeClock())
    assert report.check("required_methods").passed is False


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (FixedLength(), "predict returned 3 rows for 200 input rows"),
        (Raising(), "predict raised RuntimeError: weights not loaded"),
        (object(), "predict raised AttributeError"),
    ],
    ids=["fixed_length", "raising", "not_a_model"],
)
def test_shape_failures_skip_later_checks(data: Data, model: Any, message: str) -> None:
    report = validate_for_deployment(model, data.X, data.y, CLASSIC, clock=FakeClock())
    assert not report.passed
    shape = report.check("input_shape")
    assert shape.passed is False
    assert shape.message.startswith(message)
    skipped = [c for c in report.checks if c.skipped]
    assert [c.name for c in skipped] == ["latency_p95", "accuracy", "precision"]
    assert all(not c.passed and "input_shape" in c.message for c in skipped)
    assert report.metrics == {}
    json.dumps(report.to_dict(), allow_nan=False)


class Memorised:
    """Always answers the labels it stored, whatever the input: a fixed-length answer."""

    def __init__(self, labels: NDArray[Any]) -> None:
        self.labels = labels

    def predict(self, X: NDArray[Any]) -> Any:
        return self.labels.copy()


class MemorisedProba(PredictOnly):
    """Predicts honestly, but predict_proba always returns as many rows as the labels."""

    def __init__(self, inner: Any, rows: int) -> None:
        super().__init__(inner)
        self.rows = rows

    def predict_proba(self, X: NDArray[Any]) -> Any:
        return np.tile([0.5, 0.5], (self.rows, 1))


def small_set(rows: int) -> tuple[NDArray[Any], NDArray[Any]]:
    X = np.random.default_rng(0).normal(size=(rows, 4))
    return X, (X[:, 0] > 0).astype(int)


def test_a_fixed_length_answer_equal_to_the_set_size_fails_shape() -> None:
    X, y = small_set(50)
    config = {**CLASSIC, "required_methods": ["predict"], "min_accuracy": 0.0}
    report = validate_for_deployment(Memorised(y), X, y, config, clock=FakeClock())
    assert report.check("input_shape").passed is False
    assert report.check("input_shape").message == "predict returned 50 rows for 1 input row"
    assert not report.passed


def test_a_fixed_length_proba_fails_shape(data: Data) -> None:
    n = len(data.X)
    report = validate_for_deployment(MemorisedProba(data.logistic, n), data.X, data.y, CLASSIC)
    assert report.check("input_shape").message == (
        f"predict_proba returned {n} rows for 1 input row"
    )


class Recording(PredictOnly):
    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.rows: list[tuple[str, int]] = []

    def predict(self, X: NDArray[Any]) -> Any:
        self.rows.append(("predict", len(X)))
        return self.inner.predict(X)

    def predict_proba(self, X: NDArray[Any]) -> Any:
        self.rows.append(("predict_proba", len(X)))
        return self.inner.predict_proba(X)


@pytest.mark.parametrize(
    ("n", "probed"), [(200, [200, 1, 7]), (8, [8, 1, 7]), (5, [5, 1, 4]), (2, [2, 1]), (1, [1])]
)
def test_shape_is_probed_on_the_full_set_one_row_and_a_strict_subset(
    data: Data, n: int, probed: list[int]
) -> None:
    model = Recording(data.logistic)
    config = {**CLASSIC, "min_accuracy": 0.0, "min_precision": 0.0, "latency_runs": 1}
    report = validate_for_deployment(model, data.X[:n], data.y[:n], config, clock=FakeClock())
    assert report.check("input_shape").passed is True
    calls = 2 * len(probed)
    assert model.rows[:calls] == [(m, k) for k in probed for m in ("predict", "predict_proba")]


class AttributeExplodes:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("boom in getattr")


class ProbaRaises(PredictOnly):
    def predict_proba(self, X: NDArray[Any]) -> Any:
        raise RuntimeError("proba broken")


class ProbaLookupExplodes(PredictOnly):
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name} today")


def test_a_model_whose_attribute_lookup_raises_fails_instead_of_crashing(data: Data) -> None:
    report = validate_for_deployment(AttributeExplodes(), data.X, data.y, CLASSIC)
    assert not report.passed
    methods = report.check("required_methods")
    assert methods.passed is False
    assert methods.message == (
        "missing or not callable: predict (RuntimeError: boom in getattr), "
        "predict_proba (RuntimeError: boom in getattr)"
    )
    assert report.check("input_shape").message.startswith(
        "predict raised RuntimeError: boom in getattr"
    )
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_raising_predict_proba_is_named_as_such(data: Data) -> None:
    report = validate_for_deployment(ProbaRaises(data.logistic), data.X, data.y, CLASSIC)
    message = report.check("input_shape").message
    assert message == "predict_proba raised RuntimeError: proba broken (on 200 input rows)"


def test_a_raising_predict_proba_lookup_is_a_failed_check(data: Data) -> None:
    config = {**CLASSIC, "required_methods": ["predict"]}
    report = validate_for_deployment(ProbaLookupExplodes(data.logistic), data.X, data.y, config)
    assert report.check("required_methods").passed is True
    assert report.check("input_shape").message == (
        "predict_proba raised RuntimeError: no predict_proba today"
    )


def test_a_model_failing_only_on_one_row_fails_the_shape_check(data: Data) -> None:
    class NeedsABatch(PredictOnly):
        def predict(self, X: NDArray[Any]) -> Any:
            if len(X) == 1:
                raise ValueError("needs a batch")
            return self.inner.predict(X)

    config = {**CLASSIC, "required_methods": ["predict"]}
    report = validate_for_deployment(NeedsABatch(data.logistic), data.X, data.y, config)
    assert report.check("input_shape").message == (
        "predict raised ValueError: needs a batch (on 1 input row)"
    )


def test_proba_with_wrong_row_count_fails_shape(data: Data) -> None:
    class BadProba(PredictOnly):
        def predict_proba(self, X: NDArray[Any]) -> Any:
            return np.tile([0.5, 0.5], (len(X) - 1, 1))

    report = validate_for_deployment(BadProba(data.logistic), data.X, data.y, CLASSIC)
    assert report.check("input_shape").message == (
        "predict_proba returned 199 rows for 200 input rows"
    )


def test_wrong_feature_count_fails_shape_and_skips_everything(data: Data) -> None:
    config = {**CLASSIC, "input_shape": (None, 5), "min_recall": 0.1, "min_roc_auc": 0.5}
    report = validate_for_deployment(
        data.logistic, data.X, data.y, config, baseline=data.tree, clock=FakeClock()
    )
    shape = report.check("input_shape")
    assert (shape.passed, shape.value, shape.threshold) == (False, "(200, 4)", "(None, 5)")
    assert names(report)[2:] == [
        "latency_p95",
        "accuracy",
        "precision",
        "recall",
        "roc_auc",
        "no_regression",
    ]


def test_fixed_row_count_in_input_shape(data: Data) -> None:
    ok = validate_for_deployment(
        data.logistic, data.X, data.y, {**CLASSIC, "input_shape": [200, 4]}
    )
    bad = validate_for_deployment(
        data.logistic, data.X, data.y, {**CLASSIC, "input_shape": [10, 4]}
    )
    assert ok.check("input_shape").passed is True
    assert bad.check("input_shape").passed is False


def test_slow_model_fails_latency_with_the_fake_clock(data: Data) -> None:
    clock = FakeClock()
    model = Timed(data.logistic, clock, lambda rows, call: 0.120)
    report = validate_for_deployment(model, data.X, data.y, CLASSIC, clock=clock)
    check = report.check("latency_p95")
    assert report.failed == ("latency_p95",)
    assert check.value == pytest.approx(120.0)
    assert check.message == "p95 120.000 ms over 100 runs > 50.0 ms"


def test_latency_p95_is_the_95th_percentile_of_the_runs(data: Data) -> None:
    clock = FakeClock()
    # Calls 0-2 are the shape check (200, 1 and 7 rows), call 3 the warm-up; then 20
    # timed runs of which the last 2 take 100 ms: the 95th percentile interpolates
    # between 1 ms and 100 ms.
    model = Timed(data.logistic, clock, lambda rows, call: 0.1 if call >= 22 else 0.001)
    config = {**CLASSIC, "latency_runs": 20, "max_latency_ms": 100}
    report = validate_for_deployment(model, data.X, data.y, config, clock=clock)
    expected = float(np.percentile([1.0] * 18 + [100.0] * 2, 95))
    assert report.metrics["latency_p95_ms"] == pytest.approx(expected)
    assert report.metrics["latency_p50_ms"] == pytest.approx(1.0)
    assert model.calls == 3 + 1 + 20 + 1  # shape, warm-up, runs, throughput batch


@pytest.mark.parametrize(("minimum", "passed"), [(500, True), (1024, True), (1025, False)])
def test_throughput_is_checked_only_when_configured(
    data: Data, minimum: float, passed: bool
) -> None:
    clock = FakeClock()
    model = Timed(data.logistic, clock, lambda rows, call: rows / 1024)  # 1,024 rows/s
    config = {**CLASSIC, "min_throughput_per_s": minimum}
    report = validate_for_deployment(model, data.X, data.y, config, clock=clock)
    check = report.check("throughput")
    assert check.passed is passed
    assert check.value == 1024.0
    unchecked = validate_for_deployment(model, data.X, data.y, CLASSIC, clock=clock)
    assert "throughput" not in names(unchecked)
    assert unchecked.metrics["throughput_per_s"] == 1024.0


def test_unmeasurably_fast_batch_is_json_safe(data: Data) -> None:
    report = validate_for_deployment(
        data.logistic, data.X, data.y, {**CLASSIC, "min_throughput_per_s": 1}, clock=FakeClock()
    )
    assert report.metrics["throughput_per_s"] == float("inf")
    body = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert body["metrics"]["throughput_per_s"] == "inf"
    assert GateReport.from_dict(body) == report


@pytest.mark.parametrize(
    ("key", "minimum", "passed"),
    [
        ("min_recall", 0.5, True),
        ("min_recall", 0.99, False),
        ("min_roc_auc", 0.8, True),
        ("min_roc_auc", 0.999, False),
        ("min_accuracy", 0.99, False),
        ("min_precision", 0.99, False),
    ],
)
def test_metric_thresholds(data: Data, key: str, minimum: float, passed: bool) -> None:
    report = validate_for_deployment(
        data.logistic, data.X, data.y, {**CLASSIC, key: minimum}, clock=FakeClock()
    )
    check = report.check(key.removeprefix("min_"))
    assert check.passed is passed
    assert check.threshold == minimum
    assert report.passed is passed


def test_roc_auc_threshold_without_predict_proba_fails(data: Data) -> None:
    config = {**CLASSIC, "required_methods": ["predict"], "min_roc_auc": 0.5}
    report = validate_for_deployment(PredictOnly(data.logistic), data.X, data.y, config)
    assert report.failed == ("roc_auc",)
    assert report.check("roc_auc").message == "roc_auc could not be computed"


def test_predictions_that_are_not_labels_fail_the_metric_checks(data: Data) -> None:
    config = {**CLASSIC, "required_methods": ["predict"]}
    report = validate_for_deployment(Constant("yes"), data.X, data.y, config)
    assert report.failed == ("accuracy", "precision")
    assert report.metrics["accuracy"] is None


def test_constant_model_has_zero_precision_not_an_error(data: Data) -> None:
    config = {**CLASSIC, "required_methods": ["predict"]}
    report = validate_for_deployment(Constant(0), data.X, data.y, config)
    assert report.metrics["precision"] == 0.0
    assert report.metrics["recall"] == 0.0
    assert report.metrics["accuracy"] == float(np.mean(data.y == 0))


def test_same_model_as_baseline_does_not_regress(data: Data) -> None:
    report = validate_for_deployment(
        data.logistic, data.X, data.y, CLASSIC, baseline=data.logistic, clock=FakeClock()
    )
    check = report.check("no_regression")
    assert check.passed is True
    assert check.value == 0.0
    assert check.threshold == 0.01
    assert report.metrics["baseline_accuracy"] == report.metrics["accuracy"]


def test_worse_candidate_regresses_against_baseline(data: Data) -> None:
    config = {**CLASSIC, "min_accuracy": 0.0, "min_precision": 0.0, "required_methods": ["predict"]}
    report = validate_for_deployment(Constant(1), data.X, data.y, config, baseline=data.logistic)
    check = report.check("no_regression")
    assert report.failed == ("no_regression",)
    base = data.logistic.predict(data.X)
    worst = max(
        accuracy_score(data.y, base) - float(np.mean(data.y == 1)),
        precision_score(data.y, base) - float(np.mean(data.y == 1)),
        recall_score(data.y, base) - 1.0,
    )
    assert check.value == pytest.approx(worst)
    assert "largest" in check.message and "> 0.01" in check.message


def test_tolerance_lets_a_small_drop_through(data: Data) -> None:
    config = {**CLASSIC, "max_metric_drop": 0.5}
    report = validate_for_deployment(data.tree, data.X, data.y, config, baseline=data.logistic)
    assert report.check("no_regression").passed is True


def test_raising_baseline_fails_closed(data: Data) -> None:
    report = validate_for_deployment(data.logistic, data.X, data.y, CLASSIC, baseline=Raising())
    check = report.check("no_regression")
    assert check.passed is False
    assert check.message == "baseline raised RuntimeError: weights not loaded"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"min_acuracy": 0.8}, "unknown gate config key 'min_acuracy'"),
        ({"min_accuracy": None}, "min_accuracy must be a number, got NoneType"),
        ({"min_accuracy": 1.5}, "min_accuracy must be in [0, 1], got 1.5"),
        ({"min_precision": -0.1}, "min_precision must be in [0, 1]"),
        ({"min_precision": True}, "min_precision must be a number, got bool"),
        ({"max_latency_ms": 0}, "max_latency_ms must be > 0, got 0.0"),
        ({"max_latency_ms": float("nan")}, "max_latency_ms must be finite"),
        ({"required_methods": "predict"}, "required_methods must be a list"),
        ({"required_methods": []}, "non-empty list of method names"),
        ({"required_methods": ["predict", 3]}, "non-empty list of method names"),
        ({"input_shape": (4,)}, "input_shape must be (rows or None, features)"),
        ({"input_shape": (None, 0)}, "input_shape features must be an integer >= 1"),
        ({"input_shape": (0, 4)}, "input_shape rows must be None or an integer >= 1"),
        ({"latency_runs": 0}, "latency_runs must be in [1, 100000], got 0"),
        ({"latency_runs": 10.0}, "latency_runs must be an integer"),
        ({"max_metric_drop": 2}, "max_metric_drop must be in [0, 1]"),
        ({"min_throughput_per_s": -1}, "min_throughput_per_s must be > 0"),
        ({"min_roc_auc": "high"}, "min_roc_auc must be a number, got str"),
    ],
)
def test_config_errors_name_the_key(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(GateConfigError) as info:
        parse_gate_config({**CLASSIC, **change})
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_classic_keys_are_named() -> None:
    config = {k: v for k, v in CLASSIC.items() if k not in ("min_precision", "input_shape")}
    with pytest.raises(GateConfigError, match="missing min_precision, input_shape"):
        parse_gate_config(config)


def test_bad_config_is_refused_before_the_model_runs(data: Data) -> None:
    with pytest.raises(GateConfigError):
        validate_for_deployment(Raising(), data.X, data.y, {**CLASSIC, "latency": 5})


@pytest.mark.parametrize(
    ("X", "y", "fragment"),
    [
        (np.zeros(4), [0, 1, 0, 1], "X must be a non-empty 2-D array"),
        (np.zeros((0, 4)), [], "X must be a non-empty 2-D array"),
        (np.zeros((4, 4)), [0, 1, 0], "y must be 1-D with 4 labels"),
        (np.zeros((3, 4)), [0, 1, 2], "binary labels"),
    ],
)
def test_bad_validation_set_is_a_caller_error(X: Any, y: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        validate_for_deployment(Constant(0), X, y, CLASSIC)


def test_report_round_trips_through_json(data: Data) -> None:
    report = validate_for_deployment(
        Raising(), data.X, data.y, CLASSIC, identity=ModelIdentity("m", "1.0.0")
    )
    body = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert body["passed"] is False
    assert body["model"] == {"name": "m", "version": "1.0.0", "digest": None}
    assert GateReport.from_dict(body) == report


def test_empty_report_never_passes() -> None:
    assert GateReport(()).passed is False
    assert GateReport((GateCheck("x", True, "ok"),)).passed is True
    with pytest.raises(KeyError):
        GateReport(()).check("x")
