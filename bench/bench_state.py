"""State after a million requests: rows and bytes of the limiter and join tables, and the
longest event-loop stall, expiry included.

Run from the repository root:  .venv/bin/python -m bench.bench_state [--requests 1000000]

The real intake and outcome-join steps run by their batch drivers in this process, with
in-memory stores and sinks instead of Kafka: requests from ``--clients`` distinct clients
arrive at ``--rate`` per second of broker time (the clock the limiter and expiry use) in
batches of 256; the exposures intake sends are fed to the join as its input. A watcher task
wakes every millisecond and records the longest gap beyond it. After the stream, batches
of one request each, a window apart, let the limiter expire every idle client (at most
``EXPIRE_PER_BATCH`` a batch). Prints rows and bytes (JSON) of each table at the end of
the stream and after the expiry, the bound the settings give, and the longest stall.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents import build_pipeline  # noqa: E402
from agents.driver import EXPIRE_PER_BATCH, BatchDriver, Message  # noqa: E402
from stream_app.app import create_app  # noqa: E402
from stream_app.config import load_settings  # noqa: E402
from stream_app.lifecycle.bundle import load_bundle  # noqa: E402
from stream_app.lifecycle.demo_model import train_demo_bundle  # noqa: E402
from stream_app.memory import freeze_start  # noqa: E402

BATCH = 256
T0 = time.time() - 30 * 86_400  # a month back: every stamp is behind the broker's clock
TICK = 0.001


class Memory:
    """A driver's store and sink in memory; keeps what was sent to ``keep``. Rows are
    held as their JSON bytes, as the worker's tables hold them, or as dicts (``dicts``),
    as they were held before."""

    def __init__(self, keep: str = "", *, dicts: bool = False) -> None:
        self.rows: dict[bytes, Any] = {}
        self.keep = keep
        self.kept: list[Message] = []
        self.sent: Counter[str] = Counter()  # outputs by topic suffix (derived left out)
        self.dicts = dicts

    def get(self, partition: int, key: bytes) -> Any:
        row = self.rows.get(key)
        return row if row is None or self.dicts else json.loads(row)

    async def write(self, rows: Sequence[tuple[int, bytes, Any]]) -> None:
        for _, key, row in rows:
            if row is None:
                self.rows.pop(key, None)
            else:
                self.rows[key] = row if self.dicts else json.dumps(row).encode()

    def recovered(self) -> list[tuple[int, bytes]]:
        return []

    async def send_all(self, messages: Sequence[tuple[int, Message]]) -> list[None]:
        self.kept.extend(m for _, m in messages if m.topic == self.keep)
        self.sent.update(m.topic.rsplit(".", 1)[-1] for _, m in messages if not m.derived)
        return [None] * len(messages)

    def size(self) -> tuple[int, int]:
        """Rows, and bytes of keys and JSON rows."""
        encoded = (
            r if isinstance(r, bytes) else json.dumps(r).encode() for r in self.rows.values()
        )
        return len(self.rows), sum(len(k) for k in self.rows) + sum(map(len, encoded))


def _record(topic: str, offset: int, key: bytes, value: bytes, at: float) -> Any:
    message = SimpleNamespace(topic=topic, partition=0, offset=offset, timestamp=at, headers=None)
    return SimpleNamespace(key=key, value=value, message=message)


def _request(i: int, client: str, at: float) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e6):06d}Z"
    return json.dumps({
        "request_id": f"r{i:08d}", "client_id": client, "user_id": f"USR{i % 5000:05d}",
        "age": 20 + i % 50, "purchase_history": [12.5, 3.0], "category_preference": "home",
        "session_duration_minutes": 4.0, "timestamp": stamp,
    }).encode()  # fmt: skip


class Watcher:
    """The longest gap beyond TICK between wake-ups while it runs."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not self._done.is_set():
            await asyncio.sleep(TICK)
            now = loop.time()
            self.worst = max(self.worst, now - last - TICK)
            last = now

    async def __aenter__(self) -> Watcher:
        self._task = asyncio.create_task(self._watch())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._done.set()
        assert self._task is not None  # noqa: S101
        await self._task


