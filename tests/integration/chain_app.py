"""A worker app for the chain test: relay ``<app_id>.chain-in`` to ``<app_id>.chain-out``.

Each event is counted per key in a Faust table, and the count travels with the
event, so the test sees both the order per key and that no event was processed twice.
Run as ``python -m tests.integration.chain_app worker`` with STREAM_ settings.
"""

from __future__ import annotations

import json
from typing import Any

import faust

from stream_app.app import StreamApp, create_app
from stream_app.cli import run_faust
from stream_app.config import load_settings

__all__ = ["build", "chain_topics"]


def chain_topics(app_id: str) -> tuple[str, str]:
    """Input and output topic names of the chain for one app id.

    Example:
        >>> chain_topics("run1")
        ('run1.chain-in', 'run1.chain-out')
    """
    return f"{app_id}.chain-in", f"{app_id}.chain-out"


def build(app: StreamApp) -> StreamApp:
    """Add the relay agent and its table to ``app``."""
    source_name, sink_name = chain_topics(app.conf.id)
    source = app.declared_topic(source_name)
    sink = app.declared_topic(sink_name)
    # Table keys stay raw bytes like the events'; counts are JSON numbers.
    counts = faust.Schema(key_serializer="raw", value_serializer="json")
    # key_type=bytes: changelog recovery decodes keys by key_type, not by the schema.
    seen = app.Table("chain-seen", default=int, key_type=bytes, schema=counts)

    @app.agent(source)
    async def relay(stream: Any) -> None:
        async for event in stream.events():
            seen[event.key] += 1
            payload = json.loads(event.value)
            payload["seen"] = seen[event.key]
            await sink.send(key=event.key, value=json.dumps(payload).encode())

    return app


if __name__ == "__main__":
    run_faust(build(create_app(load_settings())), ["worker", "-l", "info"])
