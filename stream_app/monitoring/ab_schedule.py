"""When to publish an A/B report: per-variant counters folded into intervals of event time.

One :class:`ABState` per model (a Faust table row keyed by model name), holding one
experiment per version pair (serving version, challenger version). Exposures and latency
come from the scorer's batch summaries, conversions from joined outcomes; each names the
pair it was scored under and goes into that pair's open interval of its event time. An
interval ``[k*I, (k+1)*I)`` closes, for every pair at once, when the model's watermark
minus the grace passes its end: its counters join the pair's totals and, when the pair has
a challenger, one :class:`IntervalReport` comes out. Intervals that saw no event give no
report. An event for an interval already closed (an outcome comes after its exposure by
nature, often past the grace) is counted as late and goes into the oldest open interval
instead: the totals are cumulative, so it is in the next report, and a report never
changes after it was published.

A fleet may serve two pairs at once (a worker that has not swapped yet, or that could not
load the promoted version): each pair's summaries feed its own experiment and never reset
another's. The state keeps the ``MAX_PAIRS`` pairs heard from most recently (event time);
a pair beyond that is forgotten with its counters, and an outcome for a pair the state
does not hold starts it again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from schemas.events import Variant
from schemas.monitor import BatchSummary, JoinedOutcome, RequestCounted
from schemas.reports import ABComparison, ABReportMessage
from stream_app.fold import Folded
from stream_app.monitoring.ab_counters import ABCounters
from stream_app.monitoring.ab_test import SRM_ALPHA, ABReport, report_from_counters

__all__ = ["MAX_PAIRS", "ABScheduler", "ABState", "ABStep", "Experiment", "IntervalReport"]

Counters = Mapping[Variant, ABCounters]
Pair = tuple[str, str | None]  # (serving version, challenger version)
_VARIANTS: tuple[Variant, ...] = ("A", "B")
# Version pairs one model's state keeps: a fleet mid-rollout serves two, a rollback three.
MAX_PAIRS = 4


@dataclass(frozen=True)
class Experiment:
    """The experiment name and the two versions compared (challenger None: no test)."""

    name: str
    serving_version: str
    challenger_version: str | None


@dataclass(frozen=True)
class IntervalReport:
    """The report published when one interval closed."""

    model: str
    experiment: Experiment
    interval_end: float
    report: ABReport
    late_events: int

    def to_message(self) -> ABReportMessage:
        """The ab-reports message: model, experiment, versions, interval end, report."""
        return ABReportMessage(
            model=self.model,
            experiment=self.experiment.name,
            serving_version=self.experiment.serving_version,
            challenger_version=self.experiment.challenger_version,
            interval_end=datetime.fromtimestamp(self.interval_end, UTC),
            late_events=self.late_events,
            report=ABComparison(**self.report.to_dict()),
        )

    def to_dict(self) -> dict[str, Any]:
        """:meth:`to_message` as JSON-safe Python values."""
        return self.to_message().model_dump(mode="json")

    def guardrails(self) -> dict[str, float]:
        """Metrics for the alert engine: ab_srm (1.0 = split broken), ab_latency_increase
        (B over A as a fraction; absent when it cannot be known)."""
        srm = self.report.srm_p_value
        out = {"ab_srm": 1.0 if srm is not None and srm < SRM_ALPHA else 0.0}
        if self.report.latency_increase_pct is not None:
            out["ab_latency_increase"] = self.report.latency_increase_pct / 100.0
        return out


@dataclass(frozen=True)
class PairState:
    """One version pair's experiment: its counters, open intervals and sequential test."""

    newest: float
    totals: Counters = field(default_factory=dict)
    pending: Mapping[float, Counters] = field(default_factory=dict)
    sequential: float = 1.0
    late: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "newest": self.newest,
            "totals": _counters_out(self.totals),
            "pending": {repr(end): _counters_out(c) for end, c in self.pending.items()},
            "sequential": self.sequential,
            "late": self.late,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            newest=float(data["newest"]),
            totals=_counters_in(data["totals"]),
            pending={float(end): _counters_in(c) for end, c in data["pending"].items()},
            sequential=float(data["sequential"]),
            late=int(data["late"]),
        )


