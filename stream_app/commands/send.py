"""`stream-app send FILE.jsonl`: produce requests or outcomes from a file, as upstream does.

Each line is one JSON object, sent as it is written (the bytes of the line) to
prediction-requests keyed by its ``client_id``, or to outcomes keyed by its
``request_id``. A line that is not a JSON object is skipped and reported by its number,
never by its content. Blank lines are ignored.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click

from stream_app.commands.topic_io import (
    one_line_errors,
    open_producer,
    run,
    topic_name,
    topic_partitions,
)
from stream_app.config import Settings, load_settings

__all__ = ["SendReport", "keyed_lines", "send"]

# topic option -> (short topic name, the field the key is taken from)
_TARGETS = {
    "requests": ("prediction-requests", "client_id"),
    "outcomes": ("outcomes", "request_id"),
}
# A file at least this large gets a progress bar (on a terminal).
_PROGRESS_BYTES = 1024 * 1024
_SHOWN_SKIPS = 20
_CHECK_EVERY = 10_000


@dataclass
class SendReport:
    """What a send did: lines sent, line numbers skipped (not a JSON object)."""

    sent: int = 0
    skipped: list[int] = field(default_factory=list)

    def lines(self, topic: str) -> list[str]:
        """The summary printed at the end.

        Example:
            >>> SendReport(3, [2, 5]).lines("outcomes")
            ['sent 3 lines to outcomes', 'skipped 2 lines not a JSON object: 2, 5']
            >>> SendReport(1, [4]).lines("outcomes")
            ['sent 1 line to outcomes', 'skipped 1 line not a JSON object: 4']
        """
        out = [f"sent {_lines(self.sent)} to {topic}"]
        if self.skipped:
            shown = ", ".join(map(str, self.skipped[:_SHOWN_SKIPS]))
            more = len(self.skipped) - _SHOWN_SKIPS
            if more > 0:
                shown += f" and {more} more"
            out.append(f"skipped {_lines(len(self.skipped))} not a JSON object: {shown}")
        return out


def _lines(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"


def keyed_lines(
    lines: Iterable[bytes], key_field: str
) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    """``(line number, key, value)`` per non-blank line; value None: not a JSON object.

    The key is ``key_field`` when it is a string, else None (the app re-keys such a message).

    Example:
        >>> list(keyed_lines([b'{"client_id": "c1"}\\n', b"\\n", b"oops\\n", b'{"a": 1}'],
        ...                  "client_id"))
        [(1, b'c1', b'{"client_id": "c1"}'), (3, None, None), (4, None, b'{"a": 1}')]
    """
    for number, line in enumerate(lines, start=1):
        value = line.rstrip(b"\r\n")
        if not value.strip():
            continue
        try:
            data: Any = json.loads(value)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            yield number, None, None
            continue
        key = data.get(key_field)
        yield number, key.encode() if isinstance(key, str) else None, value


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--topic",
    type=click.Choice(sorted(_TARGETS)),
    default="requests",
    show_default=True,
    help="requests: prediction-requests, keyed by client_id; outcomes: keyed by request_id.",
)
@one_line_errors
def send(file: Path, topic: str) -> None:
    """Send a .jsonl file's lines to the requests or outcomes topic.

    Each line of FILE is one JSON object, sent as written.
    Lines that are not a JSON object are skipped and listed by line number at the end;
    a progress bar shows on a terminal for files of 1 MiB or more.
    """
    short, key_field = _TARGETS[topic]
    settings = load_settings()
    report = run(_send(settings, file, short, key_field))
    click.echo("\n".join(report.lines(short)))


async def _send(settings: Settings, file: Path, short: str, key_field: str) -> SendReport:
    name = topic_name(settings, short)
    await topic_partitions(settings, name)
    report = SendReport()
    producer = open_producer(settings, enable_idempotence=True)
    await producer.start()
    try:
        with file.open("rb") as handle, _progress(file) as bar:
            pending = []
            for number, key, value in keyed_lines(_counted(handle, bar), key_field):
                if value is None:
                    report.skipped.append(number)
                    continue
                pending.append(await producer.send(name, value, key=key))
                report.sent += 1
                if len(pending) >= _CHECK_EVERY:
                    await _delivered(pending)
            await _delivered(pending)
    finally:
        await producer.stop()
    return report


async def _delivered(pending: list[Any]) -> None:
    # A message the broker refused raises here, before a count of "sent" is printed.
    for delivery in pending:
        await delivery
    pending.clear()


def _progress(file: Path) -> Any:
    size = file.stat().st_size
    hidden = size < _PROGRESS_BYTES
    return click.progressbar(
        length=size, label=f"sending {file.name}", file=io.StringIO() if hidden else sys.stderr
    )


def _counted(handle: IO[bytes], bar: Any) -> Iterator[bytes]:
    for line in handle:
        bar.update(len(line))
        yield line
