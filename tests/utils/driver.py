"""An in-memory store and sink for the batch driver (agents/driver.py), in one object."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.driver import Message

__all__ = ["Journal"]


class Journal:
    """Store and sink in one, so the test sees the order of sends and writes."""

    def __init__(self, rows: dict[bytes, Any] | None = None, partition: int = 0) -> None:
        self.rows = dict(rows or {})
        # Rows given at the start are what a restarted worker reads back from the
        # changelog: handed to the driver once, as on ``partition``.
        self._recovered = [(partition, key) for key in self.rows]
        self.calls: list[tuple[str, object]] = []
        self.messages: list[Message] = []

    def get(self, partition: int, key: bytes) -> Any:
        return self.rows.get(key)

    async def write(self, rows: Sequence[tuple[int, bytes, Any]]) -> None:
        for partition, key, row in rows:
            self.calls.append(("write", (partition, key)))
            self.rows[key] = row

    def recovered(self) -> list[tuple[int, bytes]]:
        out, self._recovered = self._recovered, []
        return out

    async def send_all(self, messages: Sequence[tuple[int, Message]]) -> list[None]:
        for source, message in messages:
            self.calls.append(("send", (source, message.topic, message.value)))
            self.messages.append(message)
        return [None] * len(messages)
