"""The README cannot drift from the code: topics, settings and the two commands."""

from __future__ import annotations

import re

from stream_app.config import Settings, env_name, load_settings
from stream_app.topics import topic_names
from tests.utils.worker import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def _section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_sections_come_in_the_agreed_order() -> None:
    titles = re.findall(r"^## (.+)$", README, re.MULTILINE)
    assert titles == [
        "Quickstart",
        "Topic flow",
        "Command line",
        "Where to change what",
        "Settings",
        "How to test",
        "Benchmarks",
    ]


def test_quickstart_has_exactly_the_two_commands() -> None:
    block = _section("Quickstart").split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["make demo", "make test"]


def test_topic_flow_names_every_default_topic() -> None:
    flow = _section("Topic flow")
    for name in topic_names(load_settings({})).values():
        assert f"| {name} |" in flow, name


def test_settings_table_lists_every_variable_with_its_default() -> None:
    rows = dict(re.findall(r"^\| (STREAM_[A-Z_]+) \| ([^|]+) \|", _section("Settings"), re.M))
    assert set(rows) == {env_name(f) for f in Settings.model_fields}
    for field, info in Settings.model_fields.items():
        if info.default not in (None, ""):
            default = info.default
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert rows[env_name(field)].strip() == shown, field
