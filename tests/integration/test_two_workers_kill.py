"""Two workers in one group: a second joins mid-stream, then one is killed with SIGKILL and
not restarted; the survivor decides every request.

Under at_least_once every request reaches exactly one fate topic at least once (the
duplicates are counted and printed); under exactly_once exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from stream_app.config import load_settings
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.topics import topic_names
from tests.utils.kafka_io import read_until
from tests.utils.traffic import invalid_ids, request_id, requests, send, start_of_traffic
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 4
FIRST = 800  # the backlog the first worker meets alone
CHUNK = 5  # requests per step of the traffic that flows while the second worker joins
JOINING_AT_MOST = 1500  # a guard: that traffic stops here if the join takes very long
SECOND = 800  # the backlog one of the two workers dies in
MODULE = "tests.integration.pipeline_app"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("two-kill-bundles")
    for version, seed in (("1.0.0", 1), ("1.1.0", 2)):
        train_demo_bundle(root / version, name="conversion", version=version, seed=seed,
                          n_rows=400)  # fmt: skip
    return root / "1.0.0", root / "1.1.0"


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_a_worker_killed_after_a_join_loses_nothing(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundles: tuple[Path, Path],
    guarantee: str,
) -> None:
    app_id = f"two-kill-{run_id}"
    names = topic_names(load_settings({}, topic_prefix=f"{run_id}.", app_id=app_id))
    source, bootstrap = names["prediction_requests"], kafka_broker.bootstrap
    fates = [names["predictions"], names["requests_invalid"], names["requests_throttled"]]
    env = {
        "STREAM_APP_ID": app_id, "STREAM_PARTITIONS": str(PARTITIONS),
        "STREAM_PROCESSING_GUARANTEE": guarantee, "STREAM_RATE_LIMIT_MAX_REQUESTS": "100000",
        "TEST_BUNDLE_DIR": str(bundles[0]), "TEST_CHALLENGER_DIR": str(bundles[1]),
    }  # fmt: skip

    async def decided(n: int) -> int:
        got = await read_until(
            bootstrap, fates, lambda g: len({request_id(r) for t in fates for r in g[t]}) >= n,
            idle_seconds=0, timeout=300,
        )  # fmt: skip
        return len({request_id(r) for t in fates for r in got[t]})

    t0, began = start_of_traffic(), time.monotonic()
    first = start_worker(env, module=MODULE, wait_topics={source: PARTITIONS})
    first.wait_ready()
    await send(bootstrap, source, requests(t0, 0, FIRST))
    await decided(1)

    # Requests keep arriving from the moment the second worker starts until both workers
    # are ready with the partitions shared, so the rebalance meets traffic however long
    # it takes; the pace only keeps the total small.
    joined = asyncio.Event()
    flowing = asyncio.create_task(_flow(bootstrap, source, t0, FIRST, joined))
    second = await asyncio.to_thread(start_worker, env, module=MODULE)
    await _until([first, second], lambda: _shared([first, second], source),
                 "the two workers to share the partitions, ready")  # fmt: skip
    joined.set()
    sent = await flowing
    join_done = time.monotonic()

    # Everything so far decided, the first worker is killed between two halves of the
    # second backlog: it has fetched the first half and not committed it (the commit
    # interval is seconds), and the second half arrives with its partitions orphaned
    # until the session timeout hands them to the survivor.
    await decided(sent)
    total = sent + SECOND
    await send(bootstrap, source, requests(t0, sent, sent + SECOND // 2))
    _kill(first)
    await send(bootstrap, source, requests(t0, sent + SECOND // 2, total))
    killed = time.monotonic()
    got = await read_until(
        bootstrap, fates,
        lambda g: len({request_id(r) for t in fates for r in g[t]}) >= total, timeout=300,
    )  # fmt: skip
    assert second.process is not None and second.process.poll() is None, second.log_tail()

    ids = {topic: [request_id(r) for r in got[topic]] for topic in fates}
    distinct = {topic: set(found) for topic, found in ids.items()}
    duplicates = sum(len(found) for found in ids.values()) - sum(map(len, distinct.values()))
    print(
        f"{guarantee}: {total} requests ({sent - FIRST} while the second worker joined), "
        f"{duplicates} duplicates; join {join_done - began:.0f} s, "
        f"kill {killed - began:.0f} s, all decided {time.monotonic() - began:.0f} s"
    )
    everything = {f"r{i:05d}" for i in range(total)}
    missing = everything - set().union(*distinct.values())
    assert not missing, f"{len(missing)} requests without a fate, e.g. {sorted(missing)[:5]}"
    assert sum(map(len, distinct.values())) == total  # no request in two fate topics
    assert distinct[names["requests_invalid"]] == invalid_ids(total)
    if guarantee == "exactly_once":
        assert duplicates == 0


async def _flow(bootstrap: str, topic: str, t0: datetime, start: int, stop: asyncio.Event) -> int:
    """Send requests from ``start`` on, CHUNK at a time, until ``stop`` is set (or the
    guard is reached); -> the id after the last one sent."""
    i = start
    while not stop.is_set() and i < start + JOINING_AT_MOST:
        await send(bootstrap, topic, requests(t0, i, i + CHUNK))
        i += CHUNK
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except TimeoutError:
            pass
    return i


def _shared(workers: Sequence[WorkerProcess], topic: str) -> bool:
    """Every worker ready (rebalance over, tables recovered, model loaded) and owning
    some of ``topic``'s partitions, all of them between them."""
    counts = []
    for worker in workers:
        if (worker.get("/readyz") or {}).get("ready") is not True:
            return False
        report = worker.get("/health") or {}
        counts.append(int(report.get("kafka", {}).get("assigned_partitions", {}).get(topic, 0)))
    return all(counts) and sum(counts) == PARTITIONS


async def _until(
    workers: Sequence[WorkerProcess], check: Callable[[], bool], what: str, timeout: float = 180
) -> None:
    """Poll ``check`` (in a thread: it does HTTP) until it holds; fail as soon as a worker
    exits, with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            assert worker.process is not None
            if worker.process.poll() is not None:
                raise RuntimeError(
                    f"a worker exited ({worker.process.returncode}) while waiting for {what}:"
                    f"\n{worker.log_tail()}"
                )
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.25)
    raise TimeoutError(f"gave up waiting for {what}")


def _kill(worker: WorkerProcess) -> None:
    assert worker.process is not None
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(30)
