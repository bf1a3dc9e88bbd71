"""The A/B report scheduler: interval boundaries, once per interval, late, new experiments."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from schemas.monitor import BatchSummary, JoinedOutcome
from stream_app.monitoring.ab_counters import ABCounters
from stream_app.monitoring.ab_schedule import (
    MAX_PAIRS,
    ABScheduler,
    ABState,
    ABStep,
    Experiment,
)

INTERVAL, GRACE = 60.0, 10.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def batch(
    start: float, a: int = 100, b: int = 100, challenger: str | None = "2",
    latency_a: float = 40.0, latency_b: float = 40.0, serving: str = "1",
) -> BatchSummary:  # fmt: skip
    variants = {}
    for name, n, latency in (("A", a, latency_a), ("B", b, latency_b)):
        counters = ABCounters()
        counters.record_exposures([latency] * n)
        variants[name] = counters.to_dict()
    return BatchSummary(
        model_name="m", bucket_start=at(start), first_event=at(start), last_event=at(start),
        serving_version=serving, challenger_version=challenger, scored=a + b, variants=variants,
    )  # fmt: skip


def outcome(
    time: float,
    variant: str = "B",
    version: str = "2",
    converted: int = 1,
    pair: tuple[str, str | None] | None = None,
) -> JoinedOutcome:
    """A joined outcome; without ``pair`` it names no version pair (as older ones did)."""
    serving, challenger = pair or (None, None)
    return JoinedOutcome.model_validate(
        {"timestamp": at(time), "request_id": f"r{time}", "variant": variant,
         "model_version": version, "converted": converted,
         "serving_version": serving, "challenger_version": challenger}
    )  # fmt: skip


def scheduler(share: float = 0.5, grace: float = GRACE) -> ABScheduler:
    return ABScheduler(
        model="m", experiment="exp", interval_seconds=INTERVAL, grace_seconds=grace,
        expected_b_share=share, max_latency_increase=0.5,
    )  # fmt: skip


def feed(ab: ABScheduler, events: list[object], state: ABState | None = None) -> list[ABStep]:
    state = state or ABState()
    steps = []
    for event in events:
        if isinstance(event, BatchSummary):
            step = ab.on_batch(state, event)
        elif isinstance(event, JoinedOutcome):
            step = ab.on_outcome(state, event)
        else:
            step = ab.on_time(state, float(event))  # type: ignore[arg-type]
        state = step.state
        steps.append(step)
    return steps


def ends(steps: list[ABStep]) -> list[list[float]]:
    return [[r.interval_end for r in s.reports] for s in steps]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # the interval [0, 60) closes once the watermark reaches 60 + grace, not before
        ([batch(0), 69.9, 70.0, 75.0], [[], [], [60.0], []]),
        # an event exactly at 60 opens the next interval; both close in order
        ([batch(0), batch(60), 130.0], [[], [], [60.0, 120.0]]),
        # an interval without events gives no report, and nothing is repeated
        ([batch(0), 200.0, 400.0, 400.0], [[], [60.0], [], []]),
        # the event that moves the watermark can close its predecessors' intervals itself
        ([batch(0), batch(120)], [[], [60.0]]),
        # no challenger: the intervals close, but there is no A/B report
        ([batch(0, challenger=None), 200.0], [[], []]),
    ],
)
def test_interval_boundaries_and_once_per_interval(
    events: list[object], expected: list[list[float]]
) -> None:
    assert ends(feed(scheduler(), events)) == expected


def test_totals_are_cumulative_and_the_sequential_test_chains() -> None:
    events: list[object] = [batch(0, a=500, b=500)]
    events += [outcome(10 + i * 0.01, "A", "1") for i in range(50)]
    events += [outcome(20 + i * 0.01, "B", "2") for i in range(120)]
    events += [batch(60, a=500, b=500), *[outcome(70 + i * 0.01) for i in range(60)], 200.0]
    reports = [r for s in feed(scheduler(), events) for r in s.reports]
    first, second = (r.report for r in reports)
    assert (first.n_a, first.n_b, first.conversions_a, first.conversions_b) == (500, 500, 50, 120)
    assert (second.n_a, second.n_b, second.conversions_a, second.conversions_b) == (
        1000, 1000, 50, 180,
    )  # fmt: skip
    assert second.sequential_p_value <= first.sequential_p_value
    assert second.recommendation == "use_b"
    assert reports[1].to_dict()["interval_end"] == "1970-01-01T00:02:00+00:00"


def test_late_events_are_counted_and_go_into_the_next_report() -> None:
    steps = feed(scheduler(), [batch(0), 100.0, batch(30), outcome(50), batch(60), 200.0])
    state = steps[-1].state
    assert state.pairs[("1", "2")].late == 2
    first = steps[1].reports[0]
    assert (first.interval_end, first.report.n_a, first.report.conversions_b) == (60.0, 100, 0)
    (report,) = steps[-1].reports
    assert report.interval_end == 120.0
    assert report.late_events == 2
    # Cumulative totals: the late batch and the late conversion are in the next report.
    assert (report.report.n_a, report.report.n_b, report.report.conversions_b) == (300, 300, 1)


def test_each_version_pair_keeps_its_own_experiment() -> None:
    events: list[object] = [batch(0), outcome(5), 100.0]  # reports interval 60 of (1, 2)
    # A worker swaps to challenger 3 while another still serves 2, at the same time.
    events += [batch(120, challenger="3"), batch(120, challenger="2")]
    events += [outcome(125, "B", "2", pair=("1", "2")), outcome(126, "B", "3", pair=("1", "3"))]
    events += [300.0]
    steps = feed(scheduler(), events)
    assert ends(steps) == [[], [], [60.0], [], [], [], [], [180.0, 180.0]]
    old, new = steps[-1].reports
    assert old.experiment == Experiment("exp", "1", "2")
    # Cumulative for (1, 2): its two batches and two conversions, never reset by (1, 3).
    assert (old.report.n_b, old.report.conversions_b) == (200, 2)
    assert new.experiment == Experiment("exp", "1", "3")
    assert (new.report.n_b, new.report.conversions_b) == (100, 1)
    assert steps[-1].state.forgotten == 0


def test_two_workers_on_different_pairs_interleaved_reset_nothing() -> None:
    events: list[object] = []
    for i in range(200):  # 200 interleaved batches, as two workers that disagree send them
        events.append(batch(i * 3.0, a=10, b=10, challenger="2" if i % 2 else "3"))
    events.append(10_000.0)
    reports = [r for s in feed(scheduler(), events) for r in s.reports]
    by_pair: dict[str | None, list[int]] = {}
    for r in reports:
        by_pair.setdefault(r.experiment.challenger_version, []).append(r.report.n_b)
    # Each pair's exposures only grow: 20 batches a minute, 10 per pair, 10 B each.
    assert by_pair == {"2": [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
                       "3": [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]}  # fmt: skip


def test_an_outcome_naming_no_pair_goes_to_the_newest_pair_with_its_version() -> None:
    events: list[object] = [batch(0, challenger="2"), batch(1, serving="0", challenger="2")]
    events += [outcome(2, "B", "2"), 100.0]
    (older, newer) = feed(scheduler(), events)[-1].reports
    assert older.experiment.serving_version == "1" and older.report.conversions_b == 0
    assert newer.experiment.serving_version == "0" and newer.report.conversions_b == 1


def test_outcomes_of_no_known_pair_are_forgotten_and_a_named_pair_starts() -> None:
    step = feed(scheduler(), [outcome(5)])[-1]
    assert step.state.forgotten == 1 and step.state.pairs == {}
    step = feed(scheduler(), [outcome(5, pair=("1", "2"))])[-1]
    assert list(step.state.pairs) == [("1", "2")]


def test_the_state_keeps_the_most_recent_pairs() -> None:
    events: list[object] = [batch(i, challenger=str(10 + i)) for i in range(MAX_PAIRS + 1)]
    state = feed(scheduler(), events)[-1].state
    assert state.forgotten == 1
    assert sorted(c for _, c in state.pairs) == [str(10 + i) for i in range(1, MAX_PAIRS + 1)]


@pytest.mark.parametrize(
    ("a", "b", "latency_b", "srm", "increase"),
    [
        (500, 500, 40.0, 0.0, 0.0),
        (900, 100, 40.0, 1.0, 0.0),  # far from the configured 50 % split
        (500, 500, 70.0, 0.0, 0.75),
    ],
)
def test_guardrail_metrics(a: int, b: int, latency_b: float, srm: float, increase: float) -> None:
    steps = feed(scheduler(), [batch(0, a=a, b=b, latency_b=latency_b), 100.0])
    (report,) = steps[-1].reports
    assert report.guardrails() == pytest.approx({"ab_srm": srm, "ab_latency_increase": increase})
    if srm:
        assert report.report.recommendation == "invalid"


def test_state_round_trips_through_json() -> None:
    steps = feed(scheduler(), [batch(0), outcome(3), batch(60), 75.0, outcome(80)])
    state = steps[-1].state
    again = ABState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    # and the rebuilt state goes on exactly like the original
    assert ends(feed(scheduler(), [300.0], again)) == ends(feed(scheduler(), [300.0], state))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval_seconds": 0.0}, "interval_seconds must be finite and > 0"),
        ({"grace_seconds": -1.0}, "grace_seconds must be finite and >= 0"),
        ({"expected_b_share": 1.0}, r"expected_b_share must be in \(0, 1\)"),
        ({"max_latency_increase": -0.1}, "max_latency_increase must be >= 0"),
    ],
)
def test_parameters_are_checked(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float] = {
        "interval_seconds": 60.0, "grace_seconds": 0.0, "expected_b_share": 0.5,
        "max_latency_increase": 0.5, **kwargs,
    }  # fmt: skip
    with pytest.raises(ValueError, match=message):
        ABScheduler(model="m", experiment="e", **args)
