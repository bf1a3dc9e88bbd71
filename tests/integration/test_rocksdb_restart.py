"""A worker on ``rocksdb://`` restarted on its data directory keeps its state and reads
only the changelogs' tail: what was written after the offsets its store had persisted.

Worker A (rocksdb, data directory D) lets each of its clients use its whole rate limit
and is stopped (SIGTERM) or killed (SIGKILL). Worker B (memory://, same app id, its own
directory) then serves new clients to their limit, so the changelogs grow a tail that
A's store has not seen; B, on memory, reads every changelog record there is. A restarted
on D reads exactly the records past the offsets persisted in D (looked up in the
RocksDB files, where Faust's recovery looks) and none before them, and then refuses one
more request from every client of both workers: A's own clients' windows came from D,
B's from the tail.

And a client that never comes back after such a restart still expires: its row is in D
only (the restart reads no changelog record of it), and the scan of each partition
database the worker takes hands its key to the expiry index.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from faust.stores.rocksdb import Store as RocksDBStore
from rocksdict import AccessType, Options, Rdict

from agents import build_pipeline
from stream_app.app import create_app
from stream_app.config import load_settings
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.partitioner import default_partition
from stream_app.topics import topic_names
from tests.utils.kafka_io import Record, produce, read_topics, read_until
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 4
LIMIT = 3
CLIENTS = 12


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "conversion-1.0.0"
    train_demo_bundle(out, name="conversion", version="1.0.0", n_rows=400)
    return out


def _requests(clients: list[str], per_client: int, tag: str) -> list[tuple[bytes, bytes]]:
    out = []
    for n in range(per_client):
        for client in clients:
            request = {
                "request_id": f"{tag}-{client}-{n}", "client_id": client,
                "user_id": f"USR-{client}", "timestamp": "2026-01-01T10:00:00Z", "age": 30,
                "purchase_history": [12.0], "category_preference": "home",
                "session_duration_minutes": 4.0,
            }  # fmt: skip
            out.append((client.encode(), json.dumps(request).encode()))
    return out


def _setup(
    run_id: str, bundle_dir: Path, settings: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """This test's topic names, and its workers' settings: ``settings`` and what every
    test here sets."""
    app_id = f"rocks-{run_id}"
    names = topic_names(load_settings({}, topic_prefix=f"{run_id}.", app_id=app_id))
    env = {"STREAM_APP_ID": app_id, "STREAM_PARTITIONS": str(PARTITIONS),
           "TEST_BUNDLE_DIR": str(bundle_dir), **settings}  # fmt: skip
    return names, env


def _request_id(record: Record) -> str:
    value = json.loads(record.value)
    return str(value.get("request", value)["request_id"])


def _changelogs(settings: dict[str, str], data_dir: Path) -> dict[str, tuple[str, Path]]:
    """Table name -> (changelog topic, RocksDB path of partition 0's database)."""
    app = create_app(load_settings(settings, data_dir=data_dir))
    build_pipeline(app)
    return {
        name: (table.changelog_topic.get_topic_name(), table.data.partition_path(0))
        for name, table in app.tables.items()
    }


def _persisted(db_path_0: Path, partition: int) -> int | None:
    """The changelog offset Faust's recovery starts after, as the store persisted it."""
    path = db_path_0.with_name(db_path_0.name.replace("-0.db", f"-{partition}.db"))
    if not path.exists():
        return None
    db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
    try:
        value = db.get(RocksDBStore.offset_key)
    finally:
        db.close()
    return None if value is None else int(value)


def _stop(worker: WorkerProcess, how: str, guarantee: str) -> None:
    if how == "stop":
        code = worker.stop()
        # Under exactly_once Faust's last commit at shutdown sometimes finds a transaction
        # already ended and the worker is then killed (README, "Delivery"): the open
        # transaction is aborted, as after a SIGKILL.
        assert code == 0 or guarantee == "exactly_once"
        return
    assert worker.process is not None
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(30)


def _records_read(worker: WorkerProcess) -> dict[str, int]:
    return dict((worker.get("/health") or {})["app"]["changelog_records_read"])


# Two of the four combinations, to keep the suite's time: a graceful stop under
# at_least_once, a SIGKILL under exactly_once (rows reach the store only at a commit).
@pytest.mark.parametrize(
    ("how", "guarantee"), [("stop", "at_least_once"), ("kill", "exactly_once")]
)
async def test_restart_on_rocksdb_keeps_state_and_reads_only_the_tail(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
    tmp_path: Path,
    guarantee: str,
    how: str,
) -> None:
    bootstrap = kafka_broker.bootstrap
    names, env = _setup(run_id, bundle_dir, {
        "STREAM_PROCESSING_GUARANTEE": guarantee,
        "STREAM_RATE_LIMIT_MAX_REQUESTS": str(LIMIT),
        # Arrival time: an hour's window outlasts the restarts however slow the machine.
        "STREAM_RATE_LIMIT_WINDOW_SECONDS": "3600",
    })  # fmt: skip
    source = names["prediction_requests"]
    outputs = [names["predictions"], names["requests_throttled"], names["requests_invalid"]]
    data = tmp_path / "rocks-data"
    rocks = {**env, "STREAM_STORE": "rocksdb://", "STREAM_DATA_DIR": str(data)}
    module = "tests.integration.pipeline_app"
    a_clients = [f"a-{i:02d}" for i in range(CLIENTS)]
    b_clients = [f"b-{i:02d}" for i in range(CLIENTS)]

    def fates(n: int) -> Callable[[dict[str, list[Record]]], bool]:
        return lambda got: len({_request_id(r) for t in outputs for r in got[t]}) >= n

    # A: its clients use their whole limit.
    first = start_worker(rocks, module=module, wait_topics={source: PARTITIONS})
    first.wait_ready()
    await produce(bootstrap, source, _requests(a_clients, LIMIT, "one"))
    await read_until(bootstrap, outputs, fates(LIMIT * CLIENTS), idle_seconds=1)
    _stop(first, how, guarantee)

    # B, on memory://: reads every changelog record, then serves new clients to their limit.
    tables = _changelogs(rocks, data)
    before = await read_topics(bootstrap, [topic for topic, _ in tables.values()], idle_seconds=1)
    second = start_worker({**env, "STREAM_STORE": "memory://"}, module=module,
                          wait_topics={source: PARTITIONS})  # fmt: skip
    second.wait_ready()
    assert sum(_records_read(second).values()) == sum(len(r) for r in before.values())
    await produce(bootstrap, source, _requests(b_clients, LIMIT, "two"))
    await read_until(bootstrap, outputs, fates(2 * LIMIT * CLIENTS), idle_seconds=1)
    _stop(second, "stop", guarantee)

    # The tail: each changelog's records past the offset A's store persisted.
    logs = await read_topics(bootstrap, [topic for topic, _ in tables.values()], idle_seconds=1)
    tail: dict[str, int] = {}
    for name, (topic, path) in tables.items():
        persisted = {p: _persisted(path, p) for p in range(PARTITIONS)}
        tail[name] = sum(
            1 for r in logs[topic] if r.partition in persisted
            and (persisted[r.partition] is None or r.offset > persisted[r.partition])
        )  # fmt: skip
    total = {name: len(logs[topic]) for name, (topic, _) in tables.items()}
    # B's clients' rows are all in the tail; A's rows (at least one per client) are not.
    assert CLIENTS <= tail["rate-limits"] <= total["rate-limits"] - CLIENTS

    # A again, on D: only the tail is read, and every client's window still holds.
    again = start_worker(rocks, module=module, wait_topics={source: PARTITIONS})
    again.wait_ready()
    read = _records_read(again)
    print(f"{guarantee}/{how}: read {read} of {total} changelog records at restart")
    assert {name: read.get(name, 0) for name in tables} == tail
    await produce(bootstrap, source, _requests(a_clients + b_clients, 1, "three"))
    got = await read_until(bootstrap, outputs, fates(2 * LIMIT * CLIENTS + 2 * CLIENTS))
    throttled = {_request_id(r) for r in got[names["requests_throttled"]]}
    scored = {_request_id(r) for r in got[names["predictions"]]}
    assert throttled == {f"three-{c}-0" for c in a_clients + b_clients}
    assert not {rid for rid in scored if rid.startswith("three-")}
    assert got[names["requests_invalid"]] == []


def _one_per_partition(tag: str) -> list[str]:
    """Client ids, one on each partition (as the producer's partitioner places them)."""
    found: dict[int, str] = {}
    for n in itertools.count():
        client = f"{tag}-{n}"
        found.setdefault(default_partition(client.encode(), PARTITIONS), client)
        if len(found) == PARTITIONS:
            return list(found.values())
    raise AssertionError("unreachable")


async def _tick(bootstrap: str, source: str, stop: asyncio.Event) -> None:
    """A request on every partition each quarter second: the partitions' clocks are the
    requests' arrival times, so only traffic moves them past an expiry."""
    for n in itertools.count():
        await produce(bootstrap, source, _requests(_one_per_partition(f"tick{n}"), 1, f"t{n}"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
        if stop.is_set():
            return


async def test_a_client_that_never_comes_back_after_a_restart_on_rocksdb_expires(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
    tmp_path: Path,
) -> None:
    # The restart reads no changelog record: the clients' rows are only in the RocksDB
    # databases, and the scan of each partition taken hands them to the expiry index.
    bootstrap = kafka_broker.bootstrap
    names, env = _setup(run_id, bundle_dir, {
        "STREAM_STORE": "rocksdb://", "STREAM_DATA_DIR": str(tmp_path / "rocks-data"),
        "STREAM_RATE_LIMIT_WINDOW_SECONDS": "2",
    })  # fmt: skip
    source = names["prediction_requests"]
    module = "tests.integration.pipeline_app"
    gone = [f"gone-{i:02d}" for i in range(CLIENTS)]
    first = start_worker(env, module=module, wait_topics={source: PARTITIONS})
    first.wait_ready()
    await produce(bootstrap, source, _requests(gone, 1, "one"))
    predictions = names["predictions"]
    await read_until(bootstrap, [predictions], lambda got: len(got[predictions]) >= CLIENTS)
    assert first.stop() == 0
    changelog = _changelogs(env, tmp_path / "rocks-data")["rate-limits"][0]

    def deleted(got: dict[str, list[Record]]) -> set[str]:
        return {r.key.decode() for r in got[changelog] if r.key and not r.value}

    assert deleted(await read_topics(bootstrap, [changelog], idle_seconds=1)) == set()

    again = start_worker(env, module=module, wait_topics={source: PARTITIONS})
    again.wait_ready()
    assert _records_read(again).get("rate-limits", 0) == 0
    stop = asyncio.Event()
    ticks = asyncio.create_task(_tick(bootstrap, source, stop))
    try:
        got = await read_until(bootstrap, [changelog], lambda got: set(gone) <= deleted(got),
                               idle_seconds=0, timeout=90)  # fmt: skip
    finally:
        stop.set()
        await ticks
    assert set(gone) <= deleted(got)
