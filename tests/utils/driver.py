"""An in-memory store and sink for the batch driver (agents/driver.py), in one object."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.driver import Message

__all__ = ["Journal"]


class Journal:
    """Store and sink in one, so the test sees the order of sends and writes."""

    def __init__(self, rows: dict[bytes, Any] | None = None) -> None:
        self.rows = dict(rows or {})
        self.calls: list[tuple[str, object]] = []
        self.messages: list[Message] = []

    def get(self, key: bytes) -> Any:
        return self.rows.get(key)

    async def write(self, rows: Sequence[tuple[int, bytes, Any]]) -> None:
        for partition, key, row in rows:
            self.calls.append(("write", (partition, key)))
            self.rows[key] = row

    async def send_all(self, messages: Sequence[tuple[int, Message]]) -> list[None]:
        for source, message in messages:
            self.calls.append(("send", (source, message.topic, message.value)))
            self.messages.append(message)
        return [None] * len(messages)
