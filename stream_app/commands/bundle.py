"""`stream-app bundle ...`: commands that make model bundles."""

from __future__ import annotations

import json
from pathlib import Path

import click

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
    """Train the demo conversion model on synthetic users and save it as a bundle."""
    try:
        info = train_demo_bundle(out, name=name, version=version, seed=seed, overwrite=overwrite)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from exc
    # Read back through the verifying loader: what we print is what a worker would load.
    loaded = load_bundle(info.directory)
    summary = {
        "directory": str(info.directory),
        "name": loaded.name,
        "version": loaded.version,
        "digest": info.digest,
        "metrics": loaded.metadata["metrics"],
    }
    click.echo(json.dumps(summary, indent=2, sort_keys=True))
