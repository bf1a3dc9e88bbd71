"""The full pipeline with a bundle installed from a directory at start, for agent tests.

The registry follower is what installs bundles in production; tests of the request path
that are not about the registry load one directly: ``TEST_BUNDLE_DIR`` names it, and
``TEST_CHALLENGER_DIR`` (optional) a challenger served as variant B. With
``TEST_FAIL_FLAG`` set, the intake agent's sends fail while a file by that name exists
(a broken output, for the health tests). Run as
``python -m tests.integration.pipeline_app worker`` with STREAM_ settings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents import build_pipeline
from stream_app.app import StreamApp, create_app
from stream_app.cli import run_faust
from stream_app.config import load_settings
from stream_app.lifecycle.bundle import load_bundle

__all__ = ["FailingSink", "build"]


class FailingSink:
    """A sink that raises while ``flag`` exists, and otherwise sends through ``inner``."""

    def __init__(self, inner: Any, flag: Path) -> None:
        self.inner = inner
        self.flag = flag

    async def send_all(self, messages: Sequence[Any]) -> list[Any]:
        if self.flag.exists():
            raise ConnectionError("injected: the output is unreachable")
        return list(await self.inner.send_all(messages))


def build(app: StreamApp, bundle_dir: str, challenger_dir: str | None = None) -> StreamApp:
    """The pipeline on ``app``, serving the bundle in ``bundle_dir`` (and the challenger
    in ``challenger_dir``) from the start."""
    build_pipeline(app)
    key = app.settings.bundle_signing_key_bytes
    bundle = load_bundle(bundle_dir, signing_key=key)
    challenger = None if challenger_dir is None else load_bundle(challenger_dir, signing_key=key)
    app.serving.install(bundle, challenger)
    return app


if __name__ == "__main__":
    app = build(
        create_app(load_settings()),
        os.environ["TEST_BUNDLE_DIR"],
        os.environ.get("TEST_CHALLENGER_DIR"),
    )
    if flag := os.environ.get("TEST_FAIL_FLAG"):
        intake = app.drivers["intake"]
        intake.sink = FailingSink(intake.sink, Path(flag))
    run_faust(app, ["worker", "-l", "info"])
