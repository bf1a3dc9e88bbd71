"""Latency of one worker under a steady load: from produce to the prediction on the broker.

Run from the repository root:  .venv/bin/python -m bench.bench_latency [--rate 1200]

A ``stream-app worker`` (every agent on, the demo bundle promoted, the rate limit out of
the way, --partitions partitions) is started and waited on until /readyz answers. Then
requests from ``synthetic_requests`` are produced at a steady ``--rate`` per second
(in ticks of 10 ms) for ``--seconds``. A request's latency is its prediction's Kafka
timestamp (set by the worker's producer when it sends) minus the request's (set by this
producer when it sends); both clocks are this machine's. The first ``--warmup`` seconds
are left out. Prints p50, p95, p99 and the largest latency in ms, and the rate reached.
Choose ``--rate`` as half the worker's maximum (bench_ceiling's worker figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.bench_ceiling import ROOT, _stop, _worker_plan
from bench.bench_pipeline import _wait_ready
from stream_app import localkafka
from stream_app.config import load_settings
from stream_app.kafka_admin import ensure_topics
from stream_app.lifecycle.demo_model import synthetic_requests, train_demo_bundle

TICK = 0.01


async def _offer(bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes]], rate: float,
                 seconds: float) -> float:  # fmt: skip
    """Send at ``rate`` per second for ``seconds``; -> the rate reached."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await producer.start()
    sent, start = 0, time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - start) < seconds:
            due = min(int(elapsed * rate) + 1, len(payloads))
            for key, value in payloads[sent:due]:
                await producer.send(topic, key=key, value=value)
            sent = due
            await asyncio.sleep(TICK)
        await producer.flush()
    finally:
        await producer.stop()
    return sent / (time.perf_counter() - start)


async def _read(bootstrap: str, topic: str, n: int, timeout: float) -> dict[str, int]:
    """request_id -> Kafka timestamp (ms) of the first ``n`` distinct records of ``topic``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    out: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    out.setdefault(json.loads(r.value)["request_id"], r.timestamp)
    finally:
        await consumer.stop()
    return out


def _percentiles(latencies: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(latencies)}


def run(args: argparse.Namespace, bootstrap: str, bundle: Path, data: str) -> None:
    prefix = f"lat{int(time.time())}."
    plan = _worker_plan(prefix, bundle, bootstrap, args.partitions, data, args.batch_size,
                        overlap=not args.serial, within=args.within)  # fmt: skip
    asyncio.run(ensure_topics(bootstrap, plan.topics))
    n = int(args.rate * args.seconds)
    requests = synthetic_requests(n, seed=11, n_clients=2000, interval_seconds=0.5)
    payloads = [(r.client_id.encode(), r.model_dump_json().encode()) for r in requests]
    port = int((plan.env or {})["STREAM_WEB_PORT"])
    with (Path(data) / "worker.log").open("wb") as log:
        worker: subprocess.Popen[Any] = subprocess.Popen(  # noqa: S603 - our own worker
            plan.command, cwd=ROOT, env=plan.env, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            _wait_ready(port, worker)
            reached = asyncio.run(_offer(bootstrap, plan.source, payloads, args.rate, args.seconds))
            sent = asyncio.run(_read(bootstrap, plan.source, n, 60))
            done = asyncio.run(_read(bootstrap, plan.sink, len(sent), 120))
        finally:
            _stop(worker)
    first = min(sent.values()) + args.warmup * 1000
    latencies = [done[rid] - t for rid, t in sent.items() if rid in done and t >= first]
    print(
        f"offered {args.rate:,.0f}/s for {args.seconds:g} s, reached {reached:,.0f}/s; "
        f"{len(done):,} of {len(sent):,} predicted; {len(latencies):,} after the warm-up"
    )
    print(" | ".join(f"{k} {v:,.0f} ms" for k, v in _percentiles(latencies).items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=1200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", help="the worker's STREAM_BATCH_SIZE (default: its own)")
    parser.add_argument("--within", help="the worker's STREAM_BATCH_WITHIN_SECONDS")
    parser.add_argument("--serial", action="store_true", help="STREAM_BATCH_OVERLAP=false")
    args = parser.parse_args()
    config = localkafka.broker_config(load_settings())
    with tempfile.TemporaryDirectory() as tmp, localkafka.running_broker(config) as broker:
        bundle = Path(tmp) / "conversion-1.0.0"
        train_demo_bundle(bundle, name="conversion", version="1.0.0", seed=1)
        run(args, broker.bootstrap, bundle, tmp)


if __name__ == "__main__":
    main()
