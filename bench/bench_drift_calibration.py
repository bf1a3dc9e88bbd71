"""Drift calibration rates per component of compare(), plus its cost per window.

Run from the repository root:
    python -m bench.bench_drift_calibration

Prints the markdown table of BENCHMARKS.md "Monitoring: drift calibration". The n=1,000
column is the same seeded run that tests/unit/test_drift_calibration.py asserts on.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from stream_app.monitoring.drift import compare
from stream_app.monitoring.stats import WindowStats
from tests.utils.drift_data import COMPONENTS, calibrate, draw, reference_profile

SIZES = (100, 500, 1_000, 5_000)
SHIFTS = (1.0, 0.5, 0.25)
LABELS = {
    "mean_shift": "mean shift z > 2 alone",
    "psi": "PSI >= 0.1 alone",
    "chi2": "chi-square, Holm p < 0.01 alone",
    "compare": "**compare() (p < 0.01 and PSI >= 0.1, or z > 2)**",
}


def rates() -> None:
    profile = reference_profile()
    null = {n: calibrate(profile, n) for n in SIZES}
    shifted = {s: calibrate(profile, 1_000, shift_std=s) for s in SHIFTS}
    head = [f"false alarms, n={n:,}" for n in SIZES]
    head += [f"{s:g}-std shift caught, n=1,000" for s in SHIFTS]
    print("| component | " + " | ".join(head) + " |")
    print("|---|" + "---|" * len(head))
    for c in COMPONENTS:
        cells = [f"{null[n].false_alarms[c]}/100" for n in SIZES]
        cells += [f"{shifted[s].detections[c]}/100" for s in SHIFTS]
        print(f"| {LABELS[c]} | " + " | ".join(cells) + " |")
    alone = ", ".join(f"{s:g} std {shifted[s].named_alone}/100" for s in SHIFTS)
    print(f"\ncompare() named only the shifted feature: {alone}")


def cost(repeats: int = 200) -> None:
    profile = reference_profile()
    data = draw(np.random.default_rng(0), 1_000)
    empty = WindowStats.empty(profile)
    update_s, compare_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stats = empty.update(data)
        t1 = time.perf_counter()
        compare(profile, stats)
        t2 = time.perf_counter()
        update_s.append(t1 - t0)
        compare_s.append(t2 - t1)
    print(
        f"median over {repeats}: WindowStats.update(1,000 rows x 7 features) "
        f"{statistics.median(update_s) * 1e3:.2f} ms, compare() "
        f"{statistics.median(compare_s) * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    rates()
    cost()
