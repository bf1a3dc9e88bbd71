"""Per-event cost of the request path: validate, rate-limit, scrub (µs per event).

Run from the repository root:

    python -m bench.bench_request_path [--events 20000] [--runs 15]

Each step is timed over ``--events`` events, ``--runs`` times; the table shows the
median and the fastest run in µs per event. The request is a realistic one: the eight
schema fields plus an e-mail, a customer_id and a free-text note holding a phone number
and a date. Budget (issue 3): validation + scrub + rate limit under 50 µs per event.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from schemas import PredictionRequest
from stream_app.inference.rate_limit import SlidingWindowLimiter
from stream_app.inference.scrub import ScrubPolicy, build_prediction_log, scrub
from stream_app.inference.validate import parse_request

REQUEST: dict[str, Any] = {
    "request_id": "3f2b9c1e-8d4a-4f6b-9e2d-7a1c5b8e0f42",
    "client_id": "checkout-web",
    "timestamp": "2026-01-31T12:00:00.250Z",
    "user_id": "USR0012345",
    "age": 34,
    "purchase_history": [19.99, 120.5, 42.0, 7.25, 310.0],
    "category_preference": "electronics",
    "session_duration_minutes": 12.5,
    "email": "jane.doe@example.com",
    "customer_id": "CUST-99812",
    "note": "Customer asked to be called back at +1 (555) 123-4567 after the delivery "
    "on 2026-01-31.",
}
RAW = json.dumps(REQUEST).encode()
RAW_INVALID = json.dumps({**REQUEST, "age": 7, "user_id": "bob"}).encode()
CLIENTS = [f"client-{i}" for i in range(1_000)]
T0 = 1_767_225_600.0
# The policy the app runs with: user_id pseudonymised with a key from the settings.
POLICY = ScrubPolicy(join_keys=frozenset({"user_id"}), pseudonym_key=b"bench-key-" * 4)
PREDICTION = {
    "model_name": "conversion",
    "model_version": "3",
    "variant": "A",
    "score": 0.73,
    "label": 1,
}


def _limiter_loop(events: int) -> Callable[[], None]:
    # 1,000 clients in turn, 1 ms of event time apart: each client sends one request a
    # second, so with 60 per 60 s its window is full and the busiest path is measured.
    limiter = SlidingWindowLimiter(max_requests=60, window_seconds=60.0)
    clock = [T0]

    def run() -> None:
        check, t = limiter.check, clock[0]
        for i in range(events):
            check(CLIENTS[i % 1_000], t + i * 0.001)
        clock[0] = t + events * 0.001

    return run


def _steps(events: int) -> dict[str, Callable[[], None]]:
    parsed = parse_request(RAW)
    assert isinstance(parsed, PredictionRequest)
    as_dict = parsed.model_dump(mode="json")
    now = datetime(2026, 1, 31, 12, tzinfo=UTC)
    limiter = _limiter_loop(events)
    full_limiter = SlidingWindowLimiter(max_requests=60, window_seconds=60.0)
    clock = [T0]

    def together() -> None:
        check, t = full_limiter.check, clock[0]
        for i in range(events):
            request = parse_request(RAW)
            assert isinstance(request, PredictionRequest)
            check(CLIENTS[i % 1_000], t + i * 0.001)
            scrub(as_dict, POLICY)
        clock[0] = t + events * 0.001  # event time moves on: no run replays the last

    return {
        "parse_request (valid)": _repeat(events, lambda: parse_request(RAW)),
        "limiter.check": limiter,
        "scrub (app policy)": _repeat(events, lambda: scrub(as_dict, POLICY)),
        "parse + check + scrub, one loop": together,
        "parse_request (schema error)": _repeat(events, lambda: parse_request(RAW_INVALID)),
        "build_prediction_log": _repeat(
            events,
            lambda: build_prediction_log("r", as_dict, PREDICTION, 3.2, now=now, policy=POLICY),
        ),
    }


def _repeat(events: int, call: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        for _ in range(events):
            call()

    return run


def measure(events: int, runs: int) -> list[tuple[str, float, float]]:
    """(step, median µs/event, fastest µs/event) for every step."""
    rows = []
    for name, step in _steps(events).items():
        step()  # warm-up: caches, allocator, first-call costs
        per_event = []
        for _ in range(runs):
            started = time.perf_counter_ns()
            step()
            per_event.append((time.perf_counter_ns() - started) / events / 1_000)
        rows.append((name, statistics.median(per_event), min(per_event)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    rows = measure(args.events, args.runs)
    print(f"{args.runs} runs x {args.events} events; µs per event")
    print("| step | median | fastest |")
    print("|---|---:|---:|")
    for name, median, fastest in rows:
        print(f"| {name} | {median:.2f} | {fastest:.2f} |")
    budget = sum(median for name, median, _ in rows[:3])
    print(f"\nsum of the three step medians: {budget:.2f} µs (budget 50)")


if __name__ == "__main__":
    main()
