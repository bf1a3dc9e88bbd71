"""PSI, the two-sample chi-square on bin counts, and p-value corrections."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from stream_app.monitoring.divergence import (
    adjust_p_values,
    psi,
    smoothed_proportions,
    two_sample_chi2,
)


def test_psi_matches_the_formula() -> None:
    r, w = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    expected = float(np.sum((w - r) * np.log(w / r)))
    assert psi([50, 30, 20], [20, 30, 50], epsilon=1e-12) == pytest.approx(expected, rel=1e-9)


def test_psi_is_zero_for_equal_proportions_and_symmetric() -> None:
    assert psi([10, 20, 30], [100, 200, 300]) == pytest.approx(0.0, abs=1e-15)
    assert psi([10, 20, 30], [30, 20, 10]) == pytest.approx(psi([30, 20, 10], [10, 20, 30]))


def test_empty_bins_are_smoothed_to_a_finite_psi() -> None:
    eps = 1e-4
    value = psi([100, 0], [50, 50], epsilon=eps)
    r = np.array([1 + eps, eps]) / (1 + 2 * eps)
    w = np.array([0.5 + eps, 0.5 + eps]) / (1 + 2 * eps)
    assert math.isfinite(value)
    assert value == pytest.approx(float(np.sum((w - r) * np.log(w / r))), rel=1e-12)


def test_smoothed_proportions_sum_to_one_and_empty_is_uniform() -> None:
    p = smoothed_proportions([7, 0, 3], 1e-3)
    assert p.sum() == pytest.approx(1.0, rel=1e-12)
    assert (p > 0).all()
    assert smoothed_proportions([0, 0], 1e-4).tolist() == [0.5, 0.5]


@pytest.mark.parametrize("seed", range(5))
def test_chi2_equals_scipy_contingency(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.integers(50, 2_000, 10)
    window = rng.integers(5, 200, 10)
    statistic, p_value = two_sample_chi2(reference, window)
    expected = chi2_contingency(np.vstack([reference, window]), correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-8, abs=1e-300)


def test_chi2_drops_bins_empty_on_both_sides() -> None:
    with_gap = two_sample_chi2([30, 0, 70, 0], [10, 0, 5, 0])
    assert with_gap == pytest.approx(two_sample_chi2([30, 70], [10, 5]))


@pytest.mark.parametrize(
    ("reference", "window"),
    [([10, 20], [0, 0]), ([0, 0], [1, 2]), ([10, 0], [5, 0]), ([5], [7])],
)
def test_chi2_without_anything_to_compare_is_not_significant(
    reference: list[int], window: list[int]
) -> None:
    assert two_sample_chi2(reference, window) == (0.0, 1.0)


def test_holm_step_down() -> None:
    p = [0.04, 0.001, 0.02, 0.5]
    # sorted 0.001, 0.02, 0.04, 0.5 times 4, 3, 2, 1 -> 0.004, 0.06, 0.08, 0.5 (running max)
    assert adjust_p_values(p, "holm") == pytest.approx([0.08, 0.004, 0.06, 0.5])


def test_bonferroni_and_holm_bounds() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.2, 9).tolist()
    holm, bonferroni = adjust_p_values(p, "holm"), adjust_p_values(p, "bonferroni")
    assert bonferroni == pytest.approx([min(1.0, 9 * v) for v in p])
    assert all(v <= h <= b for v, h, b in zip(p, holm, bonferroni, strict=True))
    assert adjust_p_values([], "holm") == []


def test_unknown_correction_is_refused() -> None:
    with pytest.raises(ValueError, match="'holm' or 'bonferroni'"):
        adjust_p_values([0.1], "fdr")  # type: ignore[arg-type]
