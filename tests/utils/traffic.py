"""Prediction requests for the delivery tests (test_kill, test_two_workers_kill).

Request ``i`` is ``r{i:05d}``, stamped ``i / 10`` seconds after the start of traffic (10
requests per second of event time), from one of 300 clients; every 40th is invalid (age
5) so that two fate topics take part. The Kafka timestamp is the event time, as for any
replay of a past day.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tests.utils.kafka_io import Record, produce

__all__ = [
    "event_time_ms",
    "invalid_ids",
    "request",
    "request_id",
    "requests",
    "send",
    "start_of_traffic",
]


def request(rid: str, at: datetime, age: int) -> tuple[bytes, bytes]:
    """One request as ``(key, value)``: keyed by its client, like a real producer."""
    client = f"client-{zlib.crc32(rid.encode()) % 300}"
    body = {
        "request_id": rid, "client_id": client, "user_id": f"USR{rid}",
        "timestamp": at.isoformat(), "age": age, "purchase_history": [12.0, 3.5],
        "category_preference": "home", "session_duration_minutes": 4.0,
    }  # fmt: skip
    return client.encode(), json.dumps(body).encode()


def start_of_traffic() -> datetime:
    """A minute boundary 15 minutes ago: the traffic lies in the past (nothing is refused
    as stamped ahead) and within the topics' retention."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=15)


def requests(t0: datetime, start: int, stop: int) -> list[tuple[bytes | None, bytes]]:
    """Requests ``start`` to ``stop - 1``."""
    return [
        request(f"r{i:05d}", t0 + timedelta(seconds=i / 10), 5 if i % 40 == 7 else 30 + i % 50)
        for i in range(start, stop)
    ]


def invalid_ids(stop: int) -> set[str]:
    """The ids among the first ``stop`` requests that validation refuses."""
    return {f"r{i:05d}" for i in range(7, stop, 40)}


def event_time_ms(value: bytes) -> int:
    """A request's event time in ms, for its Kafka timestamp."""
    return int(datetime.fromisoformat(json.loads(value)["timestamp"]).timestamp() * 1000)


async def send(bootstrap: str, topic: str, messages: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Produce ``messages`` with their event time as Kafka timestamp."""
    await produce(bootstrap, topic, messages, timestamp_of=event_time_ms)


def request_id(record: Record) -> str:
    """The request id of a fate record (a prediction, or a rejection wrapping the request)."""
    value = json.loads(record.value)
    return str(value.get("request", value)["request_id"])
