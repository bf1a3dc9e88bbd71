"""How close the worker gets to the ceiling: the same requests through three processes.

Run from the repository root:  .venv/bin/python -m bench.bench_ceiling [--requests 20000]

``--requests`` valid requests from ``synthetic_requests`` (``--clients`` clients, keyed
by client_id, ~240 bytes each) go, in turn, through:

1. aiokafka passthrough: a consumer group's ``getmany()``, each value ``json.loads`` then
   ``json.dumps`` and sent by an AIOKafkaProducer (linger 5 ms), the batch's send futures
   awaited before the next ``getmany()``;
2. Faust passthrough: a minimal ``faust.App`` (memory store, no web), one agent over
   ``stream.take(500, within=0.05)`` decoding, re-encoding, ``await topic.send`` per value;
3. the real ``stream-app worker``, every agent on, the demo bundle promoted with the
   registry CLI, STREAM_PARTITIONS=--partitions, the rate limit raised out of the way.

Each is its own subprocess on a fresh topic prefix, sharing the cores with the broker
and with this process, which reads the outputs back. The requests are produced to the
input topic (``--partitions`` partitions) *before* the process starts: all three drain
the same backlog. The figure is msgs/s of wall time seen by the reader, from the first
output fetched (its fetch not counted) to the N-th distinct request_id, so start-up,
group join and model loading are excluded alike. Medians over ``--repeats``, and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.bench_pipeline import ROOT, _cli, _env
from stream_app import localkafka
from stream_app.config import load_settings
from stream_app.demo.launch import free_port
from stream_app.kafka_admin import TopicRequest, ensure_topics
from stream_app.lifecycle.demo_model import synthetic_requests, train_demo_bundle
from stream_app.topics import SPECS, topic_names

Payloads = list[tuple[bytes, bytes]]
VARIANTS = {"aiokafka": "aiokafka passthrough", "faust": "faust passthrough",
            "worker": "stream-app worker"}  # fmt: skip
# With --serial: the worker again, each batch completed before the next is decided.
SERIAL = {"serial": "stream-app worker, STREAM_BATCH_OVERLAP=false"}
# With --compare DIR: the worker of another checkout (its code, this one's settings).
COMPARE = {"compare": "stream-app worker of --compare DIR"}
TIMEOUT = 600.0  # seconds for one variant to emit every output


@dataclass(frozen=True)
class Plan:
    """One variant's run: topics to create, where requests go in and outputs come out."""

    source: str
    sink: str
    topics: list[TopicRequest]
    command: list[str]
    env: dict[str, str] | None = None
    cwd: Path = ROOT  # ``python -m`` imports the code of its working directory first


async def _aiokafka_passthrough(bootstrap: str, source: str, sink: str, group: str) -> None:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest")  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            sent = [await producer.send(sink, json.dumps(json.loads(r.value)).encode(), key=r.key)
                    for records in batches.values() for r in records]  # fmt: skip
            await asyncio.gather(*sent)
    finally:
        await producer.stop()
        await consumer.stop()


def _faust_passthrough(bootstrap: str, source: str, sink: str, group: str, data: str) -> None:
    app = faust.App(group, broker=f"kafka://{bootstrap}", store="memory://", datadir=data,
                    web_enabled=False, key_serializer="raw", value_serializer="raw",
                    consumer_auto_offset_reset="earliest", producer_linger_ms=5,
                    autodiscover=False)  # fmt: skip
    out = app.topic(sink)

    @app.agent(app.topic(source), name="passthrough")
    async def passthrough(stream: Any) -> None:
        async for values in stream.take(500, within=0.05):
            for value in values:
                body = json.loads(value)
                await out.send(key=body["client_id"].encode(), value=json.dumps(body).encode())

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def _passthrough_plan(kind: str, prefix: str, bootstrap: str, partitions: int, data: str) -> Plan:
    source, sink = f"{prefix}in", f"{prefix}out"
    command = [sys.executable, "-m", "bench.bench_ceiling", f"{kind}-passthrough",
               bootstrap, source, sink, f"{prefix}group"]  # fmt: skip
    if kind == "faust":
        command.append(data)
    topics = [TopicRequest(name, partitions, 1) for name in (source, sink)]
    return Plan(source, sink, topics, command)


