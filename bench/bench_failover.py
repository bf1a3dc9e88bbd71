"""Two workers under a steady load: the p99 after a second worker joins, and the time a
SIGKILLed worker's partitions take to resume on the survivor.

Run from the repository root:  .venv/bin/python -m bench.bench_failover [--runs 3]

Each run: a fresh topic prefix and app id, the demo bundle promoted, one
``stream-app worker`` (every agent on, --partitions partitions, the rate limit out of the
way) waited on until /readyz answers; then requests from ``synthetic_requests`` are
produced at a steady ``--rate`` per second for the whole run. After ``--alone`` seconds a
second worker with the same app id starts (the join); ``--joined`` seconds after the
rebalance it causes, the first worker is killed with SIGKILL and not restarted; the run
ends ``--after-kill`` seconds later. The predictions are read back at the end.

A request's latency is its prediction's Kafka timestamp (the worker's producer, at send)
minus its own (the broker's append: the request topic has LogAppendTime); both are this
machine's clock. Per second of sending:

- one-worker p99: of every request sent in the ``--alone`` seconds, the first 5 left out;
- rebalance: when the first worker's /health first reports fewer than all request
  partitions after the second worker started (a worker takes 10-25 s to start and join
  on the loaded 2-core machine);
- settled after: the first whole second t after that rebalance from which the p99 of
  everything sent until 5 s before the kill (at least 10 s of it) is within 1.25 times
  the one-worker p99 (nan: never);
- two-worker p99: of every request sent from 30 s after that rebalance to 5 s before the
  kill (the issue's goal: the p99 back at its one-worker level within 30 s of a join);
- failover: from the SIGKILL to the first prediction sent after it for a request of each
  partition; the largest over the partitions (the killed worker's, which wait for its
  session to expire and the group to rebalance; the survivor's pause only while the
  group rebalances). Every partition gets traffic throughout.

``--worker-env NAME=VALUE`` (repeatable) sets a variable for both workers, to compare
settings; ``--per-second`` prints each second's p50 and p99, ``--logs DIR`` keeps
the workers' logs (``--log-level info`` for Faust's rebalance lines). Medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.bench_ceiling import _stop, _worker_plan
from bench.bench_pipeline import ROOT, _wait_ready
from stream_app import localkafka
from stream_app.config import load_settings
from stream_app.demo.launch import free_port
from stream_app.kafka_admin import ensure_topics
from stream_app.lifecycle.demo_model import synthetic_requests, train_demo_bundle

TICK = 0.01
SETTLE_WITHIN = 30  # s after the rebalance: the two-worker p99 is of what is sent after
TOLERANCE = 1.25  # a p99 within this factor of the one-worker p99 is at its level
MIN_SPAN = 10  # s: the shortest span of sending a "settled" p99 is taken over
BEFORE_KILL = 5  # s before the kill left out of the two-worker figures
JOIN_TIMEOUT = 90.0  # the longest wait for the second worker to take partitions


@dataclass(frozen=True)
class Sent:
    """A request as the broker took it: its partition and append time (ms)."""

    partition: int
    at_ms: int


@dataclass(frozen=True)
class Run:
    """One run's figures (seconds and ms) and each second's (p50, p99) in ms."""

    alone_p99: float
    joined_p99: float
    settled_s: float
    failover_s: float
    resumed_s: dict[int, float]
    predicted: int
    sent: int
    per_second: list[tuple[float, float, float]]
    joining_s: float  # from the second worker's start to the rebalance it caused


class Events:
    """Wall-clock milestones of a run (epoch ms), set by the schedule."""

    def __init__(self) -> None:
        self.start_ms = 0
        self.join_ms = 0  # the second worker started
        self.rebalance_ms = 0  # the first worker gave up partitions to it
        self.kill_ms = 0
        self.stop = asyncio.Event()  # the traffic ends


def _assigned(port: int, topic: str) -> int | None:
    """How many of ``topic``'s partitions the worker on ``port`` has (None: no answer)."""
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our worker
            body = answer.read()
    except urllib.error.HTTPError as error:  # 503 while degraded: the body still tells
        body = error.read()
    except OSError:
        return None
    return int(json.loads(body).get("kafka", {}).get("assigned_partitions", {}).get(topic, 0))


