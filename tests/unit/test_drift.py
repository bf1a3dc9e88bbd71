"""Drift: the classic mean-shift rule, DriftConfig, and compare() on window statistics."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from stream_app.errors import FeatureMismatchError
from stream_app.monitoring.divergence import adjust_p_values, smoothed_proportions
from stream_app.monitoring.drift import (
    DriftConfig,
    DriftReport,
    FeatureDrift,
    compare,
    mean_shift_report,
    mean_shift_z,
)
from stream_app.monitoring.stats import ReferenceProfile, WindowStats
from tests.utils.drift_data import CATEGORICAL, draw, reference_profile, window

INCOME_REF = [45000, 52000, 38000, 61000, 48000, 55000, 42000, 59000]
INCOME_PROD = [72000, 85000, 68000, 91000, 78000, 82000, 75000, 88000]
AGE_REF = [28, 35, 42, 31, 45, 38, 29, 52]
AGE_PROD = [30, 33, 40, 35, 42, 37, 31, 48]


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return reference_profile()


# --- mean_shift_report: the classic rule ---------------------------------------------


def test_classic_income_drifts_and_age_does_not() -> None:
    report = mean_shift_report(
        {"income": INCOME_REF, "age": AGE_REF}, {"income": INCOME_PROD, "age": AGE_PROD}
    )
    expected = {
        name: abs(np.mean(prod) - np.mean(ref)) / np.std(ref)
        for name, ref, prod in (("income", INCOME_REF, INCOME_PROD), ("age", AGE_REF, AGE_PROD))
    }
    income, age = report.features["income"], report.features["age"]
    assert income.z_score == pytest.approx(expected["income"], rel=1e-12)
    assert age.z_score == pytest.approx(expected["age"], rel=1e-12)
    assert (round(income.z_score, 2), round(age.z_score, 2)) == (3.91, 0.06)
    assert (income.status, income.severity, income.test, income.n) == (
        "drift",
        "critical",
        "mean_shift",
        8,
    )
    assert (age.status, age.severity) == ("ok", "none")
    assert report.drift_detected
    assert report.drifting_features == ("income",)
    assert report.severity == "critical"


@pytest.mark.parametrize(
    ("ref", "prod", "z", "status"),
    [
        ([5.0, 5.0, 5.0], [5.0, 5.0], 0.0, "ok"),
        ([5.0, 5.0, 5.0], [6.0], math.inf, "drift"),
        ([0.0, 2.0], [3.0], 2.0, "ok"),  # exactly at the threshold: not above it
        ([0.0, 2.0], [3.0001], 2.0001, "drift"),
        ([0.0, 2.0, float("nan")], [-1.0, None], 2.0, "ok"),  # missing values ignored
    ],
)
def test_mean_shift_edge_cases(ref: list[float], prod: list[Any], z: float, status: str) -> None:
    feature = mean_shift_report({"x": ref}, {"x": prod}).features["x"]
    assert feature.z_score == pytest.approx(z)
    assert feature.status == status


def test_mean_shift_threshold_is_configurable() -> None:
    report = mean_shift_report({"x": [0.0, 2.0]}, {"x": [3.0]}, threshold_std=1.5)
    assert report.drifting_features == ("x",)
    with pytest.raises(ValueError, match=r"threshold_std must be in \(0, inf\)"):
        mean_shift_report({"x": [0.0]}, {"x": [0.0]}, threshold_std=0)


def test_mean_shift_needs_every_reference_feature_and_some_values() -> None:
    with pytest.raises(FeatureMismatchError, match=r"\['age'\]"):
        mean_shift_report({"age": AGE_REF, "income": INCOME_REF}, {"income": INCOME_PROD})
    report = mean_shift_report({"age": AGE_REF}, {"age": []})
    assert report.features["age"].status == "insufficient_data"
    assert not report.drift_detected


def test_mean_shift_z_with_zero_std() -> None:
    assert (mean_shift_z(1.0, 0.0, 1.0), mean_shift_z(1.0, 0.0, 0.5)) == (0.0, math.inf)


def test_report_to_dict_is_strict_json_with_inf_as_a_string() -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    report = mean_shift_report(
        {"x": [1.0, 1.0]}, {"x": [2.0]}, window_start=start, window_end="2026-01-01T13:00:00+00:00"
    )
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["features"]["x"]["z_score"] == "inf"
    assert data["features"]["x"]["p_value"] is None
    assert data["window_start"] == "2026-01-01T12:00:00+00:00"
    assert data["window_end"] == "2026-01-01T13:00:00+00:00"
    assert data["drift_detected"] is True
    assert data["drifting_features"] == ["x"]


def test_empty_report() -> None:
    report = DriftReport({})
    assert (report.drift_detected, report.severity, report.drifting_features) == (False, "none", ())


# --- DriftConfig ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold_std": 0.0}, r"threshold_std must be in \(0, inf\)"),
        ({"threshold_std": math.inf}, r"threshold_std must be in \(0, inf\)"),
        ({"psi_warning": 0.0}, r"0 < psi_warning < psi_critical < inf"),
        ({"psi_warning": 0.3, "psi_critical": 0.2}, r"0 < psi_warning < psi_critical < inf"),
        ({"alpha": 0.0}, r"alpha must be in \(0, 1\)"),
        ({"alpha": 1.0}, r"alpha must be in \(0, 1\)"),
        ({"correction": "fdr"}, r"correction must be 'holm' or 'bonferroni'"),
        ({"min_samples": 1}, r"min_samples must be an integer in \[2, inf\)"),
        ({"min_samples": 10.5}, r"min_samples must be an integer in \[2, inf\)"),
        ({"psi_epsilon": 0.0}, r"psi_epsilon must be in \(0, 0.01\]"),
        ({"psi_epsilon": 0.5}, r"psi_epsilon must be in \(0, 0.01\]"),
    ],
)
def test_config_refuses_values_out_of_range(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DriftConfig(**kwargs)


def test_config_defaults() -> None:
    config = DriftConfig()
    assert (config.threshold_std, config.psi_warning, config.psi_critical) == (2.0, 0.1, 0.25)
    assert (config.alpha, config.correction, config.min_samples) == (0.01, "holm", 100)


# --- compare ----------------------------------------------------------------------------


def test_a_window_from_the_reference_distribution_does_not_drift(
    profile: ReferenceProfile,
) -> None:
    report = compare(profile, window(profile, np.random.default_rng(5), 1_000))
    assert not report.drift_detected
    assert report.severity == "none"
    for f in report.features.values():
        assert f.status == "ok"
        assert f.n == 1_000
        assert f.p_value is not None and f.p_value_raw is not None
        assert 0.0 <= f.p_value_raw <= f.p_value <= 1.0
        assert f.psi is not None and 0.0 <= f.psi < 0.1
    assert report.features[CATEGORICAL].test == "chi2"
    assert report.features[CATEGORICAL].z_score is None
    assert report.features["age"].test == "psi+chi2"


@pytest.mark.parametrize("correction", ["holm", "bonferroni"])
def test_p_values_are_corrected_across_features(profile: ReferenceProfile, correction: str) -> None:
    config = DriftConfig(correction=correction)  # type: ignore[arg-type]
    report = compare(profile, window(profile, np.random.default_rng(6), 500), config)
    raw = [f.p_value_raw for f in report.features.values()]
    expected = adjust_p_values(raw, correction)  # type: ignore[arg-type]
    assert [f.p_value for f in report.features.values()] == pytest.approx(expected)


def test_a_one_std_shift_is_named_by_the_distribution_tests(profile: ReferenceProfile) -> None:
    shifted = window(profile, np.random.default_rng(8), 1_000, "purchase_total", 1.0)
    report = compare(profile, shifted)
    f = report.features["purchase_total"]
    assert report.drifting_features == ("purchase_total",)
    assert f.z_score == pytest.approx(1.0, abs=0.15)  # the classic rule alone misses it
    assert (f.severity, f.psi is not None and f.psi >= 0.25) == ("critical", True)
    assert f.reasons and f.reasons[0].startswith("psi=")


def test_a_large_mean_shift_is_critical_for_the_mean_shift_rule(
    profile: ReferenceProfile,
) -> None:
    shifted = window(profile, np.random.default_rng(9), 1_000, "age", 3.0)
    f = compare(profile, shifted).features["age"]
    assert f.z_score is not None and f.z_score > 2.0
    assert f.severity == "critical"
    assert f.reasons[0].startswith("mean shift z=")


def test_a_changed_category_mix_drifts(profile: ReferenceProfile) -> None:
    data = draw(np.random.default_rng(10), 1_000)
    data[CATEGORICAL] = np.array(["sports"] * 600 + ["home"] * 300 + ["toys"] * 100)
    report = compare(profile, WindowStats.empty(profile).update(data))
    assert report.drifting_features == (CATEGORICAL,)
    assert report.features[CATEGORICAL].severity == "critical"


def _two_category_profile() -> ReferenceProfile:
    return ReferenceProfile.from_data({"c": ["a"] * 5_000 + ["b"] * 5_000}, categorical=["c"])


@pytest.mark.parametrize(
    ("a", "b", "severity"),
    [
        (5_000, 5_000, "none"),
        (6_400, 3_600, "none"),
        (6_600, 3_400, "warning"),
        (7_500, 2_500, "critical"),
    ],
)
def test_severity_follows_the_psi_thresholds(a: int, b: int, severity: str) -> None:
    profile = _two_category_profile()
    stats = WindowStats.empty(profile).update({"c": ["a"] * a + ["b"] * b})
    f = compare(profile, stats).features["c"]
    r = smoothed_proportions([5_000, 5_000, 0], 1e-4)
    w = smoothed_proportions([a, b, 0], 1e-4)
    assert f.psi == pytest.approx(float(np.sum((w - r) * np.log(w / r))), rel=1e-12)
    assert f.severity == severity


def test_a_significant_but_tiny_change_is_not_drift() -> None:
    profile = _two_category_profile()
    stats = WindowStats.empty(profile).update({"c": ["a"] * 53_000 + ["b"] * 47_000})
    f = compare(profile, stats).features["c"]
    assert f.p_value is not None and f.p_value < 1e-6
    assert f.psi is not None and f.psi < 0.1
    assert f.status == "ok"


def test_small_windows_are_insufficient_data_never_drift(profile: ReferenceProfile) -> None:
    small = window(profile, np.random.default_rng(12), 60, "age", 5.0)
    report = compare(profile, small)
    assert not report.drift_detected
    assert {f.status for f in report.features.values()} == {"insufficient_data"}
    assert report.features["age"].n == 60
    assert report.features["age"].p_value is None
    lowered = compare(profile, small, DriftConfig(min_samples=50))
    assert "age" in lowered.drifting_features


def test_an_empty_window_reports_insufficient_data(profile: ReferenceProfile) -> None:
    report = compare(profile, WindowStats.empty(profile))
    assert {f.n for f in report.features.values()} == {0}
    assert not report.drift_detected


def test_compare_refuses_a_window_of_another_profile(profile: ReferenceProfile) -> None:
    other = reference_profile(seed=1)
    with pytest.raises(FeatureMismatchError, match="bins differ"):
        compare(profile, WindowStats.empty(other))
    with pytest.raises(FeatureMismatchError, match="window features"):
        compare(profile, WindowStats.empty(_two_category_profile()))


def test_compare_report_is_strict_json(profile: ReferenceProfile) -> None:
    shifted = window(profile, np.random.default_rng(13), 1_000, "purchase_max", 1.0)
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, 0, 5, tzinfo=UTC)
    report = compare(profile, shifted, window_start=start, window_end=end)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["drifting_features"] == ["purchase_max"]
    assert data["severity"] == "critical"
    assert data["window_end"] == "2026-03-01T00:05:00+00:00"
    assert set(data["features"]["age"]) == {
        "name",
        "test",
        "status",
        "severity",
        "n",
        "reference_mean",
        "reference_std",
        "current_mean",
        "current_std",
        "z_score",
        "statistic",
        "p_value",
        "p_value_raw",
        "psi",
        "reasons",
    }


def test_feature_drift_to_dict_leaves_uncomputed_values_null() -> None:
    f = FeatureDrift("x", "psi+chi2", "insufficient_data", "none", 3)
    assert f.to_dict()["psi"] is None


# --- the figures each verdict names: means and standard deviations ------------------


def test_compare_names_the_reference_and_window_moments_numpy_computes() -> None:
    rng = np.random.default_rng(7)
    reference = {"x": rng.normal(10.0, 2.0, 5_000), "c": rng.choice(["a", "b"], 5_000)}
    batches = [rng.normal(11.0, 3.0, n) for n in (400, 250, 350)]
    profile = ReferenceProfile.from_data(reference, categorical=["c"])
    stats = WindowStats.empty(profile)
    for values in batches:  # merged batch by batch, as the stream does
        stats = stats.merge(
            WindowStats.empty(profile).update({"x": values, "c": ["a"] * len(values)})
        )
    x = compare(profile, stats).features["x"]
    current = np.concatenate(batches)
    assert x.reference_mean == pytest.approx(np.mean(reference["x"]), rel=1e-12)
    assert x.reference_std == pytest.approx(np.std(reference["x"]), rel=1e-12)
    assert x.current_mean == pytest.approx(np.mean(current), rel=1e-12)
    assert x.current_std == pytest.approx(np.std(current), rel=1e-12)
    expected_z = abs(np.mean(current) - np.mean(reference["x"])) / np.std(reference["x"])
    assert x.z_score == pytest.approx(expected_z, rel=1e-12)
    assert x.n == 1_000
    c = compare(profile, stats).features["c"]
    assert (c.reference_mean, c.reference_std, c.current_mean, c.current_std) == (None,) * 4


def test_small_and_empty_windows_still_name_what_they_have(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(3)
    values = draw(rng, 20)
    small = compare(profile, WindowStats.empty(profile).update(values)).features["age"]
    assert small.status == "insufficient_data"
    assert small.current_mean == pytest.approx(np.mean(values["age"]), rel=1e-12)
    assert small.current_std == pytest.approx(np.std(values["age"]), rel=1e-12)
    assert small.reference_mean == profile.numeric["age"].mean
    assert small.z_score is None
    empty = compare(profile, WindowStats.empty(profile)).features["age"]
    assert (empty.current_mean, empty.current_std) == (None, None)
    assert empty.reference_std == profile.numeric["age"].std


def test_the_classic_rule_names_the_moments_too() -> None:
    report = mean_shift_report({"income": INCOME_REF}, {"income": INCOME_PROD})
    income = report.features["income"]
    assert income.reference_mean == pytest.approx(np.mean(INCOME_REF), rel=1e-12)
    assert income.reference_std == pytest.approx(np.std(INCOME_REF), rel=1e-12)
    assert income.current_mean == pytest.approx(np.mean(INCOME_PROD), rel=1e-12)
    assert income.current_std == pytest.approx(np.std(INCOME_PROD), rel=1e-12)
    assert income.to_dict()["current_mean"] == 79875.0
