"""Read the compose stack's files as data: compose services, shell commands, the CLI.

For tests/unit/test_deploy_files.py and tests/integration/test_compose_init.py.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from ruamel.yaml import YAML

from stream_app.commands import GROUPS, load_group
from tests.utils.worker import REPO_ROOT

__all__ = [
    "COMPOSE_PATH",
    "compose",
    "compose_env",
    "load_yaml",
    "resolve_command",
    "script_commands",
]

COMPOSE_PATH = REPO_ROOT / "docker-compose.yml"
# `stream-app` as a command word, not inside a path or a longer name.
_STREAM_APP = re.compile(r"(?<![\w/.-])stream-app(?![\w.-])([^|;)&>\n]*)")


def load_yaml(path: Path) -> Any:
    """A YAML file as plain data (anchors and merge keys resolved)."""
    return YAML(typ="safe", pure=True).load(path.read_text())


def compose() -> dict[str, Any]:
    """docker-compose.yml as data."""
    return dict(load_yaml(COMPOSE_PATH))


def compose_env(service: str) -> dict[str, str]:
    """The ``environment`` mapping of ``service`` in docker-compose.yml."""
    return {str(k): str(v) for k, v in compose()["services"][service]["environment"].items()}


def script_commands(text: str) -> list[list[str]]:
    """Each ``stream-app ...`` invocation in a shell script, as its arguments.

    Comment lines are left out, and so is ``stream-app "$@"`` (the caller's command); an
    invocation ends at a pipe, ``;``, ``)``, ``&`` or a redirection, and shell words are
    split as the shell would (quotes removed, ``$x`` kept as written).

    Example:
        >>> script_commands('x=$(stream-app registry list "$M" --json | python)\\n# stream-app no')
        [['registry', 'list', '$M', '--json']]
    """
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    found = [shlex.split(m.group(1)) for m in _STREAM_APP.finditer("\n".join(lines))]
    return [argv for argv in found if argv != ["$@"]]  # "$@": the caller's own command


def resolve_command(argv: Sequence[str]) -> tuple[str, ...]:
    """The command path (``("registry", "promote")``) that ``stream-app ARGV`` runs.

    Resolved as ``stream_app.cli`` does: a project group, else Faust's CLI. Every option
    must be one the command takes, every required option and argument given, and no
    more arguments than it accepts; AssertionError says what is wrong.
    """
    from faust.cli.faust import cli as faust_cli

    args = list(argv)
    command: click.Command = load_group(args[0]) if args[0] in GROUPS else faust_cli
    path: list[str] = [args.pop(0)] if args[0] in GROUPS else []
    while isinstance(command, click.Group):
        assert args, f"stream-app {' '.join(argv)}: no command of {command.name} given"
        name = args.pop(0)
        assert name in command.commands, f"stream-app {' '.join(path)} has no command {name!r}"
        command, path = command.commands[name], [*path, name]
    _check_params(command, args, f"stream-app {' '.join(argv)}")
    return tuple(path)


def _check_params(command: click.Command, args: list[str], shown: str) -> None:
    options = {
        name: param
        for param in command.params
        if isinstance(param, click.Option)
        for name in (*param.opts, *param.secondary_opts)
    }
    given: set[str] = set()
    positional: list[str] = []
    words = iter(args)
    for word in words:
        if not word.startswith("-") or word == "-":
            positional.append(word)
            continue
        name, has_value, _ = word.partition("=")
        assert name in options, f"{shown}: {command.name} takes no option {name}"
        option = options[name]
        given.add(option.name or name)
        if not option.is_flag and not option.count and not has_value:
            assert next(words, None) is not None, f"{shown}: {name} needs a value"
    for option in {p for p in options.values() if p.required}:
        assert option.name in given, f"{shown}: {option.opts[0]} is required"
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    least = sum(p.nargs for p in arguments if p.required and p.nargs > 0)
    unbounded = any(p.nargs < 0 for p in arguments)
    most = sum(max(p.nargs, 0) for p in arguments)
    assert len(positional) >= least, f"{shown}: needs {least} arguments"
    assert unbounded or len(positional) <= most, f"{shown}: takes at most {most} arguments"
