"""Which dead letters `stream-app replay` re-sends, and why the others stay: pure rules.

A dead letter is one record of requests-invalid: a :class:`~schemas.Rejection` with the
original bytes. It is re-sent when it is a request's (not an outcome's), its reason is
the one asked for, it reached requests-invalid at or after ``--since``, and no earlier
replay sent it (its marker, :func:`marker_key`, is in the replay topic).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from pydantic import ValidationError

from schemas.codec import decode
from schemas.events import Rejection, RejectReason

__all__ = [
    "REPLAYABLE_REASONS",
    "Fate",
    "ReplayCount",
    "judge",
    "marker_key",
    "parse_since",
]

# A rejected outcome's bytes are an outcome: never a request to re-send.
REPLAYABLE_REASONS: tuple[str, ...] = tuple(
    r for r in get_args(RejectReason) if not r.endswith("_outcome")
)
Fate = Literal["sent", "already_replayed", "other_reason", "before_since", "outcome", "unreadable"]
# How each fate is told in the count, in this order.
_TOLD: dict[str, str] = {
    "already_replayed": "already replayed",
    "other_reason": "another reason",
    "before_since": "before --since",
    "outcome": "outcomes (never sent as requests)",
    "unreadable": "not a Rejection",
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def marker_key(partition: int, offset: int, timestamp_ms: int) -> str:
    """The replay marker of a dead letter: where it is and when it arrived (a topic made
    anew restarts its offsets; the time tells its records apart).

    Example:
        >>> marker_key(2, 41, 1767225600000)
        '2:41:1767225600000'
    """
    return f"{partition}:{offset}:{timestamp_ms}"


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: an ISO 8601 time (UTC when it names no zone) or a duration back from
    ``now`` (``90m``, ``6h``, ``2d``, ``30s``); ValueError otherwise.

    Example:
        >>> now = datetime(2026, 1, 2, 12, tzinfo=UTC)
        >>> parse_since("6h", now).isoformat(), parse_since("2026-01-01T08:00", now).isoformat()
        ('2026-01-02T06:00:00+00:00', '2026-01-01T08:00:00+00:00')
        >>> parse_since("yesterday", now)
        Traceback (most recent call last):
        ...
        ValueError: --since takes an ISO time (2026-01-31T12:00:00Z) or a duration (90m, 6h, 2d)
    """
    match = _DURATION.match(text.strip())
    if match is not None:
        return now - timedelta(seconds=float(match[1]) * _UNIT[match[2]])
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            "--since takes an ISO time (2026-01-31T12:00:00Z) or a duration (90m, 6h, 2d)"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def judge(
    value: bytes, timestamp_ms: int, marker: str, *, reason: str, since_ms: int,
    replayed: set[str] | frozenset[str],
) -> tuple[Fate, Rejection | None]:  # fmt: skip
    """What becomes of one dead letter, with its Rejection when it could be read.

    Example:
        >>> r = b'{"reason": "schema", "raw": "eyJjbGllbnRfaWQiOiAiYzEifQ==", "client_id": "c1"}'
        >>> judge(r, 2000, "0:5:2000", reason="schema", since_ms=1000, replayed=set())[0]
        'sent'
        >>> judge(r, 2000, "0:5:2000", reason="schema", since_ms=1000, replayed={"0:5:2000"})[0]
        'already_replayed'
        >>> judge(r, 500, "0:5:500", reason="schema", since_ms=1000, replayed=set())[0]
        'before_since'
        >>> judge(r, 2000, "0:5:2000", reason="too_large", since_ms=1000, replayed=set())[0]
        'other_reason'
        >>> judge(b"{}", 2000, "0:6:2000", reason="schema", since_ms=1000, replayed=set())[0]
        'unreadable'
    """
    try:
        rejection = decode(value, Rejection)
    except ValidationError:
        return "unreadable", None
    if timestamp_ms < since_ms:
        return "before_since", rejection
    if rejection.reason != reason:
        return "other_reason", rejection
    if _is_outcome(rejection):
        return "outcome", rejection
    if marker in replayed:
        return "already_replayed", rejection
    return "sent", rejection


@dataclass
class ReplayCount:
    """How many dead letters met each fate."""

    fates: Counter[str] = field(default_factory=Counter)

    def lines(self, *, dry_run: bool) -> list[str]:
        """The count printed at the end.

        Example:
            >>> c = ReplayCount(Counter(sent=3, already_replayed=2, before_since=1))
            >>> print("\\n".join(c.lines(dry_run=False)))
            sent 3 to prediction-requests
            not sent 3: already replayed 2, before --since 1
            >>> c.lines(dry_run=True)[0]
            'would send 3 to prediction-requests (dry run: nothing sent)'
        """
        sent = self.fates["sent"]
        first = (
            f"would send {sent} to prediction-requests (dry run: nothing sent)"
            if dry_run
            else f"sent {sent} to prediction-requests"
        )
        kept = [(told, self.fates[fate]) for fate, told in _TOLD.items() if self.fates[fate]]
        total = sum(n for _, n in kept)
        if not kept:
            return [first, "not sent 0"]
        return [first, f"not sent {total}: " + ", ".join(f"{t} {n}" for t, n in kept)]


def _is_outcome(rejection: Rejection) -> bool:
    """A timestamp_ahead or malformed outcome shares a request's reasons: its bytes tell
    it apart (an outcome names ``converted`` and no ``client_id``)."""
    if rejection.client_id is not None:
        return False
    try:
        data = json.loads(rejection.raw)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and "converted" in data and "client_id" not in data
