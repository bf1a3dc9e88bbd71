"""The full pipeline with a bundle installed from a directory at start, for agent tests.

The registry follower is what installs bundles in production; tests of the request path
that are not about the registry load one directly: ``TEST_BUNDLE_DIR`` names it, and
``TEST_CHALLENGER_DIR`` (optional) a challenger served as variant B. Run as
``python -m tests.integration.pipeline_app worker`` with STREAM_ settings.
"""

from __future__ import annotations

import os

from agents import build_pipeline
from stream_app.app import StreamApp, create_app
from stream_app.cli import run_faust
from stream_app.config import load_settings
from stream_app.lifecycle.bundle import load_bundle

__all__ = ["build"]


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
    run_faust(app, ["worker", "-l", "info"])