async def _rebalanced(port: int, topic: str, partitions: int, seconds: float) -> None:
    """Return once the worker on ``port`` has fewer than ``partitions`` (or after
    ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        held = await asyncio.to_thread(_assigned, port, topic)
        if held is not None and held < partitions:
            return
        await asyncio.sleep(0.2)


async def _offer(bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes]], rate: float,
                 stop: asyncio.Event) -> dict[str, Sent]:  # fmt: skip
    """Send at ``rate`` per second until ``stop``; -> request_id -> where it landed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await producer.start()
    pending: list[tuple[str, Any]] = []
    sent, start = 0, time.perf_counter()
    try:
        while not stop.is_set() and sent < len(payloads):
            elapsed = time.perf_counter() - start
            due = min(int(elapsed * rate) + 1, len(payloads))
            for key, value in payloads[sent:due]:
                rid = json.loads(value)["request_id"]
                pending.append((rid, await producer.send(topic, key=key, value=value)))
            sent = due
            await asyncio.sleep(TICK)
        await producer.flush()
    finally:
        await producer.stop()
    out = {}
    for rid, future in pending:
        meta = await future
        out[rid] = Sent(meta.partition, meta.timestamp)
    return out


async def _read(bootstrap: str, topic: str, n: int, timeout: float) -> dict[str, int]:
    """request_id -> the earliest Kafka timestamp (ms) of its records on ``topic``, until
    ``n`` distinct ids or ``timeout`` seconds without a new one."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    out: dict[str, int] = {}
    idle_until = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < idle_until:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    rid = json.loads(r.value)["request_id"]
                    if rid not in out:
                        idle_until = time.monotonic() + timeout
                    out[rid] = min(r.timestamp, out.get(rid, r.timestamp))
    finally:
        await consumer.stop()
    return out


def _spawn(plan: Any, env: dict[str, str], log: Path) -> subprocess.Popen[Any]:
    env = dict(env)
    command = [*plan.command[:-1], env.pop("BENCH_LOG_LEVEL", plan.command[-1])]
    # ``python -m`` imports the code of its working directory first: --compare's tree.
    code = env.pop("BENCH_CODE", str(ROOT))
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own worker
            command, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=out
        )


async def _schedule(args: argparse.Namespace, plan: Any, second_env: dict[str, str],
                    data: Path, events: Events,
                    workers: list[subprocess.Popen[Any]]) -> None:  # fmt: skip
    """Start the second worker after --alone s, kill the first --joined s after the
    rebalance it causes, stop the traffic --after-kill s later."""
    await asyncio.sleep(args.alone)
    events.join_ms = int(time.time() * 1000)
    workers.append(_spawn(plan, second_env, data / "worker-2.log"))
    port = int(plan.env["STREAM_WEB_PORT"])
    await _rebalanced(port, plan.source, args.partitions, JOIN_TIMEOUT)
    events.rebalance_ms = int(time.time() * 1000)
    await asyncio.sleep(args.joined)
    events.kill_ms = int(time.time() * 1000)
    workers[0].send_signal(signal.SIGKILL)
    await asyncio.to_thread(workers[0].wait, 30)
    await asyncio.sleep(args.after_kill)
    events.stop.set()


async def _traffic(args: argparse.Namespace, bootstrap: str, plan: Any,
                   payloads: list[tuple[bytes, bytes]], second_env: dict[str, str],
                   data: Path, events: Events,
                   workers: list[subprocess.Popen[Any]]) -> dict[str, Sent]:  # fmt: skip
    events.start_ms = int(time.time() * 1000)
    offer = asyncio.create_task(_offer(bootstrap, plan.source, payloads, args.rate, events.stop))
    await _schedule(args, plan, second_env, data, events, workers)
    return await offer


def _p(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _figures(sent: dict[str, Sent], done: dict[str, int], events: Events,
             warmup: float) -> Run:  # fmt: skip
    sent_at: list[tuple[int, float]] = []  # (ms of sending, latency ms), in sending order
    for rid, where in sent.items():
        if rid in done:
            sent_at.append((where.at_ms, float(done[rid] - where.at_ms)))
    sent_at.sort()

    def p99(since: int, until: int) -> float:
        return _p([lat for at, lat in sent_at if since <= at < until], 99)

    alone = p99(events.start_ms + int(warmup * 1000), events.join_ms)
    # What is sent in the last seconds before the kill waits for the failover.
    until = events.kill_ms - BEFORE_KILL * 1000
    joined = p99(events.rebalance_ms + SETTLE_WITHIN * 1000, until)
    settled = float("nan")
    for t in range(0, (until - events.rebalance_ms) // 1000 - MIN_SPAN + 1):
        if p99(events.rebalance_ms + t * 1000, until) <= TOLERANCE * alone:
            settled = float(t)
            break
    by_second: dict[int, list[float]] = defaultdict(list)
    for at, latency in sent_at:
        by_second[(at - events.start_ms) // 1000].append(latency)
    per_second = [(float(s), _p(v, 50), _p(v, 99)) for s, v in sorted(by_second.items())]
    resumed: dict[int, float] = {}
    for rid, where in sent.items():
        predicted = done.get(rid)
        if predicted is not None and predicted > events.kill_ms:
            late = (predicted - events.kill_ms) / 1000
            resumed[where.partition] = min(late, resumed.get(where.partition, late))
    failover = max(resumed.values()) if resumed else float("nan")
    joining = (events.rebalance_ms - events.join_ms) / 1000
    resumed = dict(sorted(resumed.items()))
    return Run(alone, joined, settled, failover, resumed, len(done), len(sent), per_second,
               joining)  # fmt: skip


def run_once(args: argparse.Namespace, bootstrap: str, bundle: Path, seed: int,
             code: Path) -> Run:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        prefix = f"fail{int(time.time())}."
        plan = _worker_plan(prefix, bundle, bootstrap, args.partitions, str(data / "w1"),
                            args.batch_size)  # fmt: skip
        asyncio.run(ensure_topics(bootstrap, plan.topics))
        extra = dict(pair.split("=", 1) for pair in args.worker_env)
        first_env = {**(plan.env or {}), **extra, "BENCH_LOG_LEVEL": args.log_level,
                     "BENCH_CODE": str(code)}  # fmt: skip
        second_env = {**first_env, "STREAM_WEB_PORT": str(free_port()),
                      "STREAM_DATA_DIR": str(data / "w2")}  # fmt: skip
        n = int(args.rate * (args.alone + JOIN_TIMEOUT + args.joined + args.after_kill)) + 1
        requests = synthetic_requests(n, seed=seed, n_clients=2000, interval_seconds=0.5)
        payloads = [(r.client_id.encode(), r.model_dump_json().encode()) for r in requests]
        events = Events()
        workers = [_spawn(plan, first_env, data / "worker-1.log")]
        try:
            _wait_ready(int(first_env["STREAM_WEB_PORT"]), workers[0])
            sent = asyncio.run(_traffic(args, bootstrap, plan, payloads, second_env, data,
                                        events, workers))  # fmt: skip
            done = asyncio.run(_read(bootstrap, plan.sink, len(sent), 60))
        except Exception:
            for log in sorted(data.glob("worker-*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
            raise
        finally:
            for worker in workers:
                if worker.poll() is None:
                    _stop(worker)
            if args.logs:
                for log in data.glob("worker-*.log"):
                    Path(args.logs, f"{prefix}{log.name}").write_bytes(log.read_bytes())
    return _figures(sent, done, events, args.warmup)


def _print_run(i: int, label: str, run: Run, per_second: bool) -> None:
    resumed = ", ".join(f"{p}: {s:.1f}" for p, s in run.resumed_s.items())
    print(
        f"run {i}, {label}: {run.predicted:,} of {run.sent:,} predicted; one-worker p99 "
        f"{run.alone_p99:,.0f} ms, two-worker p99 from 30 s after the join "
        f"{run.joined_p99:,.0f} ms; rebalance "
        f"{run.joining_s:.0f} s after the second worker's start, settled "
        f"{run.settled_s:.0f} s after it; failover {run.failover_s:.1f} s (per partition: "
        f"{resumed}); load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    if per_second:
        for second, p50, p99 in run.per_second:
            print(f"  s{second:4.0f}  p50 {p50:7,.0f} ms  p99 {p99:7,.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--alone", type=float, default=30.0)
    parser.add_argument("--joined", type=float, default=50.0)
    parser.add_argument("--after-kill", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", help="the workers' STREAM_BATCH_SIZE (default: theirs)")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--per-second", action="store_true")
    parser.add_argument("--logs", help="a directory to keep the workers' logs in")
    parser.add_argument("--log-level", default="warn", help="the workers' -l")
    parser.add_argument("--compare", metavar="DIR",
                        help="another checkout, whose workers take turns with these")  # fmt: skip
    args = parser.parse_args()
    print(f"load average at start {os.getloadavg()[0]:.1f}", flush=True)
    codes = {"this checkout": ROOT}
    if args.compare:
        codes[args.compare] = Path(args.compare).resolve()
    config = localkafka.broker_config(load_settings())
    runs: dict[str, list[Run]] = {label: [] for label in codes}
    with tempfile.TemporaryDirectory() as tmp, localkafka.running_broker(config) as broker:
        bundle = Path(tmp) / "conversion-1.0.0"
        train_demo_bundle(bundle, name="conversion", version="1.0.0", seed=1)
        for i in range(args.runs):
            for label, code in codes.items():  # taking turns, so load drift hits both
                runs[label].append(run_once(args, broker.bootstrap, bundle, 11 + i, code))
                _print_run(i + 1, label, runs[label][-1], args.per_second)
    for label, done in runs.items():
        med = {name: statistics.median(getattr(r, name) for r in done)
               for name in ("alone_p99", "joined_p99", "settled_s", "failover_s")}  # fmt: skip
        print(
            f"{label}, median of {len(done)}: one-worker p99 {med['alone_p99']:,.0f} ms, "
            f"two-worker p99 {med['joined_p99']:,.0f} ms, settled {med['settled_s']:.0f} s "
            f"after the rebalance, failover {med['failover_s']:.1f} s"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
