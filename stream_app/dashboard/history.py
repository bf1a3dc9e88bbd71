"""The report messages a dashboard draws, kept bounded: A/B reports, drift reports, alerts.

The worker's follower and the demo's collector feed the same :class:`ReportHistory`
with the raw messages of ab-reports, drift-reports and alerts. A message seen twice (a
follower that starts over, a replayed output) replaces itself; past ``keep`` messages of
a kind, the one that arrived first goes. Unreadable messages are counted, never raised.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Literal

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


_IDS: dict[Kind, Callable[[Mapping[str, Any]], str]] = {
    "ab": _ab_id,
    "drift": _drift_id,
    "alerts": _alert_id,
}


class ReportHistory:
    """The newest ``keep`` messages of each kind, by identity.

    Example:
        >>> history = ReportHistory(keep=2)
        >>> for end in ("T1", "T1", "T2", "T3"):
        ...     history.add("ab", json.dumps({"model": "m", "interval_end": end}).encode())
        >>> [m["interval_end"] for m in history.messages("ab")]
        ['T2', 'T3']
        >>> history.add("alerts", b"not json"); dict(history.unreadable)
        {'alerts': 1}
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
            message = json.loads(value)
            if not isinstance(message, dict):
                raise TypeError("not an object")
            identity = _IDS[kind](message)
        except (ValueError, TypeError, KeyError):
            self.unreadable[kind] += 1
            return
        kept = self._kept[kind]
        kept[identity] = message
        while len(kept) > self.keep:
            kept.popitem(last=False)

    def messages(self, kind: Kind) -> list[dict[str, Any]]:
        """The kept messages of ``kind``, in the order they first arrived."""
        return list(self._kept[kind].values())
