"""The outcome join: exact tables for both orders, duplicates, TTL both ways, routing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from schemas.events import Outcome, Rejection
from stream_app.monitoring.ab_join import (
    Exposure,
    JoinEntry,
    JoinStep,
    OutcomeJoin,
    Seen,
    join_fold,
    needs_rekey,
    parse_outcome,
)
from stream_app.partitioner import default_partition

TTL = 100.0


def outcome(request_id: str, at: float, converted: int = 1) -> tuple[Outcome, bytes]:
    stamp = datetime.fromtimestamp(at, UTC).isoformat()
    raw = f'{{"request_id": "{request_id}", "converted": {converted}, "timestamp": "{stamp}"}}'
    return Outcome.model_validate_json(raw), raw.encode()


def run(join: OutcomeJoin, events: list[tuple[str, float, str | int]]) -> list[JoinStep]:
    """Feed ``(kind, time, variant-or-converted)`` for request "r1" on partition 0."""
    entry: JoinEntry | None = None
    watermark = float("-inf")
    steps = []
    for kind, at, value in events:
        watermark = max(watermark, at)
        if kind == "p":
            exposure = Exposure(str(value), "v" + str(value), at)  # type: ignore[arg-type]
            step = join.on_prediction(entry, "r1", exposure, partition=0, watermark=watermark)
        else:
            parsed, raw = outcome("r1", at, int(value))
            step = join.on_outcome(entry, parsed, raw, partition=0, watermark=watermark)
        entry = step.entry
        steps.append(step)
    return steps


def summary(steps: list[JoinStep]) -> list[tuple[object, ...]]:
    """Per step: (joined variant, converted, time) or None; expired reason; duplicate."""
    out: list[tuple[object, ...]] = []
    for s in steps:
        joined = None
        if s.joined is not None:
            joined = (s.joined.variant, s.joined.converted, s.joined.timestamp.timestamp())
        out.append((joined, None if s.expired is None else s.expired.reason, s.duplicate))
    return out


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # prediction first, outcome later: one match at the outcome's time
        ([("p", 10, "B"), ("o", 50, 1)], [(None, None, False), (("B", 1, 50.0), None, False)]),
        # outcome first, prediction later: the match time is the later of the two
        ([("o", 10, 0), ("p", 40, "A")], [(None, None, False), (("A", 0, 40.0), None, False)]),
        # a duplicate outcome after the match counts nothing
        (
            [("p", 10, "A"), ("o", 20, 1), ("o", 30, 1)],
            [(None, None, False), (("A", 1, 20.0), None, False), (None, None, True)],
        ),
        # two copies of an outcome waiting: the prediction matches once, with the first
        (
            [("o", 10, 1), ("o", 11, 0), ("p", 12, "B")],
            [(None, None, False), (None, None, True), (("B", 1, 12.0), None, False)],
        ),
        # a replayed prediction is a duplicate too
        (
            [("p", 10, "A"), ("p", 10, "A"), ("o", 20, 0)],
            [(None, None, False), (None, None, True), (("A", 0, 20.0), None, False)],
        ),
        # exactly at the TTL still matches
        ([("p", 0, "A"), ("o", TTL, 1)], [(None, None, False), (("A", 1, TTL), None, False)]),
        # prediction past its TTL is dropped silently; the outcome then waits alone
        ([("p", 0, "A"), ("o", TTL + 1, 1)], [(None, None, False), (None, None, False)]),
        # outcome past its TTL becomes unknown_outcome; the prediction then waits alone
        (
            [("o", 0, 1), ("p", TTL + 1, "B")],
            [(None, None, False), (None, "unknown_outcome", False)],
        ),
    ],
)
def test_join_table(events: list[tuple[str, float, str | int]], expected: list[object]) -> None:
    assert summary(run(OutcomeJoin(TTL), events)) == expected


def test_expired_outcome_keeps_raw_bytes_and_request_id() -> None:
    steps = run(OutcomeJoin(TTL), [("o", 0, 1), ("p", 500, "B")])
    rejection = steps[1].expired
    assert rejection is not None
    assert rejection.request_id == "r1"
    assert rejection.raw == outcome("r1", 0)[1]
    assert [e.type for e in rejection.errors] == ["unknown_outcome"]
    # The entry now holds only the late prediction, first seen at its own time.
    assert steps[1].entry == JoinEntry("r1", 0, 500.0, exposure=Exposure("B", "vB", 500.0))


def test_late_outcome_does_not_match_a_prediction_past_ttl_even_before_a_sweep() -> None:
    join = OutcomeJoin(TTL)
    seen = join.on_prediction(None, "r1", Exposure("A", "1", 0.0), partition=0, watermark=0.0)
    parsed, raw = outcome("r1", 20)  # the outcome itself is early, but the partition moved on
    step = join.on_outcome(seen.entry, parsed, raw, partition=0, watermark=TTL + 5)
    assert step.joined is None
    assert step.entry.exposure is None and step.entry.outcome is not None


@pytest.mark.parametrize(
    ("entry", "now", "expected"),
    [
        ("outcome", 200.0, (None, ["unknown_outcome"])),  # expired: its rejection
        ("prediction", 200.0, (None, [])),  # expired: dropped silently
        ("fresh", 200.0, ("kept", [])),  # first seen at 150: still waiting
        ("outcome", TTL, ("kept", [])),  # exactly at the TTL: still waiting
    ],
)
def test_the_empty_fold_expires_an_entry_past_its_ttl(
    entry: str, now: float, expected: tuple[object, list[str]]
) -> None:
    parsed, raw = outcome("r1", 0)
    entries = {
        "outcome": OutcomeJoin(TTL).on_outcome(None, parsed, raw, partition=1, watermark=0).entry,
        "prediction": JoinEntry("r1", 1, 0.0, exposure=Exposure("A", "1", 0.0)),
        "fresh": JoinEntry("r1", 1, 150.0, exposure=Exposure("A", "1", 150.0)),
    }
    folded = join_fold(OutcomeJoin(TTL))(entries[entry], [], now)
    state = None if folded.state is None else "kept"
    reasons = [r.reason for r in folded.results if isinstance(r, Rejection)]
    assert (state, reasons) == expected
    if reasons:
        assert folded.results[0].raw == raw  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("events", "conflicts", "joined"),
    [
        # after the match: the second outcome says otherwise and is refused
        ([("p", 10, "A"), ("o", 20, 1), ("o", 30, 0)], [False, False, True], ("A", 1)),
        # before the match: two outcomes waiting disagree; the first one joins
        ([("o", 10, 1), ("o", 11, 0), ("p", 12, "B")], [False, True, False], ("B", 1)),
        ([("o", 10, 0), ("o", 11, 1), ("p", 12, "B")], [False, True, False], ("B", 0)),
        # the same answer twice is a duplicate, not a conflict
        ([("p", 10, "A"), ("o", 20, 0), ("o", 30, 0)], [False, False, False], ("A", 0)),
    ],
)
def test_an_outcome_that_contradicts_the_first_is_refused_and_the_first_stands(
    events: list[tuple[str, float, str | int]], conflicts: list[bool], joined: tuple[str, int]
) -> None:
    steps = run(OutcomeJoin(TTL), events)
    assert [s.conflict is not None for s in steps] == conflicts
    for s in steps:
        if s.conflict is not None:
            assert (s.conflict.reason, s.conflict.request_id) == ("conflicting_outcome", "r1")
            assert [e.type for e in s.conflict.errors] == ["conflicting_outcome"]
    (match,) = [s.joined for s in steps if s.joined is not None]
    assert (match.variant, match.converted) == joined


def test_the_fold_sends_a_conflict_with_the_contradicting_outcome_bytes() -> None:
    yes, yes_raw = outcome("r1", 20, 1)
    no, no_raw = outcome("r1", 21, 0)
    events = [
        Seen("r1", 0, exposure=Exposure("B", "2", 10.0)),
        Seen("r1", 0, outcome=yes, raw=yes_raw),
        Seen("r1", 0, outcome=no, raw=no_raw),
    ]
    folded = join_fold(OutcomeJoin(TTL))(None, events, 21.0)
    joined, conflict = folded.results
    assert not isinstance(joined, Rejection) and joined.converted == 1
    assert isinstance(conflict, Rejection) and conflict.raw == no_raw
    assert folded.state is not None and folded.state.outcome is not None
    assert folded.state.outcome.converted == 1


def test_the_fold_joins_a_batch_of_both_sides_in_order() -> None:
    parsed, raw = outcome("r1", 20)
    events = [
        Seen("r1", 0, exposure=Exposure("B", "2", 10.0)),
        Seen("r1", 0, outcome=parsed, raw=raw),
        Seen("r1", 0, outcome=parsed, raw=raw),  # a duplicate counts nothing
    ]
    folded = join_fold(OutcomeJoin(TTL))(None, events, 20.0)
    assert [(j.variant, j.converted) for j in folded.results] == [("B", 1)]  # type: ignore[union-attr]
    assert folded.state is not None and folded.state.outcome is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl_seconds": 0.0}, "ttl_seconds must be finite and > 0"),
        ({"ttl_seconds": float("inf")}, "ttl_seconds must be finite and > 0"),
    ],
)
def test_parameters_are_checked(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OutcomeJoin(**kwargs)


def test_entry_round_trips_through_json_form() -> None:
    parsed, raw = outcome("r9", 7.5, converted=0)
    entry = OutcomeJoin(TTL).on_outcome(None, parsed, raw, partition=3, watermark=7.5).entry
    both = JoinEntry(
        entry.request_id, entry.partition, entry.first_seen, Exposure("B", "2", 8.0), entry.outcome
    )
    for item in (entry, both, JoinEntry("r0", 0, 1.0)):
        assert JoinEntry.from_dict(item.to_dict()) == item


def key_on(partition: int, partitions: int, prefix: str = "r") -> str:
    """The first request id "<prefix><n>" that hashes to ``partition``."""
    n = 0
    while default_partition(f"{prefix}{n}".encode(), partitions) != partition:
        n += 1
    return f"{prefix}{n}"


@pytest.mark.parametrize(
    ("case", "rekey"),
    [("right", False), ("no key", True), ("other key", True), ("wrong partition", True)],
)
def test_outcome_is_rekeyed_when_key_or_partition_is_wrong(case: str, rekey: bool) -> None:
    request_id = key_on(2, 4)
    key: bytes | None = request_id.encode()
    partition = 2
    if case == "no key":
        key = None
    elif case == "other key":
        key = b"client-7"
    elif case == "wrong partition":
        partition = 3
    assert needs_rekey(key, partition, request_id, 4) is rekey


PII = "jane.doe@example.com"


@pytest.mark.parametrize(
    ("raw", "reason", "request_id"),
    [
        (b"not json", "malformed_json", None),
        (b"[1, 2]", "malformed_json", None),
        (f'{{"request_id": "r1", "converted": "{PII}"}}'.encode(), "schema", "r1"),
        (f'{{"request_id": "r1", "converted": 1, "timestamp": "{PII}"}}'.encode(), "schema", "r1"),
        (b'{"request_id": "r1", "converted": 1, "timestamp": "x"}' + b" " * 20_000, "too_large",
         None),
    ],
)  # fmt: skip
def test_bad_outcomes_are_rejections_that_echo_nothing(
    raw: bytes, reason: str, request_id: str | None
) -> None:
    result = parse_outcome(raw)
    assert isinstance(result, Rejection)
    assert (result.reason, result.request_id, result.raw) == (reason, request_id, raw)
    assert PII not in result.model_dump_json(exclude={"raw"})


def test_an_entry_made_a_ttl_behind_the_clock_expires_in_its_own_batch() -> None:
    # A lonely outcome and a prediction 200 s later on its partition, in one batch.
    parsed, raw = outcome("lonely", 0)
    folded = join_fold(OutcomeJoin(TTL))(None, [Seen("lonely", 0, outcome=parsed, raw=raw)], 200.0)
    assert folded.state is None
    assert [r.reason for r in folded.results] == ["unknown_outcome"]  # type: ignore[union-attr]


@pytest.mark.parametrize("order", ["prediction first", "outcome first"])
def test_a_joined_entry_keeps_no_outcome_bytes_and_stays_small(order: str) -> None:
    join = OutcomeJoin(TTL)
    rid = "r" * 128  # the longest request id
    parsed, raw = outcome(rid, 20)
    exposure = Exposure("B", "1.1.0", 10.0, "1.0.0", "1.1.0")
    if order == "prediction first":
        waiting = join.on_prediction(None, rid, exposure, partition=0, watermark=10.0).entry
        step = join.on_outcome(waiting, parsed, raw, partition=0, watermark=20.0)
    else:
        waiting = join.on_outcome(None, parsed, raw, partition=0, watermark=20.0).entry
        assert waiting.outcome is not None and waiting.outcome.raw == raw  # kept while waiting
        step = join.on_prediction(waiting, rid, exposure, partition=0, watermark=20.0)
    assert step.joined is not None and step.entry.outcome is not None
    assert step.entry.outcome.raw == b""
    assert len(json.dumps(step.entry.to_dict())) < 512
    # Duplicates and conflicts are still told apart after the bytes are gone.
    again = join.on_outcome(step.entry, parsed, raw, partition=0, watermark=21.0)
    assert again.duplicate and again.conflict is None
