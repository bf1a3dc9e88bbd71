"""The project's own command groups of ``stream-app``; everything else is Faust's CLI.

Each group is a click group (or a single click command, like ``gate``) in
``stream_app/commands/<group>.py``. To add one, add its line to GROUPS:
``stream-app <name> ...`` then runs it, and ``stream-app --help`` lists it.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["GROUPS", "load_group"]

# name -> "module:attribute" of the click group; imported only when that group runs.
GROUPS: dict[str, str] = {
    "kafka": "stream_app.commands.kafka:kafka",
    "demo": "stream_app.commands.demo:demo",
    "bundle": "stream_app.commands.bundle:bundle",
    "registry": "stream_app.commands.registry:registry",
    "schemas": "stream_app.commands.schemas:schemas",
    "gate": "stream_app.commands.gate:gate",
    "tail": "stream_app.commands.tail:tail",
    "send": "stream_app.commands.send:send",
    "replay": "stream_app.commands.replay:replay",
}


def load_group(name: str) -> click.Command:
    """Import the click group (or command) registered as ``name``.

    Example:
        >>> load_group("kafka").name
        'kafka'
    """
    module, _, attribute = GROUPS[name].partition(":")
    group = getattr(importlib.import_module(module), attribute)
    if not isinstance(group, click.Command):
        raise TypeError(f"{GROUPS[name]} is not a click command or group")
    return group
