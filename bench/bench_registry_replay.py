"""Replaying the model registry's log: the builder against one ``apply`` per event.

Run from the repository root:  .venv/bin/python -m bench.bench_registry_replay

A log of N events for one model (each version registered, then promoted) is folded two
ways, taking turns within each repeat: with :class:`RegistryBuilder` (what ``fold`` and a
worker's registry follower use), and with ``apply`` once per event, which copies the
model's record each time (what the follower did before). Prints the median microseconds
per event for N = 1,000, 4,000 and 16,000: flat for a linear replay, growing with N for a
quadratic one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream_app.lifecycle.registry_state import (  # noqa: E402
    RegistryBuilder,
    RegistryEvent,
    RegistryState,
    apply,
)

SIZES = (1_000, 4_000, 16_000)
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _log(events: int) -> list[RegistryEvent]:
    log: list[RegistryEvent] = []
    previous = None
    for i in range(events // 2):
        version = f"1.{i}.0"
        payload = {"path": f"models/m/{version}", "digest": "0" * 64, "metrics": {"auc": 0.8}}
        log.append(RegistryEvent("registered", "m", version, AT, payload))
        log.append(RegistryEvent("promoted", "m", version, AT, {"previous": previous}))
        previous = version
    return log


def _builder(log: list[RegistryEvent]) -> RegistryState:
    builder = RegistryBuilder()
    for event in log:
        builder.apply(event)
    return builder.state()


def _one_by_one(log: list[RegistryEvent]) -> RegistryState:
    state = RegistryState(models={})
    for event in log:
        state = apply(state, event)
    return state


def _median_us(ways: list[Callable[[], RegistryState]], events: int, repeats: int) -> list[float]:
    times: list[list[float]] = [[] for _ in ways]
    for _ in range(repeats):
        for i, way in enumerate(ways):
            started = time.perf_counter()
            way()
            times[i].append((time.perf_counter() - started) / events * 1e6)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'events':>8} {'builder us/event':>17} {'apply us/event':>15} {'ratio':>7}")
    for events in SIZES:
        log = _log(events)
        assert _builder(log) == _one_by_one(log)  # noqa: S101 - the two must agree
        ways = [lambda log=log: _builder(log), lambda log=log: _one_by_one(log)]
        fast, slow = _median_us(ways, events, args.repeats)
        print(f"{events:>8,} {fast:>17.2f} {slow:>15.2f} {slow / fast:>7.1f}")


if __name__ == "__main__":
    main()