@dataclass(frozen=True)
class ABState:
    """One model's A/B state: its clocks and one experiment per version pair."""

    watermark: float | None = None
    closed_until: float | None = None
    pairs: Mapping[Pair, PairState] = field(default_factory=dict)
    forgotten: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for a Faust table."""
        return {
            "watermark": self.watermark,
            "closed_until": self.closed_until,
            "pairs": [[a, b, p.to_dict()] for (a, b), p in self.pairs.items()],
            "forgotten": self.forgotten,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ABState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            watermark=data["watermark"],
            closed_until=data["closed_until"],
            pairs={(a, b): PairState.from_dict(p) for a, b, p in data["pairs"]},
            forgotten=int(data["forgotten"]),
        )


@dataclass(frozen=True)
class ABStep:
    """The new state and the reports of every interval that closed (oldest first)."""

    state: ABState
    reports: tuple[IntervalReport, ...] = ()


class ABScheduler:
    """The A/B reporting rules for one deployment's settings.

    Example:
        >>> from datetime import datetime, UTC
        >>> def at(s): return datetime.fromtimestamp(s, UTC)
        >>> a, b = ABCounters(), ABCounters()
        >>> a.record_exposures([40.0] * 500); b.record_exposures([44.0] * 500)
        >>> batch = BatchSummary(model_name="m", bucket_start=at(0), first_event=at(0),
        ...     last_event=at(59), serving_version="1", challenger_version="2", scored=1000,
        ...     variants={"A": a.to_dict(), "B": b.to_dict()})
        >>> ab = ABScheduler(model="m", experiment="exp", interval_seconds=60,
        ...                  grace_seconds=10, expected_b_share=0.5)
        >>> step = ab.on_batch(ABState(), batch)
        >>> step.reports
        ()
        >>> [(r.interval_end, r.experiment.challenger_version)
        ...  for r in ab.on_time(step.state, 70.0).reports]
        [(60.0, '2')]
    """

    def __init__(
        self,
        *,
        model: str,
        experiment: str,
        interval_seconds: float,
        grace_seconds: float,
        expected_b_share: float,
        max_latency_increase: float = 0.5,
    ) -> None:
        if not (math.isfinite(interval_seconds) and interval_seconds > 0):
            raise ValueError(f"interval_seconds must be finite and > 0, got {interval_seconds!r}")
        if not (math.isfinite(grace_seconds) and grace_seconds >= 0):
            raise ValueError(f"grace_seconds must be finite and >= 0, got {grace_seconds!r}")
        if not 0.0 < expected_b_share < 1.0:
            raise ValueError(f"expected_b_share must be in (0, 1), got {expected_b_share!r}")
        if not max_latency_increase >= 0.0:
            raise ValueError(f"max_latency_increase must be >= 0, got {max_latency_increase!r}")
        self.model = model
        self.experiment = experiment
        self.interval = float(interval_seconds)
        self.grace = float(grace_seconds)
        self.expected_b_share = expected_b_share
        self.max_latency_increase = max_latency_increase

    def on_batch(self, state: ABState, summary: BatchSummary) -> ABStep:
        """Fold a batch summary's per-variant exposures and latencies into its pair."""
        at = summary.bucket_start.timestamp()
        seen = {v: ABCounters.from_dict(c) for v, c in summary.variants.items()}
        pair = (summary.serving_version, summary.challenger_version)
        return self._close(self._add(self._clocked(state, at), pair, at, seen))

    def on_outcome(self, state: ABState, joined: JoinedOutcome) -> ABStep:
        """Count a joined outcome for its variant in the pair it was scored under.

        An outcome joined before predictions named their pair (``serving_version`` None)
        goes to the most recent pair holding its version under its variant, if any.
        """
        at = joined.timestamp.timestamp()
        state = self._clocked(state, at)
        pair = _pair_of(state, joined)
        if pair is None:
            return self._close(replace(state, forgotten=state.forgotten + 1))
        counters = ABCounters()
        counters.record_outcome(joined.converted)
        return self._close(self._add(state, pair, at, {joined.variant: counters}))

    def on_time(self, state: ABState, at: float) -> ABStep:
        """Any other event of the model's stream: only moves the watermark."""
        return self._close(self._clocked(state, at))

    def fold(
        self,
        state: ABState | None,
        events: Sequence[BatchSummary | JoinedOutcome | RequestCounted],
        now: float,
    ) -> Folded[ABState, IntervalReport]:
        """The A/B step as a fold: the model's monitor events in, closed intervals out."""
        current = state or ABState()
        reports: list[IntervalReport] = []
        for event in events:
            if isinstance(event, BatchSummary):
                step = self.on_batch(current, event)
            elif isinstance(event, JoinedOutcome):
                step = self.on_outcome(current, event)
            else:  # a RequestCounted: only its event time matters here
                step = self.on_time(current, event.timestamp.timestamp())
            current = step.state
            reports.extend(step.reports)
        return Folded(current, tuple(reports))

    def interval_end(self, at: float) -> float:
        """End of the interval holding event time ``at``.

        Example:
            >>> ABScheduler(model="m", experiment="e", interval_seconds=60, grace_seconds=0,
            ...             expected_b_share=0.5).interval_end(120.0)
            180.0
        """
        return (math.floor(at / self.interval) + 1) * self.interval

    def _clocked(self, state: ABState, at: float) -> ABState:
        watermark = at if state.watermark is None else max(state.watermark, at)
        return replace(state, watermark=watermark)

    def _add(self, state: ABState, pair: Pair, at: float, seen: Counters) -> ABState:
        """``seen`` into ``pair``'s interval of ``at`` (or, if that one is closed, the
        oldest open one, counted as late); a new pair may push the stalest one out."""
        pairs = dict(state.pairs)
        forgotten = state.forgotten
        current = pairs.get(pair)
        if current is None:
            if len(pairs) >= MAX_PAIRS:
                del pairs[min(pairs, key=lambda p: pairs[p].newest)]
                forgotten += 1
            current = PairState(newest=at)
        late = current.late
        if state.closed_until is not None and at < state.closed_until:
            at, late = state.closed_until, late + 1
        end = self.interval_end(at)
        pending = dict(current.pending)
        pending[end] = _merge(pending.get(end, {}), seen)
        newest = max(current.newest, at)
        pairs[pair] = replace(current, pending=pending, late=late, newest=newest)
        return replace(state, pairs=pairs, forgotten=forgotten)

    def _close(self, state: ABState) -> ABStep:
        if state.watermark is None:
            return ABStep(state)
        limit = math.floor((state.watermark - self.grace) / self.interval) * self.interval
        reports: list[IntervalReport] = []
        pairs: dict[Pair, PairState] = {}
        for pair, current in state.pairs.items():
            totals, sequential = current.totals, current.sequential
            exp = Experiment(self.experiment, *pair)
            for end in sorted(e for e in current.pending if e <= limit):
                totals = _merge(totals, current.pending[end])
                if exp.challenger_version is None:
                    continue
                report = report_from_counters(
                    totals.get("A", ABCounters()),
                    totals.get("B", ABCounters()),
                    expected_b_share=self.expected_b_share,
                    max_latency_increase=self.max_latency_increase,
                    sequential=sequential,
                )
                sequential = report.sequential_p_value
                reports.append(IntervalReport(self.model, exp, end, report, current.late))
            pending = {e: c for e, c in current.pending.items() if e > limit}
            pairs[pair] = replace(current, totals=totals, pending=pending, sequential=sequential)
        closed = limit if state.closed_until is None else max(state.closed_until, limit)
        reports.sort(key=lambda r: r.interval_end)  # stable: pairs in the state's order
        return ABStep(replace(state, pairs=pairs, closed_until=closed), tuple(reports))


def _pair_of(state: ABState, joined: JoinedOutcome) -> Pair | None:
    if joined.serving_version is not None:
        return (joined.serving_version, joined.challenger_version)
    held = [p for p in state.pairs if _version_of(p, joined.variant) == joined.model_version]
    return max(held, key=lambda p: state.pairs[p].newest, default=None)


def _version_of(pair: Pair, variant: Variant) -> str | None:
    return pair[0] if variant == "A" else pair[1]


def _merge(left: Counters, right: Counters) -> dict[Variant, ABCounters]:
    """New counters per variant holding both sides (neither input is changed)."""
    return {
        v: left.get(v, ABCounters()).merge(right.get(v, ABCounters()))
        for v in _VARIANTS
        if v in left or v in right
    }


def _counters_out(counters: Counters) -> dict[str, Any]:
    return {v: c.to_dict() for v, c in counters.items()}


def _counters_in(data: Mapping[str, Any]) -> dict[Variant, ABCounters]:
    return {v: ABCounters.from_dict(data[v]) for v in _VARIANTS if v in data}