async def _run(requests: int, clients: int, rate: float, dicts: bool) -> None:
    settings = load_settings(
        {}, app_id="bench-state", partitions=1, rate_limit_max_requests=100_000,
        ab_outcome_ttl_seconds=600,
    )  # fmt: skip
    app = build_pipeline(create_app(settings))
    freeze_start()  # as a worker does once it is built (StreamApp.on_first_start)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "conversion-1.0.0"
        train_demo_bundle(directory, name="conversion", version="1.0.0")
        app.serving.install(load_bundle(directory), None)
    topics = app.kafka_topics
    source = topics.prediction_requests.get_topic_name()
    exposures = topics.exposures.get_topic_name()
    intake: BatchDriver[Any, Any, Any] = app.drivers["intake"]
    join: BatchDriver[Any, Any, Any] = app.drivers["ab-join"]
    limiter, joined = Memory(keep=exposures, dicts=dicts), Memory(dicts=dicts)
    intake.store = intake.sink = limiter
    join.store = join.sink = joined
    window, ttl = settings.rate_limit_window_seconds, settings.ab_outcome_ttl_seconds
    started = time.perf_counter()
    offset = 0
    async with Watcher() as stream_watch:
        for first in range(0, requests, BATCH):
            batch = []
            for i in range(first, min(first + BATCH, requests)):
                at = T0 + i / rate
                client = f"client-{i % clients:06d}"
                batch.append(_record(source, i, client.encode(), _request(i, client, at), at))
            await intake.process(batch)
            sent = limiter.kept
            limiter.kept = []
            await join.process([_record(exposures, offset + n, m.key or b"", m.value or b"",
                                        T0 + (first + n) / rate)
                                for n, m in enumerate(sent)])  # fmt: skip
            offset += len(sent)
    elapsed = time.perf_counter() - started
    end = T0 + requests / rate
    after_stream = {"rate-limits": limiter.size(), "ab-join": joined.size()}
    async with Watcher() as expiry_watch:
        n = requests
        while limiter.size()[0] > 1:
            end += window / 4
            client = "late"
            await intake.process([_record(source, n, client.encode(), _request(n, client, end),
                                          end)])  # fmt: skip
            n += 1
    print(f"{requests:,} requests from {clients:,} clients at {rate:,.0f}/s of broker time "
          f"({requests / rate:,.0f} s); {requests / elapsed:,.0f} requests/s here")  # fmt: skip
    print(f"rate limit window {window:g} s, join TTL {ttl:g} s, "
          f"at most {EXPIRE_PER_BATCH} keys expired per batch")  # fmt: skip
    for name, (rows, size) in after_stream.items():
        print(f"{name:<12} after the stream: {rows:>9,} rows {size / 1e6:>8.1f} MB "
              f"({size / max(rows, 1):,.0f} bytes a row)")  # fmt: skip
    rows, size = limiter.size()
    print(f"rate-limits  after expiry:     {rows:>9,} rows {size / 1e6:>8.3f} MB "
          f"({n - requests} batches)")  # fmt: skip
    print(f"bound: rate-limits <= clients seen in 1.125 windows = "
          f"{min(clients, int(1.125 * window * rate)):,}; ab-join <= requests in 1.125 TTLs "
          f"= {min(requests, int(1.125 * ttl * rate)):,}")  # fmt: skip
    print(f"longest event-loop stall: stream {stream_watch.worst * 1000:.1f} ms, "
          f"expiry {expiry_watch.worst * 1000:.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--dicts", action="store_true", help="hold rows as dicts, as before")
    args = parser.parse_args()
    print("rows held as", "dicts" if args.dicts else "JSON bytes")
    asyncio.run(_run(args.requests, args.clients, args.rate, args.dicts))


if __name__ == "__main__":
    main()
