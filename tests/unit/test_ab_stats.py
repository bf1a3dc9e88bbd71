"""The A/B tests' math: Yates chi-square and SRM equal scipy; the sequential p-value stays valid."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stream_app.monitoring.ab_stats import chi2_2x2, sequential_p_value, srm_p_value
from tests.utils.ab_simulation import simulate_looks

# (conv_a, n_a, conv_b, n_b): the classic case, small and large tables, |O - E| < 0.5,
# a zero cell, unbalanced arms.
DEFINED_TABLES = [
    (7, 15, 11, 15),
    (5, 5, 3, 12),
    (100, 1_000, 120, 1_000),
    (1, 2, 1, 2),
    (10, 20, 11, 21),
    (0, 30, 6, 30),
    (480, 5_000, 560, 5_100),
    (3, 7, 40, 41),
    (12_345, 100_000, 12_700, 100_000),
]


@pytest.mark.parametrize(("conv_a", "n_a", "conv_b", "n_b"), DEFINED_TABLES)
def test_chi2_equals_scipy_chi2_contingency(conv_a: int, n_a: int, conv_b: int, n_b: int) -> None:
    table = np.array([[conv_a, n_a - conv_a], [conv_b, n_b - conv_b]])
    expected_chi2, expected_p, _, _ = stats.chi2_contingency(table, correction=True)
    chi2, p_value = chi2_2x2(conv_a, n_a, conv_b, n_b)
    assert float(chi2) == pytest.approx(expected_chi2, rel=1e-12, abs=1e-12)
    assert float(p_value) == pytest.approx(expected_p, rel=1e-12)


def test_classic_table_values() -> None:
    chi2, p_value = chi2_2x2(7, 15, 11, 15)
    assert float(chi2) == pytest.approx(1.25)
    assert float(p_value) == pytest.approx(0.2636, abs=1e-4)


@pytest.mark.parametrize(
    ("conv_a", "n_a", "conv_b", "n_b"),
    [(0, 0, 0, 0), (0, 0, 3, 10), (0, 10, 0, 12), (10, 10, 12, 12), (4, 9, 0, 0)],
)
def test_tables_scipy_leaves_undefined_carry_no_evidence(
    conv_a: int, n_a: int, conv_b: int, n_b: int
) -> None:
    table = np.array([[conv_a, n_a - conv_a], [conv_b, n_b - conv_b]])
    try:
        with np.errstate(invalid="ignore"):
            scipy_p = stats.chi2_contingency(table, correction=True).pvalue
    except ValueError:  # an expected frequency of zero
        scipy_p = float("nan")
    assert np.isnan(scipy_p)
    chi2, p_value = chi2_2x2(conv_a, n_a, conv_b, n_b)
    assert (float(chi2), float(p_value)) == (0.0, 1.0)


def test_chi2_is_vectorised_over_tables() -> None:
    columns = np.array(DEFINED_TABLES).T
    chi2, p_value = chi2_2x2(*columns)
    for i, row in enumerate(DEFINED_TABLES):
        one_chi2, one_p = chi2_2x2(*row)
        assert chi2[i] == one_chi2 and p_value[i] == one_p


@pytest.mark.parametrize(
    ("n_a", "n_b", "share"),
    [(5_000, 5_000, 0.5), (5_200, 4_800, 0.5), (5_400, 4_600, 0.5), (700, 300, 0.3), (10, 13, 0.5)],
)
def test_srm_equals_scipy_chisquare(n_a: int, n_b: int, share: float) -> None:
    total = n_a + n_b
    expected = stats.chisquare([n_a, n_b], [total * (1 - share), total * share]).pvalue
    assert float(srm_p_value(n_a, n_b, share)) == pytest.approx(expected, rel=1e-12)


def test_srm_without_exposures_is_one() -> None:
    assert float(srm_p_value(0, 0, 0.5)) == 1.0


@pytest.mark.parametrize("share", [0.0, 1.0, -0.2, 1.2])
def test_srm_share_out_of_range(share: float) -> None:
    with pytest.raises(ValueError, match=r"expected_b_share must be in \(0, 1\)"):
        srm_p_value(10, 10, share)


@pytest.mark.parametrize(
    ("conv_a", "n_a", "conv_b", "n_b"), [(0, 0, 0, 0), (0, 0, 5, 10), (0, 50, 0, 50), (9, 9, 9, 9)]
)
def test_sequential_p_without_evidence_is_one(conv_a: int, n_a: int, conv_b: int, n_b: int) -> None:
    assert float(sequential_p_value(conv_a, n_a, conv_b, n_b)) == 1.0


@pytest.mark.parametrize("mixing_sd", [0.0, -0.1, float("nan")])
def test_sequential_mixing_sd_must_be_positive(mixing_sd: float) -> None:
    with pytest.raises(ValueError, match="mixing_sd must be > 0"):
        sequential_p_value(1, 10, 2, 10, mixing_sd=mixing_sd)


batches = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(batches=batches)
def test_sequential_p_never_increases_over_looks(batches: list[tuple[int, int, int, int]]) -> None:
    totals = np.zeros(4)
    previous = 1.0
    for n_a, conv_a_raw, n_b, conv_b_raw in batches:
        totals += (min(conv_a_raw, n_a), n_a, min(conv_b_raw, n_b), n_b)
        current = float(sequential_p_value(*totals, previous=previous))
        assert 0.0 <= current <= previous
        assert current == min(previous, float(sequential_p_value(*totals)))
        previous = current


def test_sequential_p_detects_a_clear_difference() -> None:
    assert float(sequential_p_value(1_000, 10_000, 1_200, 10_000)) < 0.001


def test_aa_peeking_inflates_the_fixed_test_but_not_the_sequential_one() -> None:
    """200 seeded A/A experiments, each read 50 times at alpha 0.05 (figures in BENCHMARKS.md)."""
    outcome = simulate_looks(seed=2024, experiments=200, looks=50)
    fixed_ever, sequential_ever, fixed_last = outcome.rates()
    assert sequential_ever <= 0.08
    assert fixed_ever > 0.15
    # One look at the end is a fair test: the inflation comes from peeking.
    assert fixed_last <= 0.08


def test_sequential_test_has_power_against_a_real_lift() -> None:
    outcome = simulate_looks(seed=2024, experiments=200, looks=50, rate_a=0.10, rate_b=0.13)
    _, sequential_ever, _ = outcome.rates()
    assert sequential_ever >= 0.9
