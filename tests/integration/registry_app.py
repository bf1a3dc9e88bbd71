"""The worker's pipeline plus the chain relay, so the worker owns partitions (for /readyz).

Run as ``python -m tests.integration.registry_app worker`` with STREAM_ settings.
"""

from __future__ import annotations

from agents import build_pipeline
from stream_app.app import create_app
from stream_app.cli import run_faust
from stream_app.config import load_settings
from tests.integration.chain_app import build

if __name__ == "__main__":
    run_faust(build_pipeline(build(create_app(load_settings()))), ["worker", "-l", "info"])
