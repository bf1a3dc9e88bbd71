"""Where registry events live: the store protocol, in memory, and an append-only file.

A store keeps events in order and refuses a write made from an out-of-date view (an
optimistic-concurrency check on the log's position); the registry decides which events
may be written. The Kafka-topic store (the model-registry topic) implements the same
protocol.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from stream_app.errors import RegistryConflictError, RegistryError
from stream_app.lifecycle.files import fsync_directory
from stream_app.lifecycle.registry_state import RegistryEvent

__all__ = ["InMemoryRegistryStore", "JsonlRegistryStore", "RegistryStore", "check_position"]


@runtime_checkable
class RegistryStore(Protocol):
    """An append-only, ordered log of registry events shared by any number of writers.

    Positions: the position of a log is the number of events in it (0 when empty); the
    event at index ``i`` of ``events()`` was appended at position ``i``. Events are never
    changed, removed or reordered, so a position seen once stays a valid prefix.

    Conflicts: ``append(event, expected_position=p)`` writes ``event`` only if the log
    holds exactly ``p`` events at that moment, as one atomic step against every other
    writer (other objects, threads and processes on the same log). Otherwise it writes
    nothing and raises ``RegistryConflictError`` (naming both positions); the caller
    reads ``events()`` again, re-validates and may try again. The check is what keeps two
    writers from appending events that contradict each other.

    For a store on a Kafka topic: keep the log in one partition; ``events()`` reads it to
    the current end; ``append`` must make "the end is still ``p``" and the produce one
    step (for example by sending every write through the single owner of the partition,
    which compares its end offset count before producing), and return only once the
    event is acknowledged.
    """

    def append(self, event: RegistryEvent, *, expected_position: int) -> int:
        """Persist ``event`` at ``expected_position``; return the new position (p + 1).

        Durable when it returns: an acknowledged event is in every later ``events()``.
        RegistryConflictError, with nothing written, when the log has moved.
        """
        ...

    def events(self, name: str | None = None) -> list[RegistryEvent]:
        """The log as it stands now, every writer's events included, in append order.

        With ``name``, only that model's events (their indexes are then not positions).
        """
        ...


def check_position(expected: int, actual: int) -> None:
    """Raise RegistryConflictError unless the log is still where the writer saw it.

    Example:
        >>> check_position(3, 3)
        >>> check_position(2, 3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        stream_app.errors.RegistryConflictError: ... expected position 2, the log has 3 events...
    """
    if isinstance(expected, bool) or not isinstance(expected, int) or expected != actual:
        raise RegistryConflictError(
            f"registry log moved: expected position {expected!r}, the log has {actual} "
            f"event{'' if actual == 1 else 's'}; read it again and retry"
        )


class InMemoryRegistryStore:
    """A list of events: the default store and the test fake.

    Check and append happen under a lock, so registries in several threads may share it.

    Example:
        >>> store = InMemoryRegistryStore()
        >>> store.events()
        []
    """

    def __init__(self, events: Iterable[RegistryEvent] = ()) -> None:
        self._events = list(events)
        self._lock = threading.Lock()

    def append(self, event: RegistryEvent, *, expected_position: int) -> int:
        """Keep the event if the log still has ``expected_position`` events."""
        with self._lock:
            check_position(expected_position, len(self._events))
            self._events.append(event)
            return len(self._events)

    def events(self, name: str | None = None) -> list[RegistryEvent]:
        """A copy of the events, optionally of one model only."""
        with self._lock:
            return [e for e in self._events if name is None or e.name == name]


class JsonlRegistryStore:
    """Events as JSON lines in one file, shared by processes through ``flock``.

    ``append`` takes an exclusive lock on the file, reads what other writers added,
    checks the position, writes the line and newline together and fsyncs before
    releasing. Readers take a shared lock and read only complete lines.

    A last line without its newline can only be a write cut off before ``append``
    returned (a writer dies holding the lock): never acknowledged, so it is skipped
    when reading, and the next writer, under the exclusive lock, cuts it off before
    appending. A reader never changes the file. Any other unreadable line is an error
    naming the line.

    Example:
        >>> import tempfile
        >>> from datetime import UTC, datetime
        >>> event = RegistryEvent("registered", "m", "1.0.0", datetime(2026, 1, 1, tzinfo=UTC),
        ...                       {"path": "models/m/1.0.0"})
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     writer = JsonlRegistryStore(f"{tmp}/registry.jsonl")
        ...     elsewhere = JsonlRegistryStore(f"{tmp}/registry.jsonl")  # another process
        ...     position = writer.append(event, expected_position=0)
        ...     seen = [e.version for e in elsewhere.events()]
        ...     try:
        ...         elsewhere.append(event, expected_position=0)
        ...     except RegistryConflictError:
        ...         print("conflict")
        conflict
        >>> position, seen
        (1, ['1.0.0'])
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._events: list[RegistryEvent] = []
        self._offset = 0  # bytes of complete lines read so far
        self._lines = 0  # lines read so far (blank ones too), for error messages
        self._lock = threading.Lock()  # guards the cache when threads share this object
        self.events()  # replay now: a corrupt log is reported on open

    def append(self, event: RegistryEvent, *, expected_position: int) -> int:
        """Write the event as one line if the file still has ``expected_position`` events."""
        line = (event.to_json() + "\n").encode("utf-8")
        created = not self.path.exists()
        with self._lock, self.path.open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
            self._read_new(handle)
            check_position(expected_position, len(self._events))
            if os.fstat(handle.fileno()).st_size > self._offset:
                # A torn line from a writer that died mid-append: no one else can be
                # writing now, so it is safe to cut before appending after it.
                handle.truncate(self._offset)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
            self._offset += len(line)
            self._lines += 1
            self._events.append(event)
            position = len(self._events)
        if created:
            fsync_directory(self.path.parent)
        return position

    def events(self, name: str | None = None) -> list[RegistryEvent]:
        """The file's events now (read past what was seen before), optionally of one model."""
        with self._lock:
            try:
                handle = self.path.open("rb")
            except FileNotFoundError:
                handle = None
            if handle is not None:
                with handle:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
                    self._read_new(handle)
            return [e for e in self._events if name is None or e.name == name]

    def _read_new(self, handle: BinaryIO) -> None:
        """Parse the complete lines after ``_offset``; the caller holds a lock."""
        size = os.fstat(handle.fileno()).st_size
        if size < self._offset:
            raise RegistryError(f"{self.path}: the log shrank below what was already read")
        handle.seek(self._offset)
        data = handle.read(size - self._offset)
        # Only up to the last newline: anything after it is a line still being written.
        for raw in data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]:
            if raw.strip():
                try:
                    self._events.append(RegistryEvent.from_json(raw.decode("utf-8")))
                except (RegistryError, UnicodeDecodeError) as exc:
                    raise RegistryError(f"{self.path}:{self._lines + 1}: {exc}") from exc
            self._lines += 1
            self._offset += len(raw) + 1
