"""End-to-end throughput of one worker: requests in, predictions out, on the real broker.

Run from the repository root:  .venv/bin/python -m bench.bench_pipeline

For each micro-batch size (``--batch-sizes``, default 1 and 64) and each repeat, in turn:
a fresh topic prefix, the demo bundle registered and promoted through the gate with the
``stream-app registry`` commands, a ``stream-app worker`` with that STREAM_BATCH_SIZE,
then ``--requests`` valid requests (over 500 clients, under their rate limit) produced
as fast as the producer goes. The figure is requests per second of wall time from the
first send to the last prediction read back; the whole pipeline runs (intake, rate
limit, scoring, logs, drift, A/B, service metrics, alerts), sharing the 2 cores with the
broker. Medians per batch size, and the ratio to batch size 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from stream_app import localkafka  # noqa: E402
from stream_app.config import load_settings  # noqa: E402
from stream_app.lifecycle.demo_model import synthetic_requests, train_demo_bundle  # noqa: E402
from stream_app.topics import topic_names  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _env(prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_")}
    return {**env, "STREAM_TOPIC_PREFIX": prefix, "STREAM_APP_ID": prefix.rstrip("."), **extra}


def _cli(env: dict[str, str], *args: str) -> None:
    command = [sys.executable, "-m", "stream_app.cli", *args]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603


def _wait_ready(port: int, worker: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("the worker never became ready")


async def _play(
    bootstrap: str, names: dict[str, str], payloads: list[tuple[bytes, bytes]]
) -> float:
    consumer = AIOKafkaConsumer(
        names["predictions"], bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        started = time.perf_counter()
        for key, value in payloads:
            await producer.send(names["prediction_requests"], key=key, value=value)
        await producer.flush()
        seen = 0
        while seen < len(payloads):
            batches = await consumer.getmany(timeout_ms=500)
            seen += sum(len(records) for records in batches.values())
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"only {seen} of {len(payloads)} predictions after 600 s")
        return len(payloads) / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await consumer.stop()


def run_once(bundle: Path, batch_size: int, payloads: list[tuple[bytes, bytes]],
             bootstrap: str, port: int) -> float:  # fmt: skip
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    # A throughput figure, not a trust test: the unsigned demo bundle is allowed explicitly.
    env = _env(
        prefix,
        STREAM_BROKER_URL=f"kafka://{bootstrap}",
        STREAM_BUNDLE_ROOT=str(bundle.parent),
        STREAM_ALLOW_UNSIGNED_BUNDLES="true",
    )
    _cli(env, "registry", "register", str(bundle))
    _cli(env, "registry", "promote", "conversion", "1.0.0",
         "--expected-current", "none", "--validation", "demo:7")  # fmt: skip
    with tempfile.TemporaryDirectory() as data:
        worker_env = {**env, "STREAM_BATCH_SIZE": str(batch_size), "STREAM_WEB_PORT": str(port),
                      "STREAM_DATA_DIR": data}  # fmt: skip
        worker = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "stream_app.cli", "worker", "-l", "warn"],
            cwd=ROOT, env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_ready(port, worker)
            names = topic_names(load_settings({}, topic_prefix=prefix))
            return asyncio.run(_play(bootstrap, names, payloads))
        finally:
            worker.terminate()
            worker.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1,64")
    parser.add_argument("--port", type=int, default=6099)
    args = parser.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    requests = synthetic_requests(args.requests, seed=11, n_clients=500, interval_seconds=0.5)
    payloads = [(r.client_id.encode(), r.model_dump_json().encode()) for r in requests]
    settings = load_settings()
    with (
        tempfile.TemporaryDirectory() as tmp,
        localkafka.running_broker(localkafka.broker_config(settings)) as broker,
    ):
        bundle = Path(tmp) / "conversion-1.0.0"
        train_demo_bundle(bundle, name="conversion", version="1.0.0", seed=1)
        results: dict[int, list[float]] = {size: [] for size in sizes}
        for repeat in range(args.repeats):
            for size in sizes:  # interleaved, so drift in machine load hits every size
                rate = run_once(bundle, size, payloads, broker.bootstrap, args.port)
                results[size].append(rate)
                print(f"repeat {repeat + 1}: batch size {size}: {rate:,.0f} requests/s")
    base = statistics.median(results[sizes[0]])
    print(f"\n{args.requests} requests, {args.repeats} repeats, load {os.getloadavg()[0]:.1f}")
    print("| batch size | requests/s (median) | runs | vs batch size " + f"{sizes[0]} |")
    print("|---:|---:|---|---:|")
    for size in sizes:
        median = statistics.median(results[size])
        runs = ", ".join(f"{r:,.0f}" for r in results[size])
        print(f"| {size} | {median:,.0f} | {runs} | {median / base:.1f}x |")


if __name__ == "__main__":
    main()
