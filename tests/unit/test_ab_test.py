"""A/B report: the classic case, the recommendation order, edge cases, counters and merge."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stream_app.monitoring.ab_test import (
    ABCounters,
    ABReport,
    compare_variants,
    report_from_counters,
)

CLASSIC_A = [1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 1]
CLASSIC_B = [1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1]
CLASSIC_LAT_A = [45, 52, 48, 51, 47, 53, 49, 46, 50, 48]
CLASSIC_LAT_B = [62, 71, 68, 75, 64, 69, 73, 66, 70, 67]


def _json(report: ABReport) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    return data


def test_classic_case() -> None:
    report = compare_variants(CLASSIC_A, CLASSIC_B, CLASSIC_LAT_A, CLASSIC_LAT_B)
    table = np.array([[7, 8], [11, 4]])
    expected_chi2, expected_p, _, _ = stats.chi2_contingency(table, correction=True)
    assert (report.n_a, report.n_b) == (15, 15)
    assert report.conversion_rate_a == pytest.approx(7 / 15)
    assert report.conversion_rate_b == pytest.approx(11 / 15)
    assert report.difference == pytest.approx(4 / 15)
    assert report.chi2 == pytest.approx(expected_chi2, rel=1e-12)
    assert report.p_value == pytest.approx(expected_p, rel=1e-12)
    assert report.p_value == pytest.approx(0.264, abs=1e-3)
    assert not report.significant
    assert report.recommendation == "continue"
    assert report.decided_by == "chi2"
    assert report.latency_mean_a == pytest.approx(48.9)
    assert report.latency_mean_b == pytest.approx(68.5)
    assert report.latency_increase_pct == pytest.approx((68.5 - 48.9) / 48.9 * 100)
    assert report.latency_increase_pct == pytest.approx(40.0, abs=0.5)
    assert report.latency_p95_a == np.percentile(CLASSIC_LAT_A, 95)
    assert report.latency_p95_b == np.percentile(CLASSIC_LAT_B, 95)
    assert report.srm_p_value is None
    assert _json(report)["recommendation"] == "continue"


def _arm(conversions: int, n: int) -> list[int]:
    return [1] * conversions + [0] * (n - conversions)


# name: (conv_a, n_a, conv_b, n_b, latency A, latency B, expected share of B, expected)
RECOMMENDATIONS = {
    "srm_breaks_the_split": (100, 1_000, 300, 2_000, 50.0, 50.0, 0.5, "invalid"),
    "srm_wins_over_a_clear_b_win": (100, 1_000, 600, 2_000, 50.0, 50.0, 0.5, "invalid"),
    "equal_rates_keep_a": (100, 1_000, 100, 1_000, 50.0, 50.0, 0.5, "keep_a"),
    "a_significantly_better": (200, 1_000, 100, 1_000, 50.0, 50.0, None, "keep_a"),
    "b_better_not_significant": (100, 1_000, 110, 1_000, 50.0, 50.0, None, "continue"),
    "b_better_and_fast_enough": (100, 1_000, 200, 1_000, 50.0, 70.0, 0.5, "use_b"),
    "latency_exactly_at_limit": (100, 1_000, 200, 1_000, 50.0, 75.0, None, "use_b"),
    "b_better_but_too_slow": (100, 1_000, 200, 1_000, 50.0, 80.0, None, "review_b"),
    "b_better_and_faster": (100, 1_000, 200, 1_000, 50.0, 40.0, None, "use_b"),
}


@pytest.mark.parametrize("name", sorted(RECOMMENDATIONS))
def test_recommendation_order(name: str) -> None:
    conv_a, n_a, conv_b, n_b, lat_a, lat_b, share, expected = RECOMMENDATIONS[name]
    report = compare_variants(
        _arm(conv_a, n_a), _arm(conv_b, n_b), [lat_a] * 20, [lat_b] * 20, expected_b_share=share
    )
    assert report.recommendation == expected


def test_srm_p_value_equals_scipy() -> None:
    report = compare_variants(_arm(50, 520), _arm(50, 480), [], [], expected_b_share=0.5)
    assert report.srm_p_value == pytest.approx(stats.chisquare([520, 480]).pvalue, rel=1e-12)


EDGE_CASES = {
    "both_empty": ([], [], [], []),
    "a_empty": ([], [1, 0, 1], [], [40.0]),
    "no_conversions": ([0] * 10, [0] * 12, [30.0] * 10, [31.0] * 12),
    "all_converted": ([1] * 10, [1] * 12, [30.0], [31.0]),
    "zero_latency_both": ([0, 1], [1, 1], [0.0, 0.0], [0.0]),
    "zero_latency_a_only": ([0, 1], [1, 1], [0.0], [10.0]),
    "no_latency_samples": ([0, 1, 0], [1, 1, 0], [], []),
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases_give_defined_json_safe_reports(name: str) -> None:
    a, b, lat_a, lat_b = EDGE_CASES[name]
    report = compare_variants(a, b, lat_a, lat_b, expected_b_share=0.5)
    data = _json(report)
    assert set(data) >= {"conversion_rate_a", "recommendation", "srm_p_value", "chi2"}
    assert 0.0 <= report.p_value <= 1.0 and 0.0 <= report.sequential_p_value <= 1.0


def test_edge_case_values_are_the_documented_ones() -> None:
    empty = compare_variants([], [], [], [])
    assert (empty.conversion_rate_a, empty.chi2, empty.p_value) == (0.0, 0.0, 1.0)
    assert empty.latency_mean_a is None and empty.latency_p95_b is None
    assert empty.latency_increase_pct is None
    assert empty.recommendation == "keep_a"
    b_only = compare_variants([], [1, 1, 0], [], [40.0])
    assert (b_only.n_a, b_only.conversion_rate_b, b_only.recommendation) == (0, 2 / 3, "continue")
    zero = compare_variants([0, 1], [1, 1], [0.0, 0.0], [0.0])
    assert zero.latency_increase_pct == 0.0
    unbounded = compare_variants([0, 1], [1, 1], [0.0], [10.0])
    assert unbounded.latency_increase_pct is None


def test_unknown_latency_increase_never_counts_as_within_the_limit() -> None:
    report = compare_variants(_arm(100, 1_000), _arm(200, 1_000), [0.0], [10.0])
    assert report.significant
    assert report.recommendation == "review_b"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, r"alpha must be in \(0, 1\)"),
        ({"alpha": 1.0}, r"alpha must be in \(0, 1\)"),
        ({"max_latency_increase": -0.1}, "max_latency_increase must be >= 0"),
        ({"expected_b_share": 1.0}, r"expected_b_share must be in \(0, 1\)"),
    ],
)
def test_parameters_out_of_range(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_variants([1], [0], [1.0], [1.0], **kwargs)


@pytest.mark.parametrize(
    ("a", "lat_a", "message"),
    [([0, 2], [1.0], "a_conversions must hold only 0 and 1"), ([1], [-1.0], "a_latency_ms")],
)
def test_invalid_arrays(a: list[int], lat_a: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_variants(a, [0], lat_a, [1.0])


def _counters(conversions: list[int], latencies: list[float]) -> ABCounters:
    counters = ABCounters()
    counters.record_exposures(latencies)
    counters.exposures += len(conversions) - len(latencies)  # exposures without a latency
    for converted in conversions:
        counters.record_outcome(converted)
    return counters


def test_counters_and_arrays_share_one_decision() -> None:
    rng = np.random.default_rng(11)
    a = rng.binomial(1, 0.10, 3_000).tolist()
    b = rng.binomial(1, 0.13, 3_000).tolist()
    lat_a, lat_b = rng.lognormal(3.9, 0.3, 3_000), rng.lognormal(4.1, 0.3, 3_000)
    arrays = compare_variants(a, b, lat_a, lat_b, expected_b_share=0.5).to_dict()
    counters = report_from_counters(
        _counters(a, lat_a.tolist()), _counters(b, lat_b.tolist()), expected_b_share=0.5
    ).to_dict()
    for key in ("latency_p95_a", "latency_p95_b"):
        assert counters.pop(key) == pytest.approx(arrays.pop(key), rel=0.01)
    for key in ("latency_mean_a", "latency_mean_b", "latency_increase_pct"):
        assert counters.pop(key) == pytest.approx(arrays.pop(key), rel=1e-12)
    assert counters == arrays
    assert arrays["recommendation"] == "use_b"


def test_sequential_mode_decides_on_the_running_minimum() -> None:
    a, b = ABCounters(), ABCounters()
    previous = 1.0
    seen = []
    for look in range(6):
        a.record_exposures([50.0] * 1_000)
        b.record_exposures([52.0] * 1_000)
        for _ in range(100):
            a.record_outcome(True)
        for _ in range(150 if look == 0 else 100):
            b.record_outcome(True)
        report = report_from_counters(a, b, sequential=previous)
        assert report.decided_by == "sequential"
        assert report.sequential_p_value <= previous
        assert report.significant == (report.sequential_p_value < 0.05)
        previous = report.sequential_p_value
        seen.append(report.recommendation)
    # B's lead in the first batch was already valid evidence; the running minimum keeps it,
    # while this look alone no longer shows a difference.
    assert seen == ["use_b"] * 6
    assert previous < 0.05
    this_look_only = report_from_counters(a, b)
    assert this_look_only.sequential_p_value > 0.05
    assert this_look_only.recommendation == "continue"


def test_sequential_previous_must_be_a_p_value() -> None:
    with pytest.raises(ValueError, match=r"sequential must be a p-value in \[0, 1\]"):
        report_from_counters(ABCounters(), ABCounters(), sequential=1.5)


def test_outcomes_beyond_exposures_cannot_raise_a_rate_above_one() -> None:
    a, b = ABCounters(), ABCounters()
    a.record_exposure(10.0)
    a.record_outcome(True)
    a.record_outcome(True)
    report = report_from_counters(a, b)
    assert report.conversion_rate_a == 1.0 and report.conversions_a == 1


def test_record_exposure_with_bad_latency_changes_nothing() -> None:
    counters = ABCounters()
    with pytest.raises(ValueError, match="finite and >= 0"):
        counters.record_exposure(float("nan"))
    assert counters == ABCounters()


exposures = st.lists(
    st.tuples(st.floats(0.0, 5_000.0, allow_nan=False), st.booleans()), max_size=60
)


def _fed(rows: list[tuple[float, bool]]) -> ABCounters:
    counters = ABCounters()
    for latency, converted in rows:
        counters.record_exposure(latency)
        counters.record_outcome(converted)
    return counters


@settings(max_examples=80, deadline=None)
@given(left=exposures, right=exposures)
def test_merged_counters_equal_counters_of_all_rows(
    left: list[tuple[float, bool]], right: list[tuple[float, bool]]
) -> None:
    merged = _fed(left).merge(_fed(right)).to_dict()
    whole = _fed(left + right).to_dict()
    assert merged.pop("latency_sum") == pytest.approx(whole.pop("latency_sum"))
    assert merged == whole


@settings(max_examples=50, deadline=None)
@given(rows=exposures)
def test_counters_round_trip_through_json(rows: list[tuple[float, bool]]) -> None:
    counters = _fed(rows)
    restored = ABCounters.from_dict(json.loads(json.dumps(counters.to_dict(), allow_nan=False)))
    assert restored == counters
