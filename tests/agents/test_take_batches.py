"""take_batches on a real Faust stream (an in-memory channel; no broker is contacted):
batches of at most ``size`` in order, a partial batch handed out after ``within``, and
nothing acked until the agent acks it."""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from agents.faust_step import take_batches


async def _stream() -> tuple[Any, Any]:
    # The address is never dialled: a channel's stream needs no broker.
    app = faust.App("take-batches", broker="kafka://127.0.0.1:1", web_enabled=False)
    app.flow_control.resume()
    channel = app.channel()
    s = app.stream(channel)
    await s.start()
    return channel, s


async def _until(check: Any, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "state not reached in time"
        await asyncio.sleep(0.01)


async def test_batches_hold_at_most_size_in_order_and_leave_acking_to_the_agent() -> None:
    channel, s = await _stream()
    batches: list[list[Any]] = []
    release = asyncio.Event()

    async def agent() -> None:
        async for batch in take_batches(s, 3, within=0.05):
            batches.append(batch)
            await release.wait()  # the agent is busy with this batch meanwhile

    task = asyncio.ensure_future(agent())
    try:
        await _until(lambda: channel.subscriber_count)  # what is sent before is not seen
        for value in range(7):
            await channel.send(value=value)
        await _until(lambda: len(batches) == 1)
        # Taken, but the generator acked nothing: the agent is still deciding it.
        assert [e.value for e in batches[0]] == [0, 1, 2]
        assert not any(e.message.acked for e in batches[0])
        release.set()
        await _until(lambda: sum(map(len, batches)) == 7)  # the last, partial, after within
        assert [[e.value for e in b] for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
        assert not any(e.message.acked for b in batches for e in b)
        assert [await s.ack(e) for b in batches for e in b] == [True] * 7
    finally:
        task.cancel()
        await s.stop()
