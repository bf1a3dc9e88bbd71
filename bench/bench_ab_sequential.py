"""A/B sequential testing: false-positive rate under peeking and power, seeded.

Run from the repository root: ``python -m bench.bench_ab_sequential``. Each row simulates
``SEEDS x 200`` experiments, each read after every one of 50 batches of 200 users split
50/50, and prints the shares that declare significance at alpha 0.05 (a markdown table).
"""

from __future__ import annotations

import numpy as np

from stream_app.monitoring.ab_stats import DEFAULT_MIXING_SD
from tests.utils.ab_simulation import simulate_looks

SEEDS = range(10)
SCENARIOS = [
    # (label, rate A, rate B, mixing sd)
    ("A/A", 0.10, 0.10, DEFAULT_MIXING_SD),
    ("A/A", 0.30, 0.30, DEFAULT_MIXING_SD),
    ("A/A", 0.10, 0.10, 0.05),
    ("lift +1 pt", 0.10, 0.11, DEFAULT_MIXING_SD),
    ("lift +2 pt", 0.10, 0.12, DEFAULT_MIXING_SD),
    ("lift +3 pt", 0.10, 0.13, DEFAULT_MIXING_SD),
    ("lift +2 pt", 0.10, 0.12, 0.05),
]


def main() -> None:
    """Print one markdown row per scenario."""
    print(
        "| scenario | rate A | rate B | mixing sd | fixed, any of 50 looks "
        "| sequential, any look | fixed, last look only |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, rate_a, rate_b, mixing_sd in SCENARIOS:
        rates = np.array(
            [
                simulate_looks(seed=seed, rate_a=rate_a, rate_b=rate_b, mixing_sd=mixing_sd).rates()
                for seed in SEEDS
            ]
        )
        fixed_ever, sequential_ever, fixed_last = rates.mean(axis=0)
        print(
            f"| {label} | {rate_a:.2f} | {rate_b:.2f} | {mixing_sd} | {fixed_ever:.3f} "
            f"| {sequential_ever:.3f} | {fixed_last:.3f} |"
        )


if __name__ == "__main__":
    main()
