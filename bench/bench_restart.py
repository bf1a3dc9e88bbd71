"""Restart to /readyz with N rows in a changelog: memory:// against rocksdb://.

Run from the repository root:  .venv/bin/python -m bench.bench_restart [--rows 1000000]

The rate-limit table's changelog is filled with ``--rows`` rows of distinct clients
(each a window of five allowed requests, as the intake agent writes them, on the
partition of its client id), then a ``stream-app worker`` (every agent on, the demo
bundle promoted) is started and timed from its start until /readyz answers:

- memory://: recovery reads the whole changelog (every start of a memory:// worker);
- rocksdb:// cold: an empty data directory, recovery reads the whole changelog into it;
- rocksdb:// restart: the same data directory again, stopped with SIGTERM: recovery
  reads only what follows the offsets the store persisted (nothing here).

Each worker's RSS (from /proc, when /readyz answers, and its peak) and the records it
read (/health ``changelog_records_read``) are printed; with ``--runs`` > 1 the medians too.
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
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.bench_ceiling import _stop
from bench.bench_pipeline import ROOT, _cli, _env, _wait_ready
from stream_app import localkafka
from stream_app.config import load_settings
from stream_app.demo.launch import free_port
from stream_app.kafka_admin import TopicRequest, ensure_topics
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.topics import topic_names

TABLE = "rate-limits"


def _row(i: int, source: str) -> bytes:
    start = 1_767_225_600.0 + i % 3600
    state = {"timestamps": [start + k for k in range(5)], "horizon": None}
    return json.dumps(
        {"offsets": {f"{source}:0": i}, "state": state}, separators=(",", ":")
    ).encode()


async def _fill(bootstrap: str, changelog: str, source: str, rows: int, partitions: int) -> float:
    """Write ``rows`` rows to the changelog (murmur2 partitions, like the app); -> seconds."""
    await ensure_topics(
        bootstrap, [TopicRequest(changelog, partitions, 1, {"cleanup.policy": "compact"})]
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1,
                                max_batch_size=512 * 1024)  # fmt: skip
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for i in range(rows):
            pending.append(await producer.send(changelog, key=b"c%09d" % i, value=_row(i, source)))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def _records_read(port: int, app_id: str) -> int:
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            body = json.load(response)
    except urllib.error.HTTPError as error:
        body = json.load(error)
    # On a shared machine another process may have taken the port since it was picked.
    if body["app"]["id"] != app_id:
        raise RuntimeError(f"port {port} answers for {body['app']['id']}, not {app_id}")
    return int(sum(body["app"]["changelog_records_read"].values()))


def _start(env: dict[str, str], log: Path) -> dict[str, float]:
    """Start a worker, time it to /readyz, measure it, stop it (SIGTERM)."""
    port = int(env["STREAM_WEB_PORT"])
    command = [sys.executable, "-m", "stream_app.cli", "worker", "-l", "info"]
    with log.open("ab") as out:
        started = time.perf_counter()
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)  # noqa: S603
        try:
            _wait_ready(port, worker, timeout=3600)
            ready = time.perf_counter() - started
            rss, peak = _rss_mb(worker.pid)
            read = _records_read(port, env["STREAM_APP_ID"])
        finally:
            _stop(worker)
    return {"ready_s": ready, "rss_mb": rss, "peak_mb": peak, "read": read}


def run_once(bootstrap: str, bundle: Path, rows: int, partitions: int, log: Path) -> dict[str, Any]:
    prefix = f"rst{uuid.uuid4().hex[:8]}."
    names = topic_names(load_settings({}, topic_prefix=prefix))
    changelog = f"{prefix.rstrip('.')}-{TABLE}-changelog"
    with tempfile.TemporaryDirectory() as tmp:
        port, url = str(free_port()), f"kafka://{bootstrap}"
        # A restart figure, not a trust test: the unsigned demo bundle is allowed explicitly.
        base = _env(prefix, STREAM_BROKER_URL=url, STREAM_PARTITIONS=str(partitions),
                    STREAM_WEB_PORT=port, STREAM_BUNDLE_ROOT=str(bundle.parent),
                    STREAM_ALLOW_UNSIGNED_BUNDLES="true")  # fmt: skip
        _cli({**base, "STREAM_DATA_DIR": f"{tmp}/cli"}, "registry", "register", str(bundle))
        _cli({**base, "STREAM_DATA_DIR": f"{tmp}/cli"}, "registry", "promote", "conversion",
             "1.0.0", "--expected-current", "none", "--validation", "demo:7")  # fmt: skip
        fill = asyncio.run(_fill(bootstrap, changelog, names["prediction_requests"], rows,
                                 partitions))  # fmt: skip
        memory = {**base, "STREAM_STORE": "memory://", "STREAM_DATA_DIR": f"{tmp}/memory"}
        rocks = {**base, "STREAM_STORE": "rocksdb://", "STREAM_DATA_DIR": f"{tmp}/rocks"}
        out: dict[str, Any] = {"fill_s": fill}
        out["memory"] = _start(memory, log)
        out["rocksdb cold"] = _start(rocks, log)
        out["rocksdb restart"] = _start(rocks, log)
        disk = sum(f.stat().st_size for f in Path(f"{tmp}/rocks").rglob("*") if f.is_file())
        out["rocksdb_disk_mb"] = disk / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--log", default="bench/out/restart.log", help="the workers' logs (appended)"
    )
    args = parser.parse_args()
    config = localkafka.broker_config(load_settings())
    runs = []
    with tempfile.TemporaryDirectory() as tmp, localkafka.running_broker(config) as broker:
        bundle = Path(tmp) / "conversion-1.0.0"
        train_demo_bundle(bundle, name="conversion", version="1.0.0", seed=1)
        for n in range(args.runs):
            log = Path(args.log)
            log.parent.mkdir(parents=True, exist_ok=True)
            result = run_once(broker.bootstrap, bundle, args.rows, args.partitions, log)
            runs.append(result)
            print(f"run {n + 1}: filled {args.rows:,} rows in {result['fill_s']:.1f} s; "
                  f"rocksdb on disk {result['rocksdb_disk_mb']:.0f} MB")  # fmt: skip
            for kind in ("memory", "rocksdb cold", "rocksdb restart"):
                r = result[kind]
                print(f"  {kind:16} ready {r['ready_s']:7.1f} s  RSS {r['rss_mb']:6.0f} MB  "
                      f"peak {r['peak_mb']:6.0f} MB  read {r['read']:,}")  # fmt: skip
    if args.runs > 1:
        print(f"medians of {args.runs} runs, {args.rows:,} rows:")
        for kind in ("memory", "rocksdb cold", "rocksdb restart"):
            med = {k: statistics.median(r[kind][k] for r in runs) for k in ("ready_s", "rss_mb",
                                                                           "peak_mb")}  # fmt: skip
            print(f"  {kind:16} ready {med['ready_s']:7.1f} s  RSS {med['rss_mb']:6.0f} MB  "
                  f"peak {med['peak_mb']:6.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
