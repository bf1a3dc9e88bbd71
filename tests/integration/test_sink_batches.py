"""The sink's sends on a real broker, as record batches of their own (many messages to a
partition) and one by one (a few): every message once, on the partition Kafka's default
partitioner gives its key (or the one it names), with its headers and timestamp, and
each acknowledgement naming the offset the message has."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.driver import Message
from agents.faust_step import _send_batches
from stream_app import localkafka
from stream_app.kafka_admin import TopicRequest, ensure_topics
from stream_app.partitioner import KeyPartitioner, default_partition

PARTITIONS = 3


async def _roundtrip(
    bootstrap: str, topic: str, messages: list[Message]
) -> tuple[list[Any], dict[bytes, Any]]:
    few = f"{topic}-few"
    await ensure_topics(bootstrap, [TopicRequest(t, PARTITIONS, 1) for t in (topic, few)])
    # A small batch size, so a partition's messages span several record batches.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=4096, partitioner=KeyPartitioner())  # fmt: skip
    await producer.start()
    try:
        acks = await asyncio.wait_for(_send_batches(producer, [(0, m) for m in messages]), 60)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in (topic, few) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: dict[bytes, Any] = {}
        deadline = asyncio.get_running_loop().time() + 60
        while len(seen) < len(messages) and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    assert r.value not in seen, "a message was written twice"
                    seen[r.value] = r
    finally:
        await consumer.stop()
    return acks, seen


def test_every_message_once_where_its_key_says_with_its_offset(
    kafka_broker: localkafka.BrokerInfo, run_id: str
) -> None:
    rng = random.Random(7)
    topic = f"{run_id}.sink-batches"
    messages = []
    for i in range(412):  # the last 12: a few to each partition of another topic
        to = topic if i < 400 else f"{topic}-few"
        key = None if i % 10 == 0 else f"key-{rng.randrange(50)}".encode()
        partition = 2 if i % 13 == 0 else None
        value = f"{i:04d}".encode() + b"x" * rng.randrange(0, 900)
        messages.append(Message(to, key, value, (("n", str(i).encode()),), partition,
                                timestamp=1_700_000_000.0 + i))  # fmt: skip
    acks, seen = asyncio.run(_roundtrip(kafka_broker.bootstrap, topic, messages))
    assert len(seen) == len(messages)
    for m, ack in zip(messages, acks, strict=True):
        assert m.value is not None
        record = seen[m.value]
        if m.partition is not None:
            assert record.partition == m.partition
        elif m.key is not None:
            assert record.partition == default_partition(m.key, PARTITIONS)
        assert (ack.topic, ack.partition, ack.offset) == (m.topic, record.partition, record.offset)
        assert record.key == m.key
        assert list(record.headers) == list(m.headers)
        assert m.timestamp is not None
        assert record.timestamp == int(m.timestamp * 1000)
