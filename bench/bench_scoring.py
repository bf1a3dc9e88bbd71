"""Batch scoring throughput vs per-event predict_proba, on the demo model.

Run from the repository root:  .venv/bin/python -m bench.bench_scoring

Trains the demo bundle (50 trees, n_jobs=1), loads it through the verifying loader and
times, in one run:

- per-event: ``model.predict_proba`` on one pre-built feature row at a time (the
  baseline; it does not even pay for feature building or the Prediction objects);
- the same with the forest's n_jobs=-1, to show why the served model uses n_jobs=1;
- ``BatchScorer.score`` on batches of 1, 32, 256 and 1024 requests (features, one
  predict_proba, validated Prediction objects).

Each figure is the median events/s over ``--repeats`` runs; the ratio is to per-event.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream_app.inference.features import build_features  # noqa: E402
from stream_app.inference.score import BatchScorer  # noqa: E402
from stream_app.lifecycle.bundle import load_bundle  # noqa: E402
from stream_app.lifecycle.demo_model import (  # noqa: E402
    synthetic_requests,
    train_demo_bundle,
)

BATCH_SIZES = (1, 32, 256, 1024)


def median_rates(paths: Sequence[Callable[[], int]], repeats: int) -> list[float]:
    """Median events/s of each path; each returns how many events it handled.

    The paths take turns within every repeat, so a burst of load on the shared machine
    hits all of them alike instead of skewing one.
    """
    for run in paths:
        run()  # warm-up: first-call allocations and lazy imports
    rates: list[list[float]] = [[] for _ in paths]
    for _ in range(repeats):
        for i, run in enumerate(paths):
            started = time.perf_counter()
            events = run()
            rates[i].append(events / (time.perf_counter() - started))
    return [statistics.median(r) for r in rates]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--per-event", type=int, default=300, help="events per per-event run")
    parser.add_argument("--events", type=int, default=4096, help="events per batched run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        info = train_demo_bundle(Path(tmp) / "demo", name="conversion", version="1.0.0", seed=0)
        bundle = load_bundle(info.directory)
    model = bundle.model
    requests = synthetic_requests(args.events, seed=42)
    rows = build_features(requests[: args.per_event])

    def per_event() -> int:
        for i in range(len(rows)):
            model.predict_proba(rows[i : i + 1])
        return len(rows)

    # The same trees, predicting through joblib's thread pool on every call.
    threaded = copy.deepcopy(model).set_params(n_jobs=-1)
    few = rows[:50]

    def per_event_threaded() -> int:
        for i in range(len(few)):
            threaded.predict_proba(few[i : i + 1])
        return len(few)

    scorer = BatchScorer(bundle)
    labels: list[tuple[str, int]] = [
        ("per-event predict_proba, n_jobs=1", 1),
        ("per-event predict_proba, n_jobs=-1", 1),
    ]
    paths: list[Callable[[], int]] = [per_event, per_event_threaded]
    for size in BATCH_SIZES:
        n = min(args.events, max(size * 4, args.per_event))
        batches = [requests[i : i + size] for i in range(0, n, size)]
        labels.append(("BatchScorer.score", size))
        paths.append(lambda b=batches: sum(len(scorer.score(x)) for x in b))
    rates = median_rates(paths, args.repeats)
    baseline = rates[0]

    print(f"repeats={args.repeats}  trees={model.n_estimators}  python={sys.version.split()[0]}")
    print("| path | batch size | median events/s | ms per call | vs per-event |")
    print("|---|---:|---:|---:|---:|")
    for (label, size), rate in zip(labels, rates, strict=True):
        call_ms = size / rate * 1000
        print(f"| {label} | {size} | {rate:,.0f} | {call_ms:.2f} | {rate / baseline:.1f}x |")


if __name__ == "__main__":
    main()
