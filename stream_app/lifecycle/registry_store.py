"""Where registry events live: the store protocol, in memory, and an append-only file.

A store only keeps events in order; the registry decides which events may be written.
The Kafka-topic store (the model-registry topic) implements the same protocol.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from stream_app.errors import RegistryError
from stream_app.lifecycle.registry_state import RegistryEvent

__all__ = ["InMemoryRegistryStore", "JsonlRegistryStore", "RegistryStore"]


@runtime_checkable
class RegistryStore(Protocol):
    """An append-only, ordered log of registry events."""

    def append(self, event: RegistryEvent) -> None:
        """Persist one event after every event appended before it."""
        ...

    def events(self, name: str | None = None) -> list[RegistryEvent]:
        """Every event in append order, or only those of model ``name``."""
        ...


class InMemoryRegistryStore:
    """A list of events: the default store and the test fake.

    Example:
        >>> store = InMemoryRegistryStore()
        >>> store.events()
        []
    """

    def __init__(self, events: Iterable[RegistryEvent] = ()) -> None:
        self._events = list(events)

    def append(self, event: RegistryEvent) -> None:
        """Keep the event."""
        self._events.append(event)

    def events(self, name: str | None = None) -> list[RegistryEvent]:
        """A copy of the events, optionally of one model only."""
        return [e for e in self._events if name is None or e.name == name]


class JsonlRegistryStore:
    """Events as JSON lines in one file, fsynced on append and replayed on open.

    A last line without its newline is a write that was cut off before ``append``
    returned (``append`` writes the line and newline together, then fsyncs), so it was
    never acknowledged: opening the store drops it, which also keeps the next append
    from being glued onto the fragment. Any other unreadable line is an error naming
    the line. One writer at a time; the file is never rewritten otherwise.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._events = self._replay()

    def append(self, event: RegistryEvent) -> None:
        """Write the event as one line and fsync before returning."""
        created = not self.path.exists()
        line = event.to_json() + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        if created:
            _fsync_directory(self.path.parent)
        self._events.append(event)

    def events(self, name: str | None = None) -> list[RegistryEvent]:
        """The events read at open plus those appended since, optionally of one model."""
        return [e for e in self._events if name is None or e.name == name]

    def _replay(self) -> list[RegistryEvent]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            os.truncate(self.path, keep)
            data = data[:keep]
        events = []
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                events.append(RegistryEvent.from_json(line.decode("utf-8")))
            except (RegistryError, UnicodeDecodeError) as exc:
                raise RegistryError(f"{self.path}:{number}: {exc}") from exc
        return events


def _fsync_directory(directory: Path) -> None:
    """Make a newly created file's directory entry durable too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
