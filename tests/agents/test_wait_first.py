"""The consumer hands a fetched message to its streams in the fetch loop's own task when
nothing makes the delivery wait, and races a delivery that waits against the flow's
suspension as Faust does."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from stream_app.app import create_app
from stream_app.config import load_settings
from stream_app.faust_fixes import BatchAlignedConsumer, new_consumer, run_first_step


async def _answer(value: int) -> int:
    return value * 2


async def _waiting(gate: asyncio.Future[int], seen: list[str]) -> int:
    try:
        got = await gate
        await asyncio.sleep(0)  # a bare yield: the task steps it again
        seen.append("resumed")
        return got + 1
    except asyncio.CancelledError:
        seen.append("cancelled")
        raise


async def test_a_step_that_finishes_runs_in_the_calling_task() -> None:
    before = len(asyncio.all_tasks())
    coro = _answer(21)
    assert run_first_step(coro) == (True, 42)
    assert len(asyncio.all_tasks()) == before
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


async def test_a_step_that_waits_goes_on_in_a_task_with_the_awaited_result() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen: list[str] = []
    finished, task = run_first_step(_waiting(gate, seen))
    assert not finished
    await asyncio.sleep(0)
    assert not task.done() and seen == []
    gate.set_result(5)
    assert await task == 6
    assert seen == ["resumed"]


async def test_cancelling_the_task_cancels_the_coroutine() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen: list[str] = []
    _, task = run_first_step(_waiting(gate, seen))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert seen == ["cancelled"]
    assert gate.cancelled()


async def test_an_error_after_the_wait_is_the_tasks() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    _, task = run_first_step(_waiting(gate, []))
    gate.set_exception(ValueError("broken"))
    await asyncio.gather(task, return_exceptions=True)
    assert isinstance(task.exception(), ValueError)


async def test_a_cancellation_the_coroutine_absorbs_gives_its_result() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def absorbing() -> str:
        try:
            await gate
        except asyncio.CancelledError:
            return "absorbed"
        return "not cancelled"

    _, task = run_first_step(absorbing())
    await asyncio.sleep(0)
    task.cancel()
    assert await task == "absorbed"


def _consumer() -> BatchAlignedConsumer:
    consumer = new_consumer(create_app(load_settings({})))
    assert isinstance(consumer, BatchAlignedConsumer)
    return consumer


async def test_a_delivery_that_does_not_wait_makes_no_task() -> None:
    consumer = _consumer()
    before = len(asyncio.all_tasks())
    callback, flow = _answer(4), consumer.suspend_flow.wait()
    done = await consumer.wait_first(callback, flow)
    assert (done.done, done.results, done.stopped) == ([callback], [8], False)
    assert len(asyncio.all_tasks()) == before
    assert inspect.getcoroutinestate(flow) == inspect.CORO_CLOSED


async def _delivery_waiting_on(
    consumer: BatchAlignedConsumer, gate: asyncio.Future[int], seen: list[str]
) -> asyncio.Future[Any]:
    """The fetch loop's call for a callback that waits on ``gate``, under way."""
    waiting = asyncio.ensure_future(
        consumer.wait_first(_waiting(gate, seen), consumer.suspend_flow.wait())
    )
    await asyncio.sleep(0)
    assert not waiting.done()
    return waiting


async def test_a_delivery_that_waits_ends_with_its_result() -> None:
    consumer = _consumer()
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen: list[str] = []
    waiting = await _delivery_waiting_on(consumer, gate, seen)
    gate.set_result(1)
    done = await waiting
    assert (done.results, done.stopped) == ([2], False)
    assert seen == ["resumed"]


async def test_a_waiting_delivery_is_cancelled_when_the_flow_is_suspended() -> None:
    consumer = _consumer()
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen: list[str] = []
    waiting = await _delivery_waiting_on(consumer, gate, seen)
    consumer.suspend_flow.set()
    done = await waiting
    await asyncio.sleep(0)
    assert done.results == [True]  # the flow's event won
    assert seen == ["cancelled"]
    assert not gate.done() or gate.cancelled()


async def test_with_the_flow_suspended_the_delivery_races_it_from_the_start() -> None:
    consumer = _consumer()
    consumer.suspend_flow.set()
    ran: list[Any] = []

    async def callback() -> None:
        ran.append(asyncio.current_task())

    this = asyncio.current_task()
    await consumer.wait_first(callback(), consumer.suspend_flow.wait())
    assert ran and ran[0] is not this  # its own task, as Faust runs it
