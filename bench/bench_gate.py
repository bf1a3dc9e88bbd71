"""How long the pre-deploy gate takes on a demo-sized model.

A RandomForest (50 trees, n_jobs=1) trained on 5,000 seeded rows with 10 features is
gated on a 2,000-row validation set with 500 single-row latency runs, with itself as
the baseline (so the no-regression check runs too). Prints the median of 5 gate runs.

Run from the repository root: .venv/bin/python -m bench.bench_gate
"""

from __future__ import annotations

import statistics
import time

from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

from stream_app.lifecycle.gate import validate_for_deployment

SEED = 42
RUNS = 5
CONFIG = {
    "min_accuracy": 0.8,
    "min_precision": 0.8,
    "max_latency_ms": 50,
    "required_methods": ["predict", "predict_proba"],
    "input_shape": (None, 10),
    "min_recall": 0.8,
    "min_roc_auc": 0.85,
    "latency_runs": 500,
}


def main() -> None:
    X, y = make_classification(
        n_samples=7_000, n_features=10, n_informative=6, n_redundant=2, random_state=SEED
    )
    X_train, y_train, X_val, y_val = X[:5_000], y[:5_000], X[5_000:], y[5_000:]
    model = RandomForestClassifier(n_estimators=50, n_jobs=1, random_state=SEED)
    model.fit(X_train, y_train)

    wall, p95, throughput = [], [], []
    report = None
    for _ in range(RUNS):
        start = time.perf_counter()
        report = validate_for_deployment(model, X_val, y_val, CONFIG, baseline=model)
        wall.append(time.perf_counter() - start)
        p95.append(report.metrics["latency_p95_ms"] or 0.0)
        throughput.append(report.metrics["throughput_per_s"] or 0.0)
    assert report is not None

    print(f"gate passed: {report.passed}; checks: {', '.join(c.name for c in report.checks)}")
    print(f"accuracy {report.metrics['accuracy']:.4f}, roc_auc {report.metrics['roc_auc']:.4f}")
    print("| figure (median of 5 gate runs) | value |")
    print("|---|---|")
    print(
        f"| gate run time, 500 latency runs + 2,000-row batch + baseline | "
        f"{statistics.median(wall):.2f} s |"
    )
    print(f"| single-row predict p95 | {statistics.median(p95):.2f} ms |")
    print(f"| batch throughput (2,000 rows) | {statistics.median(throughput):,.0f} rows/s |")
    print(f"| all runs, gate time (s) | {', '.join(f'{w:.2f}' for w in wall)} |")


if __name__ == "__main__":
    main()