def _worker_plan(
    prefix: str,
    bundle: Path,
    bootstrap: str,
    partitions: int,
    data: str,
    batch: str | None,
    overlap: bool = True,
    within: str | None = None,
    log_level: str = "warn",
) -> Plan:
    extra = {} if batch is None else {"STREAM_BATCH_SIZE": batch}
    if not overlap:  # the default otherwise (a --compare checkout may not know the setting)
        extra["STREAM_BATCH_OVERLAP"] = "false"
    if within is not None:
        extra["STREAM_BATCH_WITHIN_SECONDS"] = within
    # A throughput figure, not a trust test: the unsigned demo bundle is allowed explicitly.
    extra.update(STREAM_BUNDLE_ROOT=str(bundle.parent), STREAM_ALLOW_UNSIGNED_BUNDLES="true")
    env = _env(prefix, STREAM_BROKER_URL=f"kafka://{bootstrap}",
               STREAM_PARTITIONS=str(partitions), STREAM_RATE_LIMIT_MAX_REQUESTS="1000000",
               STREAM_WEB_PORT=str(free_port()), STREAM_DATA_DIR=data, **extra)  # fmt: skip
    _cli(env, "registry", "register", str(bundle))
    _cli(env, "registry", "promote", "conversion", "1.0.0",
         "--expected-current", "none", "--validation", "demo:7")  # fmt: skip
    names = topic_names(load_settings({}, topic_prefix=prefix))
    configs = {spec.attr: spec.config for spec in SPECS}
    topics = [TopicRequest(names[attr], partitions, 1, configs[attr])
              for attr in ("prediction_requests", "predictions")]  # fmt: skip
    command = [sys.executable, "-m", "stream_app.cli", "worker", "-l", log_level]
    return Plan(names["prediction_requests"], names["predictions"], topics, command, env)


async def _pre_produce(bootstrap: str, plan: Plan, payloads: Payloads) -> None:
    await ensure_topics(bootstrap, plan.topics)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for key, value in payloads:
            await producer.send(plan.source, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def _drain(consumer: AIOKafkaConsumer, n: int, proc: subprocess.Popen[Any]) -> float:
    seen: set[str] = set()
    first, base, deadline = 0.0, 0, time.monotonic() + TIMEOUT
    while len(seen) < n:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(seen)} of {n} outputs after {TIMEOUT:.0f} s")
        batches = await consumer.getmany(timeout_ms=200)
        seen.update(json.loads(r.value)["request_id"] for rs in batches.values() for r in rs)
        if seen and not first:
            first, base = time.perf_counter(), len(seen)
    if base >= n:
        raise RuntimeError("every output came in the first fetch: too few requests to time")
    return (n - base) / (time.perf_counter() - first)


