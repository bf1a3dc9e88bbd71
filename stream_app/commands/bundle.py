"""`stream-app bundle ...`: commands that make model bundles."""

from __future__ import annotations

import json
from pathlib import Path

import click

from stream_app.config import load_settings
from stream_app.errors import ConfigError
from stream_app.lifecycle.bundle import load_bundle
from stream_app.lifecycle.demo_model import train_demo_bundle

__all__ = ["bundle"]


@click.group()
def bundle() -> None:
    """Create and inspect model bundles."""


@bundle.command("train-demo")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Bundle directory to create (must not exist, or be empty).",
)
@click.option("--name", required=True, help="Model name, e.g. conversion.")
@click.option("--version", "version", required=True, help="Model version, e.g. 1.0.0.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of data and forest.")
@click.option("--overwrite", is_flag=True, help="Replace a bundle already at --out.")
def train_demo(out: Path, name: str, version: str, seed: int, overwrite: bool) -> None:
    """Train the demo conversion model on synthetic users and save it as a bundle.

    The bundle is signed when STREAM_BUNDLE_SIGNING_KEY is set.
    """
    try:
        key = load_settings().bundle_signing_key_bytes
        info = train_demo_bundle(
            out, name=name, version=version, seed=seed, overwrite=overwrite, signing_key=key
        )
    except (FileExistsError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    # Read back through the verifying loader: what we print is what a worker would load.
    loaded = load_bundle(info.directory, signing_key=key)
    summary = {
        "directory": str(info.directory),
        "name": loaded.name,
        "version": loaded.version,
        "digest": info.digest,
        "signed": key is not None,
        "metrics": loaded.metadata["metrics"],
    }
    click.echo(json.dumps(summary, indent=2, sort_keys=True))
