"""Hostile input at volume: 5,000 malformed, oversize, deeply nested and type-confused
messages through a running worker. Every one leaves through exactly one fate topic, no
agent fails, /readyz stays ready throughout, a refused message leaves no state behind
(the only rows the flood writes are the limiter windows of the clients whose requests were
decided) and the worker's memory comes back to within 50 MB."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.events import Rejection
from stream_app.config import load_settings
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.topics import REQUEST_MAX_BYTES, topic_names
from tests.utils.kafka_io import Record, produce, read_until
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 2
MESSAGES = 5000
SEED = 20261207


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "conversion-1.0.0"
    train_demo_bundle(out, name="conversion", version="1.0.0", n_rows=400)
    return out


def _valid(rid: str) -> dict[str, Any]:
    return {
        "request_id": rid, "client_id": f"c-{rid}", "user_id": "USR00042", "age": 33,
        "purchase_history": [19.5, 3.0], "category_preference": "sports",
        "session_duration_minutes": 7.5, "timestamp": "2026-06-01T12:00:00Z",
    }  # fmt: skip


def _hostile(i: int, draw: random.Random) -> tuple[bytes | None, bytes]:
    """Message ``i``: one of twelve kinds of hostile input (``i % 12``)."""
    rid = f"h{i:05d}"
    good = _valid(rid)
    key: bytes | None = f"c-{rid}".encode()
    kind = i % 12
    if kind == 0:  # random bytes
        value = draw.randbytes(draw.randint(1, 300))
    elif kind == 1:  # truncated JSON
        text = json.dumps(good).encode()
        value = text[: draw.randint(1, len(text) - 1)]
    elif kind == 2:  # invalid UTF-8 inside a string
        value = (
            json.dumps(good).replace("sports", "sp\udcffrts", 1).encode("utf-8", "surrogateescape")
        )
    elif kind == 3:  # 10,000-deep nesting, as an array or inside a field
        depth = 10_000
        nested = "[" * depth + "]" * depth
        value = (nested if i % 24 == 3 else json.dumps({**good, "age": 0})[:-1]
                 + ', "extra": ' + nested + "}").encode()  # fmt: skip
    elif kind == 4:  # a value just under the request topic's limit (every 480th), else 100 KiB
        size = REQUEST_MAX_BYTES - 4096 if i % 480 == 4 else 100 * 1024
        value = json.dumps({**good, "note": "x" * size}).encode()
    elif kind == 5:  # duplicate keys
        head = f'{{"request_id": "{rid}", "request_id": "{rid}", "age": 5, '
        value = (head + json.dumps(good)[1:]).encode()
    elif kind == 6:  # huge integers
        value = json.dumps({**good, "age": 10**400}).encode()
    elif kind == 7:  # NaN and Infinity literals
        literal = ("NaN", "Infinity", "-Infinity")[i % 3]
        value = json.dumps(good).replace('"age": 33', f'"age": {literal}', 1).encode()
    elif kind == 8:  # wrong types
        field = draw.choice(["age", "purchase_history", "session_duration_minutes", "user_id"])
        value = json.dumps({**good, field: {"nested": [True, None]}}).encode()
    elif kind == 9:  # missing keys
        drop = draw.sample(sorted(good), draw.randint(1, 4))
        value = json.dumps({k: v for k, v in good.items() if k not in drop or k == "request_id"})
        value = value.encode()
    elif kind == 10:  # empty values
        value = b""
    else:  # a null key: valid requests are re-keyed, others refused
        key = None
        value = json.dumps(good if i % 24 == 11 else {**good, "age": -1}).encode()
    return key, value


def _rss_kib(worker: WorkerProcess) -> int:
    assert worker.process is not None
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    (line,) = [x for x in status.splitlines() if x.startswith("VmRSS:")]
    return int(line.split()[1])


async def _changelog_keys(bootstrap: str, topic: str) -> set[bytes]:
    got = await read_until(bootstrap, [topic], None)
    return {r.key for r in got[topic] if r.key is not None}


async def test_five_thousand_hostile_messages_each_leave_once_and_leave_no_state(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
) -> None:
    app_id = f"flood-{run_id}"
    names = topic_names(load_settings({}, topic_prefix=f"{run_id}.", app_id=app_id))
    source, bootstrap = names["prediction_requests"], kafka_broker.bootstrap
    fates = [names["predictions"], names["requests_invalid"], names["requests_throttled"]]
    env = {"STREAM_APP_ID": app_id, "STREAM_PARTITIONS": str(PARTITIONS),
           "TEST_BUNDLE_DIR": str(bundle_dir)}  # fmt: skip
    worker = start_worker(env, module="tests.integration.pipeline_app",
                          wait_topics={source: PARTITIONS})  # fmt: skip
    worker.wait_ready()
    draw = random.Random(SEED)
    messages = [_hostile(i, draw) for i in range(MESSAGES)]

    def decided(n: int) -> Callable[[dict[str, list[Record]]], bool]:
        return lambda got: sum(len(got[t]) for t in fates) >= n

    # A first round warms the worker up (imports, caches, buffers); memory is measured
    # from there.
    warm = 240
    await produce(bootstrap, source, messages[:warm])
    await read_until(bootstrap, fates, decided(warm), idle_seconds=0)
    before = _rss_kib(worker)

    not_ready: list[dict[str, Any]] = []
    stop = asyncio.Event()

    async def watch_readiness() -> None:
        while not stop.is_set():
            body = await asyncio.to_thread(worker.get, "/readyz")
            if not (body or {}).get("ready"):
                not_ready.append(body or {})
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch_readiness())
    try:
        await produce(bootstrap, source, messages[warm:])
        got = await read_until(bootstrap, fates, decided(MESSAGES))
    finally:
        stop.set()
        await watcher
    after = _rss_kib(worker)

    # Each message is found once: a decision by its request_id, else a refusal that keeps
    # its raw bytes (several messages may have the same bytes: the empty ones).
    by_id = Counter(json.loads(r.value)["request_id"] for t in (fates[0], fates[2]) for r in got[t])
    ids = {f"h{i:05d}" for i in range(MESSAGES)}
    assert set(by_id) <= ids and set(by_id.values()) <= {1}
    refused = Counter(Rejection.model_validate_json(r.value).raw for r in got[fates[1]])
    unanswered = Counter(v for i, (_, v) in enumerate(messages) if f"h{i:05d}" not in by_id)
    assert refused == unanswered
    fate_of = {"decided": len(by_id), "refused": sum(refused.values())}
    assert sum(len(got[t]) for t in fates) == MESSAGES
    assert fate_of["decided"] > 0 and fate_of["refused"] > 0
    assert not_ready == []
    health = worker.get("/health") or {}
    assert health["status"] == "healthy" and health["agents"]["failed_batches"] == {}
    assert "Restarting" not in worker.log_path.read_text(errors="replace")
    # The limiter's table holds a window for each client with a decided request, and no
    # row for anything refused.
    limiter = await _changelog_keys(bootstrap, f"{app_id}-rate-limits-changelog")
    assert limiter == {f"c-{rid}".encode() for rid in by_id}
    # Large buffers go back to the system when freed (stream_app/memory.py).
    assert after - before < 50 * 1024, f"RSS grew from {before} KiB to {after} KiB"
    print(f"{MESSAGES} hostile messages: {fate_of}; {len(limiter)} limiter rows; "
          f"RSS {before} -> {after} KiB")  # fmt: skip
