"""Join outcomes to the predictions they belong to, by request_id, within a TTL of event time.

State lives in one entry per request_id (a Faust table row in agents/ab_join.py): a
prediction waits there for its outcome and an outcome for its prediction. The first
match gives a :class:`~schemas.monitor.JoinedOutcome`; anything after it for the same
request is a duplicate and counts nothing, and an outcome that contradicts the one kept
(another ``converted``) becomes a ``conflicting_outcome`` Rejection: the first outcome
stands, and a producer cannot change a counted conversion by writing another. An entry
older than ``ttl_seconds`` behind the partition's watermark expires: a waiting
prediction is dropped (most requests never convert), a waiting outcome becomes an
``unknown_outcome`` Rejection.

Expiry is checked when a key is touched, and :func:`join_fold` with no events (the
batch driver's expiry, which hands out only entries not written for a TTL) turns an
expired entry into its leftovers, so a result never depends on when expiry ran: an
entry past its TTL never matches.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from schemas.events import FieldError, Outcome, Rejection, Variant
from schemas.monitor import JoinedOutcome
from stream_app.fold import Fold, Folded
from stream_app.inference.validate import rejection_from_error, too_large_rejection
from stream_app.partitioner import default_partition

__all__ = [
    "MAX_OUTCOME_BYTES",
    "Conversion",
    "Exposure",
    "JoinEntry",
    "JoinStep",
    "OutcomeJoin",
    "Seen",
    "join_fold",
    "needs_rekey",
    "parse_outcome",
]

# An outcome is about 100 bytes; the bound keeps a waiting outcome's raw copy small.
MAX_OUTCOME_BYTES: Final = 16 * 1024


def parse_outcome(raw: bytes, *, max_bytes: int = MAX_OUTCOME_BYTES) -> Outcome | Rejection:
    """Parse an outcome message; a Rejection (raw kept, no values echoed) when it fails.

    Example:
        >>> parse_outcome(b'{"request_id": "r1", "converted": 1,'
        ...               b' "timestamp": "2026-01-01T00:00:00Z"}').converted
        1
        >>> bad = parse_outcome(b'{"request_id": "r1", "converted": 7}')
        >>> bad.reason, bad.request_id, [e.loc for e in bad.errors]
        ('schema', 'r1', ['converted', 'timestamp'])
        >>> parse_outcome(b"{nope").reason
        'malformed_json'
    """
    if len(raw) > max_bytes:
        return too_large_rejection(raw, max_bytes)
    try:
        return Outcome.model_validate_json(raw)
    except ValidationError as exc:
        return rejection_from_error(bytes(raw), exc)


def needs_rekey(key: bytes | None, partition: int, request_id: str, partitions: int) -> bool:
    """Whether an outcome must be re-sent keyed by its request_id: wrong key or partition.

    Example:
        >>> needs_rekey(b"r1", 0, "r1", 1), needs_rekey(None, 0, "r1", 1)
        (False, True)
    """
    wanted = request_id.encode()
    return key != wanted or partition != default_partition(wanted, partitions)


@dataclass(frozen=True)
class Exposure:
    """What the join keeps of a prediction: its variant, model version and event time, and
    the version pair it was scored under (None in entries kept before exposures had it)."""

    variant: Variant
    model_version: str
    at: float
    serving_version: str | None = None
    challenger_version: str | None = None


@dataclass(frozen=True)
class Conversion:
    """What the join keeps of an outcome: converted, event time, and the raw message."""

    converted: int
    at: float
    raw: bytes


@dataclass(frozen=True)
class JoinEntry:
    """One request's join state; ``partition`` is where it lives (expiry deletes by it)."""

    request_id: str
    partition: int
    first_seen: float
    exposure: Exposure | None = None
    outcome: Conversion | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for a Faust table."""
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "partition": self.partition,
            "first_seen": self.first_seen,
            "exposure": None,
            "outcome": None,
        }
        if self.exposure is not None:
            e = self.exposure
            out["exposure"] = {
                "variant": e.variant, "model_version": e.model_version, "at": e.at,
                "serving_version": e.serving_version, "challenger_version": e.challenger_version,
            }  # fmt: skip
        if self.outcome is not None:
            o = self.outcome
            raw = base64.b64encode(o.raw).decode("ascii")
            out["outcome"] = {"converted": o.converted, "at": o.at, "raw": raw}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JoinEntry:
        """Inverse of :meth:`to_dict`."""
        e, o = data.get("exposure"), data.get("outcome")
        return cls(
            request_id=str(data["request_id"]),
            partition=int(data["partition"]),
            first_seen=float(data["first_seen"]),
            exposure=None
            if e is None
            else Exposure(
                e["variant"],
                e["model_version"],
                e["at"],
                e.get("serving_version"),
                e.get("challenger_version"),
            ),  # fmt: skip
            outcome=None
            if o is None
            else Conversion(int(o["converted"]), float(o["at"]), base64.b64decode(o["raw"])),
        )


@dataclass(frozen=True)
class JoinStep:
    """The result of one event: the new entry, and what to publish.

    ``expired`` is the unknown_outcome Rejection of an older entry for the same key that
    had passed its TTL; ``duplicate`` says the event repeated a side already present;
    ``conflict`` is the conflicting_outcome Rejection of an outcome that contradicts the
    one kept.
    """

    entry: JoinEntry
    joined: JoinedOutcome | None = None
    expired: Rejection | None = None
    duplicate: bool = False
    conflict: Rejection | None = None


class OutcomeJoin:
    """The join's rules: the TTL in seconds of event time.

    Example:
        >>> join = OutcomeJoin(ttl_seconds=60)
        >>> seen = Exposure("B", "1.1.0", at=100.0)
        >>> step = join.on_prediction(None, "r1", seen, partition=0, watermark=100.0)
        >>> out = Outcome(request_id="r1", converted=1, timestamp="1970-01-01T00:02:00Z")
        >>> step = join.on_outcome(step.entry, out, b"...", partition=0, watermark=120.0)
        >>> step.joined.variant, step.joined.converted, step.joined.timestamp.minute
        ('B', 1, 2)
        >>> join.on_outcome(step.entry, out, b"...", partition=0, watermark=121.0).duplicate
        True
        >>> no = Outcome(request_id="r1", converted=0, timestamp="1970-01-01T00:02:01Z")
        >>> join.on_outcome(step.entry, no, b"...", partition=0, watermark=122.0).conflict.reason
        'conflicting_outcome'
        >>> step.entry.outcome.converted  # the first outcome stands
        1
    """

    def __init__(self, ttl_seconds: float) -> None:
        if not (math.isfinite(ttl_seconds) and ttl_seconds > 0):
            raise ValueError(f"ttl_seconds must be finite and > 0, got {ttl_seconds!r}")
        self.ttl_seconds = float(ttl_seconds)

    def is_expired(self, entry: JoinEntry, watermark: float) -> bool:
        """Whether ``entry`` has waited more than the TTL behind ``watermark``."""
        return watermark - entry.first_seen > self.ttl_seconds

    def expiry(self, entry: JoinEntry) -> Rejection | None:
        """What an expired entry leaves behind: a Rejection for an unmatched outcome."""
        if entry.outcome is None or entry.exposure is not None:
            return None
        error = FieldError(
            loc="request_id",
            message=f"no prediction for this request within {self.ttl_seconds:g} s of event time",
            type="unknown_outcome",
        )
        return Rejection(
            reason="unknown_outcome",
            errors=(error,),
            raw=entry.outcome.raw,
            request_id=entry.request_id,
        )

    def on_prediction(
        self,
        entry: JoinEntry | None,
        request_id: str,
        exposure: Exposure,
        *,
        partition: int,
        watermark: float,
    ) -> JoinStep:
        """Fold a prediction into the request's entry (None when the table has none)."""
        entry, expired = self._live(entry, watermark)
        if entry is None:
            fresh = JoinEntry(request_id, partition, exposure.at, exposure=exposure)
            return JoinStep(fresh, expired=expired)
        if entry.exposure is not None:
            return JoinStep(entry, expired=expired, duplicate=True)
        updated = replace(entry, exposure=exposure)
        return JoinStep(_settled(updated), joined=self._joined(updated), expired=expired)

    def on_outcome(
        self,
        entry: JoinEntry | None,
        outcome: Outcome,
        raw: bytes,
        *,
        partition: int,
        watermark: float,
    ) -> JoinStep:
        """Fold an outcome (and its raw bytes, kept for a later rejection) into the entry."""
        entry, expired = self._live(entry, watermark)
        conversion = Conversion(outcome.converted, outcome.timestamp.timestamp(), bytes(raw))
        if entry is None:
            fresh = JoinEntry(outcome.request_id, partition, conversion.at, outcome=conversion)
            return JoinStep(fresh, expired=expired)
        if entry.outcome is not None:
            conflict = None
            if entry.outcome.converted != conversion.converted:
                conflict = self._conflict(entry.request_id, conversion.raw)
            return JoinStep(entry, expired=expired, duplicate=True, conflict=conflict)
        updated = replace(entry, outcome=conversion)
        return JoinStep(_settled(updated), joined=self._joined(updated), expired=expired)

    @staticmethod
    def _conflict(request_id: str, raw: bytes) -> Rejection:
        error = FieldError(
            loc="converted",
            message="another outcome for this request was counted first and says otherwise",
            type="conflicting_outcome",
        )
        return Rejection(
            reason="conflicting_outcome", errors=(error,), raw=raw, request_id=request_id
        )

    def _live(
        self, entry: JoinEntry | None, watermark: float
    ) -> tuple[JoinEntry | None, Rejection | None]:
        if entry is not None and self.is_expired(entry, watermark):
            return None, self.expiry(entry)
        return entry, None

    @staticmethod
    def _joined(entry: JoinEntry) -> JoinedOutcome | None:
        exposure, outcome = entry.exposure, entry.outcome
        if exposure is None or outcome is None:
            return None
        # The match exists from the later of the two event times on.
        at = datetime.fromtimestamp(max(exposure.at, outcome.at), UTC)
        return JoinedOutcome(
            timestamp=at,
            request_id=entry.request_id,
            variant=exposure.variant,
            model_version=exposure.model_version,
            converted=1 if outcome.converted else 0,
            serving_version=exposure.serving_version,
            challenger_version=exposure.challenger_version,
        )


