"""Seeded simulation of an A/B test read after every batch (used by tests and bench/)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream_app.monitoring.ab_stats import DEFAULT_MIXING_SD, chi2_2x2, sequential_p_value

__all__ = ["LookOutcome", "simulate_looks"]


@dataclass(frozen=True)
class LookOutcome:
    """Per simulated experiment: did any look declare significance, and did the last."""

    fixed_ever: npt.NDArray[np.bool_]
    sequential_ever: npt.NDArray[np.bool_]
    fixed_last: npt.NDArray[np.bool_]

    def rates(self) -> tuple[float, float, float]:
        """Shares of experiments: (fixed ever, sequential ever, fixed at the last look)."""
        return (
            float(self.fixed_ever.mean()),
            float(self.sequential_ever.mean()),
            float(self.fixed_last.mean()),
        )


def simulate_looks(
    *,
    seed: int,
    experiments: int = 200,
    looks: int = 50,
    users_per_look: int = 200,
    rate_a: float = 0.10,
    rate_b: float = 0.10,
    alpha: float = 0.05,
    mixing_sd: float = DEFAULT_MIXING_SD,
) -> LookOutcome:
    """Run ``experiments`` tests at once; each look adds ``users_per_look`` split 50/50."""
    rng = np.random.default_rng(seed)
    n_b = rng.binomial(users_per_look, 0.5, size=(experiments, looks))
    n_a = users_per_look - n_b
    conv_a = rng.binomial(n_a, rate_a)
    conv_b = rng.binomial(n_b, rate_b)
    totals = [np.cumsum(x, axis=1) for x in (conv_a, n_a, conv_b, n_b)]
    _, fixed_p = chi2_2x2(*totals)
    # The running minimum at the last look is the smallest value at any look.
    single_look = sequential_p_value(*totals, mixing_sd=mixing_sd)
    return LookOutcome(
        fixed_ever=(fixed_p < alpha).any(axis=1),
        sequential_ever=single_look.min(axis=1) < alpha,
        fixed_last=fixed_p[:, -1] < alpha,
    )
