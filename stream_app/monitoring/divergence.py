"""Distribution comparisons on bin counts: PSI, chi-square homogeneity, p-value corrections.

Everything here works on count vectors over the same bins (the reference profile's
bins or categories), which is all a window keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as scipy_stats

__all__ = ["adjust_p_values", "psi", "smoothed_proportions", "two_sample_chi2"]


def smoothed_proportions(counts: ArrayLike, epsilon: float) -> NDArray[np.float64]:
    """Proportions with ``epsilon`` added to each and renormalised, so none is zero.

    Additive smoothing keeps the PSI finite when a bin is empty on one side, and the
    renormalisation keeps the proportions a distribution. An all-zero vector is uniform.

    Example:
        >>> smoothed_proportions([3, 1, 0], 0.0).tolist()
        [0.75, 0.25, 0.0]
        >>> [round(float(p), 6) for p in smoothed_proportions([3, 1, 0], 1e-4)]
        [0.749875, 0.250025, 0.0001]
    """
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    p = c / total if total > 0 else np.full(c.size, 1.0 / c.size)
    return (p + epsilon) / (1.0 + epsilon * c.size)


def psi(reference_counts: ArrayLike, window_counts: ArrayLike, epsilon: float = 1e-4) -> float:
    """Population stability index: sum over bins of (w - r) * ln(w / r), smoothed.

    Example:
        >>> psi([50, 50], [50, 50])
        0.0
        >>> round(psi([50, 50], [80, 20]), 4)
        0.4157
    """
    r = smoothed_proportions(reference_counts, epsilon)
    w = smoothed_proportions(window_counts, epsilon)
    return float(np.sum((w - r) * np.log(w / r)))


def two_sample_chi2(reference_counts: ArrayLike, window_counts: ArrayLike) -> tuple[float, float]:
    """Chi-square test that two count vectors come from one distribution (a 2 x k table).

    A two-sample test rather than goodness of fit against the reference proportions,
    because those proportions are themselves estimated from a finite sample. Bins
    empty on both sides are dropped; with fewer than two bins left, or an empty side,
    there is nothing to test and the result is (0.0, 1.0). Equals
    ``scipy.stats.chi2_contingency(table, correction=False)``.

    Example:
        >>> stat, p = two_sample_chi2([50, 50], [80, 20])
        >>> round(stat, 3), round(p, 6)
        (19.78, 9e-06)
    """
    table = np.vstack([np.asarray(reference_counts), np.asarray(window_counts)])
    table = table[:, table.sum(axis=0) > 0].astype(np.float64)
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or (rows == 0).any():
        return 0.0, 1.0
    expected = np.outer(rows, table.sum(axis=0)) / rows.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(scipy_stats.chi2.sf(statistic, table.shape[1] - 1))


def adjust_p_values(
    p_values: Sequence[float], method: Literal["holm", "bonferroni"] = "holm"
) -> list[float]:
    """Family-wise corrected p-values (Holm step-down or Bonferroni), in input order.

    Example:
        >>> adjust_p_values([0.01, 0.04, 0.03], "holm")
        [0.03, 0.06, 0.06]
        >>> adjust_p_values([0.01, 0.04, 0.03], "bonferroni")
        [0.03, 0.12, 0.09]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if method == "bonferroni":
        return [float(v) for v in np.minimum(1.0, p * m)]
    if method != "holm":
        raise ValueError(f"method must be 'holm' or 'bonferroni', got {method!r}")
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return [float(v) for v in adjusted]