def _settled(entry: JoinEntry) -> JoinEntry:
    """A joined entry without its outcome's bytes: they were kept for an unknown_outcome
    rejection, which a joined request never gets. What stays until the TTL (the
    variant, the versions, converted and the times) answers duplicates and conflicts."""
    if entry.outcome is None or not entry.outcome.raw:
        return entry
    return replace(entry, outcome=replace(entry.outcome, raw=b""))


@dataclass(frozen=True)
class Seen:
    """One event for the join: a prediction's exposure, or an outcome and its bytes."""

    request_id: str
    partition: int
    exposure: Exposure | None = None
    outcome: Outcome | None = None
    raw: bytes = b""

    @property
    def at(self) -> float:
        """The event time: the prediction's or the outcome's."""
        if self.exposure is not None:
            return self.exposure.at
        assert self.outcome is not None  # noqa: S101 - one of the two is always given
        return self.outcome.timestamp.timestamp()


def join_fold(join: OutcomeJoin) -> Fold[JoinEntry, Seen, JoinedOutcome | Rejection]:
    """The join as a fold over one request's events at the partition's watermark ``now``;
    an entry that has waited past the TTL at ``now`` expires (None), with its leftover.

    Example:
        >>> fold = join_fold(OutcomeJoin(ttl_seconds=60))
        >>> seen = Seen("r1", 0, exposure=Exposure("A", "1.0.0", at=0.0))
        >>> step = fold(None, [seen], now=0.0)
        >>> step.results, step.state.exposure.variant
        ((), 'A')
        >>> fold(step.state, [], now=61.0)  # a prediction never converted: dropped
        Folded(state=None, results=())
    """

    def fold(
        state: JoinEntry | None, events: Sequence[Seen], now: float
    ) -> Folded[JoinEntry, JoinedOutcome | Rejection]:
        entry = state
        results: list[JoinedOutcome | Rejection] = []
        for seen in events:
            if seen.exposure is not None:
                step = join.on_prediction(
                    entry, seen.request_id, seen.exposure, partition=seen.partition, watermark=now
                )
            else:
                assert seen.outcome is not None  # noqa: S101 - one of the two is always given
                step = join.on_outcome(
                    entry, seen.outcome, seen.raw, partition=seen.partition, watermark=now
                )
            results.extend(r for r in (step.expired, step.joined, step.conflict) if r is not None)
            entry = step.entry
        # Expired at ``now``: also an entry the batch just made from an event that was
        # already a TTL behind the partition's clock (its batch also held later events).
        if entry is not None and join.is_expired(entry, now):
            leftover = join.expiry(entry)
            return Folded(None, (*results, *([] if leftover is None else [leftover])))
        return Folded(entry, tuple(results))

    return fold
