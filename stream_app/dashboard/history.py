"""The report messages a dashboard draws, kept bounded: A/B reports, drift reports, alerts.

The worker's follower and the demo's collector feed the same :class:`ReportHistory`
with the raw messages of ab-reports, drift-reports and alerts, read with their topics'
contracts (``schemas.contracts``). A message seen twice (a follower that starts over, a
replayed output) replaces itself; past ``keep`` messages of a kind, the one that arrived
first goes. A message its contract refuses is counted as unreadable, never raised.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import ValidationError

from schemas.codec import decode_topic

__all__ = ["KEEP", "Kind", "ReportHistory"]

Kind = Literal["ab", "drift", "alerts"]
KEEP = 500  # per kind: a day of hourly drift windows and 5-minute A/B intervals fits


def _ab_id(m: Mapping[str, Any]) -> str:
    pair = (m.get("serving_version"), m.get("challenger_version"))
    return f"{m['model']}|{pair}|{m['interval_end']}"


def _drift_id(m: Mapping[str, Any]) -> str:
    return str(m["window_id"])


def _alert_id(m: Mapping[str, Any]) -> str:
    return f"{m['fingerprint']}|{m['kind']}|{m['timestamp']}"


# Each kind's topic, by its short name in schemas.contracts.CONTRACTS.
_TOPICS: dict[Kind, str] = {"ab": "ab_reports", "drift": "drift_reports", "alerts": "alerts"}
_IDS: dict[Kind, Callable[[Mapping[str, Any]], str]] = {
    "ab": _ab_id,
    "drift": _drift_id,
    "alerts": _alert_id,
}


class ReportHistory:
    """The newest ``keep`` messages of each kind, by identity.

    Example:
        >>> history = ReportHistory(keep=2)
        >>> alert = ('{"kind": "%s", "rule": "error_rate", "severity": "warning",'
        ...     ' "value": 0.1, "threshold": 0.05, "timestamp": "2026-03-02T1%d:00:00+00:00",'
        ...     ' "started_at": "2026-03-02T10:00:00+00:00", "fingerprint": "f", "service": "s"}')
        >>> for kind, hour in (("firing", 0), ("firing", 0), ("escalated", 1), ("resolved", 2)):
        ...     history.add("alerts", (alert % (kind, hour)).encode())
        >>> [m["kind"] for m in history.messages("alerts")]
        ['escalated', 'resolved']
        >>> history.add("alerts", b"not json"); history.add("ab", b'{"model": "m"}')
        >>> dict(history.unreadable)
        {'alerts': 1, 'ab': 1}
    """

    def __init__(self, keep: int = KEEP) -> None:
        if keep < 1:
            raise ValueError(f"keep must be an integer in [1, inf), got {keep}")
        self.keep = keep
        self._kept: dict[Kind, OrderedDict[str, dict[str, Any]]] = {k: OrderedDict() for k in _IDS}
        self.unreadable: Counter[str] = Counter()

    def add(self, kind: Kind, value: bytes | None) -> None:
        """Fold one message of ``kind``; a tombstone (None) is ignored."""
        if value is None:
            return
        try:
            message = decode_topic(_TOPICS[kind], value).model_dump(mode="json")
            identity = _IDS[kind](message)
        except (ValidationError, ValueError, TypeError, KeyError):
            self.unreadable[kind] += 1
            return
        kept = self._kept[kind]
        kept[identity] = message
        while len(kept) > self.keep:
            kept.popitem(last=False)

    def messages(self, kind: Kind) -> list[dict[str, Any]]:
        """The kept messages of ``kind``, in the order they first arrived."""
        return list(self._kept[kind].values())
