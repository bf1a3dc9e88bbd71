"""The longest event-loop stall while the intake step decides a batch of 64 requests.

Run from the repository root:  .venv/bin/python -m bench.bench_loop_stall [--repeats 21]

The real intake step (routing, validation, the rate limit, scoring, what each fate sends)
is run by its batch driver in this process, with an in-memory store and sink instead of
Kafka, so only the step's own work is on the loop. While it decides a batch, a watcher
task wakes every millisecond and records the longest gap beyond that millisecond: how long
the loop could not answer /livez, a heartbeat or a fetch. Three batches of 64, taking
turns within each repeat:

- plain: 64 small valid requests of 64 clients (all scored);
- worst, scored: 64 valid requests of 64 clients at the caps a request may reach
  (1,000 purchases, 64 extra fields, 16 KiB of extras, ids at their longest);
- worst, throttled: the same requests from one client with a limit of 2, so 62 are
  refused by the limiter and their throttled copies built.

Prints the median and largest stall of each (ms) and the ratio of each median to plain's.
Goal: the longest stall under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents import build_pipeline  # noqa: E402
from agents.driver import BatchDriver  # noqa: E402
from bench.bench_state import Memory, Watcher  # noqa: E402
from schemas.events import (  # noqa: E402
    DEFAULT_MAX_PURCHASE_HISTORY,
    MAX_CLIENT_ID_LENGTH,
    MAX_REQUEST_ID_LENGTH,
)
from stream_app.app import StreamApp, create_app  # noqa: E402
from stream_app.config import load_settings  # noqa: E402
from stream_app.lifecycle.bundle import load_bundle  # noqa: E402
from stream_app.lifecycle.demo_model import train_demo_bundle  # noqa: E402
from stream_app.partitioner import default_partition  # noqa: E402

BATCH = 64
PARTITIONS = 1  # every client on partition 0: no request is re-keyed
# What each batch must send (topic -> messages), or the stall is not the one described.
EXPECTED = {
    "plain": Counter({"predictions": 64, "prediction-logs": 64}),
    "worst, scored": Counter({"predictions": 64, "prediction-logs": 64}),
    "worst, throttled": Counter({"predictions": 2, "prediction-logs": 2, "requests-throttled": 62}),
}


def _request(rid: str, client: str, *, worst: bool) -> bytes:
    body: dict[str, Any] = {
        "request_id": rid, "client_id": client, "user_id": "USR00001", "age": 30,
        "purchase_history": [12.5], "category_preference": "home",
        "session_duration_minutes": 4.0,
    }  # fmt: skip
    if worst:
        body["purchase_history"] = [float(i % 997 + 1) for i in range(DEFAULT_MAX_PURCHASE_HISTORY)]
        body["user_id"] = "USR".ljust(128, "0")
        # 64 extras of 240 characters: 15,937 bytes as compact JSON, under the 16 KiB cap.
        body.update({f"x{i:02d}": "e" * 240 for i in range(64)})
    return json.dumps(body).encode()


def _batch(app: StreamApp, run: int, kind: str) -> list[Any]:
    topic = app.kafka_topics.prediction_requests.get_topic_name()
    worst = kind != "plain"
    records = []
    for i in range(BATCH):
        rid = f"{run:04d}-{i:02d}-".ljust(MAX_REQUEST_ID_LENGTH if worst else 12, "r")
        client = "one" if kind == "worst, throttled" else f"c{run}-{i}"
        if worst:
            client = client.ljust(MAX_CLIENT_ID_LENGTH, "c")
        assert default_partition(client.encode(), PARTITIONS) == 0  # noqa: S101
        message = SimpleNamespace(topic=topic, partition=0, offset=run * BATCH + i,
                                  timestamp=time.time(), headers=None)  # fmt: skip
        value = _request(rid, client, worst=worst)
        records.append(SimpleNamespace(key=client.encode(), value=value, message=message))
    return records


async def _stall(driver: BatchDriver[Any, Any, Any], batch: list[Any]) -> tuple[float, Memory]:
    """The longest gap (s) beyond a millisecond between the watcher's wake-ups while
    ``batch`` runs, and the store and sink it ran with (a fresh table: every client
    starts clean)."""
    memory = Memory(dicts=True)
    driver.store = driver.sink = memory
    async with Watcher() as watcher:
        await driver.process(batch)
    return watcher.worst, memory


async def _run(repeats: int) -> dict[str, list[float]]:
    settings = load_settings(
        {}, app_id="bench-stall", partitions=PARTITIONS, rate_limit_max_requests=2
    )
    app = build_pipeline(create_app(settings))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "conversion-1.0.0"
        train_demo_bundle(directory, name="conversion", version="1.0.0")
        app.serving.install(load_bundle(directory), None)
    driver: BatchDriver[Any, Any, Any] = app.drivers["intake"]
    kinds = ("plain", "worst, scored", "worst, throttled")
    stalls: dict[str, list[float]] = {k: [] for k in kinds}
    run = 0
    for repeat in range(repeats + 1):  # the first round warms up and is left out
        for kind in kinds:
            run += 1
            stall, memory = await _stall(driver, _batch(app, run, kind))
            if memory.sent != EXPECTED[kind]:
                raise SystemExit(f"{kind}: sent {dict(memory.sent)}, not {EXPECTED[kind]}")
            if repeat:
                stalls[kind].append(stall)
    return stalls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    stalls = asyncio.run(_run(args.repeats))
    base = statistics.median(stalls["plain"])
    print(f"longest event-loop stall per batch of {BATCH}, {args.repeats} repeats")
    print(f"{'batch':<18} {'median':>9} {'max':>9} {'ratio':>7}")
    for kind, values in stalls.items():
        median = statistics.median(values)
        print(f"{kind:<18} {median * 1000:>7.1f}ms {max(values) * 1000:>7.1f}ms "
              f"{median / base:>7.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
