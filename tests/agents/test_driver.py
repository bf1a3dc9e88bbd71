"""The batch driver with an in-memory store and sink: grouping, the replay guard, the
order "send, acknowledge, then write", and isolation of an event a fold refuses."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from agents.driver import EXPIRE_PER_BATCH, BatchDriver, Keyed, Message, StatefulStep
from stream_app.fold import Folded, fold_each
from tests.utils.driver import Journal


def record(key: bytes, value: int, partition: int, offset: int, at: float = 0.0) -> Any:
    message = SimpleNamespace(topic="in", partition=partition, offset=offset, timestamp=at)
    return SimpleNamespace(key=key, value=value, message=message)


def total(state: int | None, value: int, now: float) -> tuple[int, list[int]]:
    if value < 0:
        raise ValueError("negative")
    new = (state or 0) + value
    return new, [new]


def route(rec: Any) -> Keyed[int] | Sequence[Message]:
    if rec.key == b"direct":
        return (Message("dead", None, str(rec.value).encode()),)
    return Keyed(rec.key, rec.value, f"in:{rec.message.partition}", rec.message.offset)


async def emit(results: Sequence[int]) -> list[list[Message]]:
    return [[Message("out", None, str(r).encode())] for r in results]


def driver(journal: Journal) -> BatchDriver[int, int, int]:
    step = StatefulStep(
        name="sum", table="sums", route=route, fold=fold_each(total),
        load=int, dump=int, emit=emit,
    )  # fmt: skip
    return BatchDriver(step, journal, journal)


async def test_a_batch_folds_each_key_once_sends_then_writes() -> None:
    journal = Journal()
    batch = [record(b"a", 1, 0, 10), record(b"b", 5, 1, 3), record(b"a", 2, 0, 11),
             record(b"direct", 9, 1, 4)]  # fmt: skip
    await driver(journal).process(batch)
    assert journal.calls == [
        ("send", (1, "dead", b"9")),
        ("send", (0, "out", b"1")),
        ("send", (0, "out", b"3")),
        ("send", (1, "out", b"5")),
        ("write", (0, b"a")),
        ("write", (1, b"b")),
    ]
    assert journal.rows == {
        b"a": {"offsets": {"in:0": 11}, "state": 3},
        b"b": {"offsets": {"in:1": 3}, "state": 5},
    }


async def test_replayed_records_are_skipped_and_fresh_ones_folded() -> None:
    journal = Journal({b"a": {"offsets": {"in:0": 11}, "state": 3}})
    step = driver(journal)
    await step.process([record(b"a", 1, 0, 10), record(b"a", 2, 0, 11), record(b"a", 4, 0, 12)])
    assert journal.calls == [("send", (0, "out", b"7")), ("write", (0, b"a"))]
    assert journal.rows[b"a"] == {"offsets": {"in:0": 12}, "state": 7}
    assert step.skips.counts["replayed records, already decided"] == 2


async def test_a_batch_of_replays_only_sends_and_writes_nothing() -> None:
    journal = Journal({b"a": {"offsets": {"in:0": 11}, "state": 3}})
    await driver(journal).process([record(b"a", 1, 0, 9)])
    assert journal.calls == []


async def test_an_event_the_fold_refuses_is_skipped_and_the_rest_folded() -> None:
    journal = Journal()
    step = driver(journal)
    await step.process([record(b"a", 1, 0, 0), record(b"a", -1, 0, 1), record(b"a", 2, 0, 2)])
    assert [c for c in journal.calls if c[0] == "send"] == [
        ("send", (0, "out", b"1")),
        ("send", (0, "out", b"3")),
    ]
    # The refused event counts as decided: its replay is not folded again.
    assert journal.rows[b"a"] == {"offsets": {"in:0": 2}, "state": 3}
    assert step.skips.counts["an event the fold refused"] == 1


async def test_the_fold_sees_the_newest_broker_time_of_its_partition_as_now() -> None:
    seen: list[float] = []

    def fold(state: int | None, events: Sequence[int], now: float) -> Folded[int, int]:
        seen.append(now)
        return Folded(sum(events), ())

    journal = Journal()
    step = StatefulStep(name="t", table="t", route=route, fold=fold, load=int, dump=int, emit=emit)
    batch = [record(b"a", 1, 0, 0, at=50.0), record(b"a", 1, 0, 1, at=40.0),
             record(b"b", 1, 1, 0, at=7.0), record(b"c", 1, 0, 2, at=60.0)]  # fmt: skip
    await BatchDriver(step, journal, journal).process(batch)
    assert seen == [60.0, 7.0, 60.0]  # each key sees its partition's clock


async def test_a_failing_send_writes_no_state() -> None:
    class Broken(Journal):
        async def send_all(self, messages: Sequence[tuple[int, Message]]) -> None:
            raise ConnectionError("broker gone")

    journal = Broken()
    with pytest.raises(ConnectionError):
        await driver(journal).process([record(b"a", 1, 0, 0)])
    assert journal.rows == {}


def expiring(journal: Journal) -> BatchDriver[int, int, int]:
    """Sums that expire when folded with no events at a clock of 100 or later."""

    def fold(state: int | None, events: Sequence[int], now: float) -> Folded[int, int]:
        if not events:
            return Folded(None, (-1,)) if now >= 100 else Folded(state, ())
        return fold_each(total)(state, events, now)

    step = StatefulStep(
        name="sum", table="sums", route=route, fold=fold, load=int, dump=int, emit=emit,
        expire_after=60.0,
    )  # fmt: skip
    return BatchDriver(step, journal, journal)


async def test_a_key_not_written_for_a_while_is_folded_empty_and_deleted() -> None:
    journal = Journal()
    step = expiring(journal)
    await step.process([record(b"a", 1, 0, 0, at=10.0), record(b"c", 1, 1, 0, at=10.0)])
    await step.process([record(b"b", 1, 0, 1, at=70.0)])  # too soon: a is due from 75
    assert set(journal.rows) == {b"a", b"b", b"c"}
    journal.calls.clear()
    await step.process([record(b"b", 1, 0, 2, at=130.0)])
    # The expiry's result is sent with the batch, and a's row deleted after the sends.
    assert journal.calls == [
        ("send", (0, "out", b"2")),
        ("send", (0, "out", b"-1")),
        ("write", (0, b"b")),
        ("write", (0, b"a")),
    ]
    assert journal.rows[b"a"] is None
    assert journal.rows[b"c"] is not None  # partition 1 saw no batch: not looked at
    assert len(step.expiry or ()) == 2


async def test_a_key_the_empty_fold_keeps_is_looked_at_again_later() -> None:
    journal = Journal()
    step = expiring(journal)
    await step.process([record(b"a", 1, 0, 0, at=10.0)])
    await step.process([record(b"b", 1, 0, 1, at=90.0)])  # due, but kept below 100
    assert journal.rows[b"a"] == {"offsets": {"in:0": 0}, "state": 1}
    await step.process([record(b"b", 1, 0, 2, at=140.0)])  # filed again at 90: not due
    assert journal.rows[b"a"] is not None
    await step.process([record(b"b", 1, 0, 3, at=160.0)])
    assert journal.rows[b"a"] is None


async def test_a_crowd_going_idle_together_expires_a_slice_per_batch() -> None:
    journal = Journal()
    step = expiring(journal)
    crowd = EXPIRE_PER_BATCH * 2 + 10
    keys = [f"k{i:05d}".encode() for i in range(crowd)]
    await step.process([record(k, 1, 0, i, at=10.0) for i, k in enumerate(keys)])
    deleted: list[int] = []
    for n in range(4):  # later batches of one other key each: a slice of the crowd each
        journal.calls.clear()
        await step.process([record(b"other", 1, 0, crowd + n, at=130.0 + n)])
        writes = [args for kind, args in journal.calls if kind == "write"]
        deleted.append(sum(1 for _, key in writes if journal.rows[key] is None))  # type: ignore[misc]
    assert deleted == [EXPIRE_PER_BATCH, EXPIRE_PER_BATCH, 10, 0]
    assert all(journal.rows[k] is None for k in keys)
    # In the order they were written.
    assert [k for k, row in journal.rows.items() if row is None] == keys


async def test_a_row_read_back_at_a_start_expires_if_its_key_never_comes_back() -> None:
    # A restarted worker's table holds rows it never saw written: "gone" never returns,
    # "back" is written again in the first batch.
    restored = {key: {"offsets": {"in:0": 0}, "state": 1} for key in (b"gone", b"back")}
    journal = Journal(restored, partition=0)
    step = expiring(journal)
    await step.process([record(b"back", 1, 0, 5, at=100.0)])  # the first clock: 100
    await step.process([record(b"back", 1, 0, 6, at=159.0)])  # not yet: due from 160
    assert journal.rows[b"gone"] is not None
    await step.process([record(b"x", 1, 0, 7, at=175.0)])
    assert journal.rows[b"gone"] is None  # adopted at 100, expired one window later
    assert journal.rows[b"back"] is not None  # written again at 159: due from 219


async def test_the_clock_of_a_partition_never_runs_backwards() -> None:
    journal = Journal()
    step = driver(journal)
    await step.process([record(b"a", 1, 0, 0, at=50.0)])
    await step.process([record(b"a", 1, 0, 1, at=20.0), record(b"b", 1, 1, 0, at=5.0)])
    assert step.watermarks == {0: 50.0, 1: 5.0}


async def test_derived_messages_leave_after_every_other_message_of_the_batch() -> None:
    async def emit_with_counts(results: Sequence[int]) -> list[list[Message]]:
        return [
            [Message("counts", None, b"n", derived=True), Message("out", None, str(r).encode())]
            for r in results
        ]

    journal = Journal()
    step = StatefulStep(
        name="sum", table="sums", route=route, fold=fold_each(total), load=int, dump=int,
        emit=emit_with_counts,
    )  # fmt: skip
    await BatchDriver(step, journal, journal).process(
        [record(b"a", 1, 0, 0), record(b"direct", 5, 1, 0), record(b"b", 2, 1, 1)]
    )
    sent = [topic for kind, call in journal.calls if kind == "send" for topic in [call[1]]]
    assert sent == ["dead", "out", "out", "counts", "counts"]


async def test_delivered_sees_a_batch_once_after_its_rows_are_written_however_often_tried() -> None:
    journal = Journal()
    seen: list[list[bytes | None]] = []
    step = StatefulStep(
        name="sum", table="sums", route=route, fold=fold_each(total), load=int, dump=int,
        emit=emit, delivered=lambda sent: seen.append([m.value for m in sent]),
    )  # fmt: skip
    failing = Journal()

    async def unacknowledged(messages: Sequence[tuple[int, Message]]) -> list[None]:
        raise ConnectionError("no acknowledgement")

    failing.send_all = unacknowledged  # type: ignore[method-assign]
    batch = [record(b"a", 1, 0, 10), record(b"direct", 9, 0, 11), record(b"a", 2, 0, 12)]
    with pytest.raises(ConnectionError):
        await BatchDriver(step, journal, failing).process(batch)
    assert seen == []  # nothing was delivered
    await BatchDriver(step, journal, journal).process(batch)  # the same batch, tried again
    assert seen == [[b"9", b"1", b"3"]]
    await BatchDriver(step, journal, journal).process(batch)  # a replay: only the direct one
    assert seen == [[b"9", b"1", b"3"], [b"9"]]


async def test_a_batch_decided_before_the_last_completes_reads_its_unwritten_rows() -> None:
    journal = Journal()
    step = driver(journal)
    first = await step.decide([record(b"a", 1, 0, 0), record(b"b", 2, 1, 0)])
    second = await step.decide([record(b"a", 4, 0, 1), record(b"a", 1, 0, 0)])  # 0 replayed
    assert journal.rows == {}  # nothing written yet: both wait for their outputs
    await step.complete(first)
    assert journal.rows[b"a"] == {"offsets": {"in:0": 0}, "state": 1}
    await step.complete(second)
    assert journal.rows == {
        b"a": {"offsets": {"in:0": 1}, "state": 5},
        b"b": {"offsets": {"in:1": 0}, "state": 2},
    }
    assert [m.value for m in journal.messages] == [b"1", b"2", b"5"]
    assert step.skips.counts["replayed records, already decided"] == 1
    assert step.unwritten_row(0, b"a") == journal.rows[b"a"]  # read from the store again


async def test_a_failed_completion_forgets_its_rows_so_the_batch_is_decided_again() -> None:
    class Flaky(Journal):
        fail = True

        async def send_all(self, messages: Sequence[tuple[int, Message]]) -> list[None]:
            if self.fail and messages:
                raise ConnectionError("broker gone")
            return await super().send_all(messages)

    journal = Flaky()
    step = driver(journal)
    batch = [record(b"a", 3, 0, 0)]
    decided = await step.decide(batch)
    with pytest.raises(ConnectionError):
        await step.complete(decided)
    journal.fail = False
    await step.process(batch)  # not taken for a replay of rows never written
    assert journal.rows == {b"a": {"offsets": {"in:0": 0}, "state": 3}}
    assert [m.value for m in journal.messages] == [b"3"]


async def test_forgetting_unwritten_rows_makes_batches_decided_on_them_stale() -> None:
    journal = Journal()
    step = driver(journal)
    first = await step.decide([record(b"a", 1, 0, 0)])
    second = await step.decide([record(b"a", 1, 0, 1)])
    assert (first.epoch, second.epoch) == (step.epoch, step.epoch)
    step.forget_unwritten()
    assert step.unwritten_row(0, b"a") is None
    assert second.epoch != step.epoch
    third = await step.decide([record(b"a", 1, 0, 0), record(b"a", 1, 0, 1)])
    await step.complete(third)
    assert journal.rows == {b"a": {"offsets": {"in:0": 1}, "state": 2}}
