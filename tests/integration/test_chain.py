"""The whole chain on the real broker: aiokafka -> Faust agent with a table -> aiokafka."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream_app.localkafka import BrokerInfo
from tests.integration.chain_app import chain_topics
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

KEYS = 12
EVENTS = 300
PARTITIONS = 4


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_every_event_arrives_once_and_in_order_per_key(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    guarantee: str,
) -> None:
    app_id = f"chain-{run_id}"
    source, sink = chain_topics(app_id)
    start_worker(
        {
            "STREAM_APP_ID": app_id,
            "STREAM_PARTITIONS": str(PARTITIONS),
            "STREAM_PROCESSING_GUARANTEE": guarantee,
        },
        module="tests.integration.chain_app",
        wait_topics={source: PARTITIONS},
    )
    sent = await _produce(kafka_broker.bootstrap, source)
    received = await asyncio.wait_for(_read(kafka_broker.bootstrap, sink, EVENTS), timeout=60)

    by_key: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for key, value in received:
        event = json.loads(value)
        assert event["key"] == key
        by_key[key].append((event["seq"], event["seen"]))
    assert len(received) == EVENTS
    for key, seqs in sent.items():
        # Same order, each once; and the table counted each event exactly once.
        assert by_key[key] == [(seq, seq + 1) for seq in seqs], key


async def _produce(bootstrap: str, topic: str) -> dict[str, list[int]]:
    """Send EVENTS JSON events over KEYS keys; return the sequence numbers sent per key."""
    sent: dict[str, list[int]] = defaultdict(list)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(EVENTS):
            key = f"client-{i * 7 % KEYS}"
            seq = len(sent[key])
            sent[key].append(seq)
            value = json.dumps({"key": key, "seq": seq}).encode()
            await producer.send(topic, key=key.encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _read(bootstrap: str, topic: str, count: int) -> list[tuple[str, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        # With exactly_once the relay writes in transactions: see only committed ones.
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        out: list[tuple[str, bytes]] = []
        while len(out) < count:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                out.extend((r.key.decode(), r.value) for r in records)
        # Anything more within a moment would be a duplicate; collect it to fail on it.
        for records in (await consumer.getmany(timeout_ms=1500)).values():
            out.extend((r.key.decode(), r.value) for r in records)
        return out
    finally:
        await consumer.stop()