async def _measure(bootstrap: str, plan: Plan, partitions: int, n: int,
                   spawn: Callable[[], subprocess.Popen[Any]]) -> float:  # fmt: skip
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(plan.sink, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        await consumer.getmany(timeout_ms=200)  # positioned and fetching before the start
        proc = spawn()
        try:
            return await _drain(consumer, n, proc)
        finally:
            _stop(proc)
    finally:
        await consumer.stop()


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def run_variant(kind: str, payloads: Payloads, bootstrap: str, partitions: int,
                bundle: Path, batch: str | None = None, compare: Path | None = None,
                log_level: str = "warn") -> float:  # fmt: skip
    """``compare``: the checkout whose worker the "compare" variant runs."""
    prefix = f"ceil{uuid.uuid4().hex[:8]}."
    with tempfile.TemporaryDirectory() as data:
        if kind in ("worker", "serial", "compare"):
            plan = _worker_plan(prefix, bundle, bootstrap, partitions, data, batch,
                                overlap=kind != "serial", log_level=log_level)  # fmt: skip
            if kind == "compare" and compare is not None:
                plan = replace(plan, cwd=compare)
        else:
            plan = _passthrough_plan(kind, prefix, bootstrap, partitions, data)
        asyncio.run(_pre_produce(bootstrap, plan, payloads))
        log_path = Path(data) / "process.log"
        with log_path.open("wb") as log:
            spawn = partial(subprocess.Popen, plan.command, cwd=plan.cwd, env=plan.env,
                            stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
            try:
                return asyncio.run(_measure(bootstrap, plan, partitions, len(payloads), spawn))
            except Exception:
                print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
                raise


def _report(
    rates: dict[str, list[float]], payloads: Payloads, repeats: int, variants: dict[str, str]
) -> None:
    size = statistics.mean(len(value) for _, value in payloads)
    print(f"\n{len(payloads)} requests of {size:.0f} bytes on average, {repeats} repeat(s)")
    print("| variant | msgs/s (median) | runs |\n|---|---:|---|")
    medians = {kind: statistics.median(runs) for kind, runs in rates.items()}
    for kind, runs in rates.items():
        listed = ", ".join(f"{r:,.0f}" for r in runs)
        print(f"| {variants[kind]} | {medians[kind]:,.0f} | {listed} |")
    pairs = [("worker", "faust"), ("worker", "aiokafka"), ("faust", "aiokafka")]
    if "serial" in medians:
        pairs += [("serial", "faust"), ("worker", "serial")]
    if "compare" in medians:
        pairs += [("compare", "faust"), ("worker", "compare")]
    for top, bottom in pairs:
        print(f"{top} / {bottom}: {medians[top] / medians[bottom]:.2f}")


def bench(args: argparse.Namespace) -> None:
    requests = synthetic_requests(args.requests, seed=11, n_clients=args.clients,
                                  interval_seconds=0.5)  # fmt: skip
    payloads = [(r.client_id.encode(), r.model_dump_json().encode()) for r in requests]
    variants = {**VARIANTS, **(SERIAL if args.serial else {})}
    compare = Path(args.compare).resolve() if args.compare else None
    if compare is not None:
        variants.update(COMPARE)
    rates: dict[str, list[float]] = {kind: [] for kind in variants}
    config = localkafka.broker_config(load_settings())
    with tempfile.TemporaryDirectory() as tmp, localkafka.running_broker(config) as broker:
        bundle = Path(tmp) / "conversion-1.0.0"
        train_demo_bundle(bundle, name="conversion", version="1.0.0", seed=1)
        for repeat in range(args.repeats):
            for kind in variants:  # interleaved, so drift in machine load hits each variant
                rate = run_variant(kind, payloads, broker.bootstrap, args.partitions, bundle,
                                   args.batch_size, compare, args.log_level)  # fmt: skip
                rates[kind].append(rate)
                print(f"repeat {repeat + 1}: {variants[kind]}: {rate:,.0f} msgs/s", flush=True)
    _report(rates, payloads, args.repeats, variants)


def main() -> None:
    child = sys.argv[1] if len(sys.argv) > 1 else ""
    if child == "aiokafka-passthrough":
        asyncio.run(_aiokafka_passthrough(*sys.argv[2:6]))
    elif child == "faust-passthrough":
        _faust_passthrough(*sys.argv[2:7])
    else:
        parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
        parser.add_argument("--requests", type=int, default=20_000)
        parser.add_argument("--clients", type=int, default=2_000)
        parser.add_argument("--partitions", type=int, default=4)
        parser.add_argument("--repeats", type=int, default=1)
        parser.add_argument(
            "--batch-size", help="the worker's STREAM_BATCH_SIZE (default: its own)"
        )
        parser.add_argument(
            "--compare", metavar="DIR",
            help="also the worker of the checkout in DIR, in turns with the others",
        )  # fmt: skip
        parser.add_argument("--log-level", default="warn", help="the workers' -l")
        parser.add_argument(
            "--serial", action="store_true",
            help="also the worker with STREAM_BATCH_OVERLAP=false, in turns with the others",
        )  # fmt: skip
        bench(parser.parse_args())


if __name__ == "__main__":
    main()
