"""The tests behind the A/B report, vectorised over arrays of counts.

Each function takes conversion and exposure counts per arm (scalars or same-shape arrays)
and returns arrays, so the report and the seeded calibration test share one implementation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = ["DEFAULT_MIXING_SD", "chi2_2x2", "sequential_p_value", "srm_p_value"]

Floats = npt.NDArray[np.float64]

# The prior's spread on the difference of conversion rates, about the lift worth detecting:
# 2 points suits base rates near 10 %. Smaller values favour small lifts, larger ones large
# lifts; the false-positive bound holds for any value (bench/bench_ab_sequential.py compares).
DEFAULT_MIXING_SD = 0.02


def _counts(*values: npt.ArrayLike) -> list[Floats]:
    return [np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(*values)]


def chi2_2x2(
    conv_a: npt.ArrayLike, n_a: npt.ArrayLike, conv_b: npt.ArrayLike, n_b: npt.ArrayLike
) -> tuple[Floats, Floats]:
    """Yates-corrected chi-square statistic and p-value of the 2x2 conversion table.

    The table is ``[[conv_a, n_a - conv_a], [conv_b, n_b - conv_b]]``; the result equals
    ``scipy.stats.chi2_contingency(table, correction=True)`` wherever scipy defines it. Where
    scipy raises or gives NaN (an empty arm, or no conversions or only conversions in both
    arms) the table carries no evidence: statistic 0.0, p-value 1.0.

    Example:
        >>> chi2, p = chi2_2x2(7, 15, 11, 15)
        >>> float(chi2), round(float(p), 4)
        (1.25, 0.2636)
    """
    ca, na, cb, nb = _counts(conv_a, n_a, conv_b, n_b)
    total, converted = na + nb, ca + cb
    defined = (na > 0) & (nb > 0) & (converted > 0) & (converted < total)
    with np.errstate(divide="ignore", invalid="ignore"):
        # In a 2x2 table every cell is off its expected count by the same |O - E|.
        deviation = np.abs(ca * (nb - cb) - cb * (na - ca)) / total
        inverse_expected_sum = total**3 / (na * nb * converted * (total - converted))
        # scipy moves each cell by 0.5 towards its expectation, but never past it.
        statistic = np.maximum(deviation - 0.5, 0.0) ** 2 * inverse_expected_sum
    statistic = np.where(defined, statistic, 0.0)
    return statistic, np.asarray(stats.chi2.sf(statistic, 1), dtype=np.float64)


def srm_p_value(n_a: npt.ArrayLike, n_b: npt.ArrayLike, expected_b_share: float) -> Floats:
    """Sample-ratio mismatch: chi-square goodness of fit of (n_a, n_b) to the planned split.

    Equals ``scipy.stats.chisquare([n_a, n_b], [N (1 - s), N s])``; 1.0 with no exposures.

    Example:
        >>> round(float(srm_p_value(5_000, 5_000, 0.5)), 3), float(srm_p_value(0, 0, 0.5))
        (1.0, 1.0)
        >>> bool(srm_p_value(5_400, 4_600, 0.5) < 0.001)
        True
    """
    if not 0.0 < expected_b_share < 1.0:
        raise ValueError(f"expected_b_share must be in (0, 1), got {expected_b_share!r}")
    na, nb = _counts(n_a, n_b)
    total = na + nb
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_a, expected_b = total * (1.0 - expected_b_share), total * expected_b_share
        statistic = (na - expected_a) ** 2 / expected_a + (nb - expected_b) ** 2 / expected_b
    statistic = np.where(total > 0, statistic, 0.0)
    return np.asarray(stats.chi2.sf(statistic, 1), dtype=np.float64)


def sequential_p_value(
    conv_a: npt.ArrayLike,
    n_a: npt.ArrayLike,
    conv_b: npt.ArrayLike,
    n_b: npt.ArrayLike,
    *,
    mixing_sd: float = DEFAULT_MIXING_SD,
    previous: npt.ArrayLike = 1.0,
) -> Floats:
    """Always-valid p-value for "B converts differently from A" (mixture SPRT).

    The idea is the mixture sequential probability ratio test of Johari, Pekelis and Walsh
    ("Always valid inference", 2017). Under "no difference" the observed difference of rates
    d is close to normal with variance V (pooled rate, ``p(1-p)(1/n_a + 1/n_b)``). Average the
    likelihood ratio of "difference theta" against "difference 0" over a normal prior
    theta ~ N(0, tau^2), tau = ``mixing_sd``::

        L = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))

    With 1/V read as the information gathered so far, L is the normal-mixture martingale of
    a Brownian motion, and by Ville's inequality it exceeds 1/alpha at any look with
    probability at most alpha when there is no difference. So ``min(previous, 1/L)`` may be
    read after every batch without inflating false positives. The guarantee holds for the
    normal approximation; the seeded A/A test in tests/unit checks it on Bernoulli data.

    ``previous`` is the value returned at the previous look (1.0 before the first): the
    result is its running minimum, never larger than ``previous``. The caller stores it
    between looks. An empty arm or a pooled rate of 0 or 1 carries no evidence (1/L = 1).

    Example:
        >>> round(float(sequential_p_value(7, 15, 11, 15)), 3)
        0.993
        >>> p = float(sequential_p_value(1_000, 10_000, 1_200, 10_000))
        >>> p < 0.001
        True
        >>> float(sequential_p_value(500, 5_000, 500, 5_000, previous=p)) == p
        True
    """
    if not mixing_sd > 0.0:
        raise ValueError(f"mixing_sd must be > 0, got {mixing_sd!r}")
    ca, na, cb, nb, before = _counts(conv_a, n_a, conv_b, n_b, previous)
    tau2 = mixing_sd**2
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (ca + cb) / (na + nb)
        variance = pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)
        difference = cb / nb - ca / na
        log_ratio = 0.5 * np.log(variance / (variance + tau2)) + tau2 * difference**2 / (
            2.0 * variance * (variance + tau2)
        )
    defined = (na > 0) & (nb > 0) & (variance > 0)
    current = np.where(defined, np.exp(np.minimum(0.0, -np.where(defined, log_ratio, 0.0))), 1.0)
    return np.minimum(current, before)
