"""What the registry commands parse and print, without a broker."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stream_app.commands.registry import registry
from stream_app.commands.registry_io import (
    DEFAULT_GATE,
    DEMO_VALIDATION_ROWS,
    gate_lines,
    load_gate_config,
    load_validation,
    parse_expected,
    parse_tags,
    parse_validation,
)
from stream_app.errors import RegistryError
from stream_app.lifecycle.gate_config import parse_gate_config
from stream_app.lifecycle.registry_signing import load_signing_key, load_verify_key
from tests.utils.lifecycle import failing_report


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ((), {}),
        (("team=ml",), {"team": "ml"}),
        (("a=1", "b=x=y"), {"a": "1", "b": "x=y"}),  # the first = splits
        (("empty=",), {"empty": ""}),
    ],
)
def test_tags_parse(pairs: tuple[str, ...], expected: dict[str, str]) -> None:
    assert parse_tags(pairs) == expected


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (("team",), "key=value"),
        (("=ml",), "key=value"),
        (("a b=1",), "key=value"),
        (("a=1", "a=2"), "given twice"),
    ],
)
def test_bad_tags_are_refused(pairs: tuple[str, ...], message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_tags(pairs)


@pytest.mark.parametrize(
    ("text", "expected"), [("none", None), ("None", None), ("1.0.0", "1.0.0"), (" 2.0.0 ", "2.0.0")]
)
def test_expected_current(text: str, expected: str | None) -> None:
    assert parse_expected(text) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [("demo:0", 0), ("demo:42", 42), ("valid.npz", Path("valid.npz")), ("demo", Path("demo"))],
)
def test_validation_sources(source: str, expected: int | Path) -> None:
    assert parse_validation(source) == expected


@pytest.mark.parametrize("source", ["demo:", "demo:-1", "demo:1.5"])
def test_a_demo_source_needs_a_whole_seed(source: str) -> None:
    with pytest.raises(RegistryError, match="integer seed"):
        parse_validation(source)


def test_demo_validation_is_the_seeded_demo_users() -> None:
    features, labels = load_validation("demo:3")
    again, _ = load_validation("demo:3")
    assert features.shape == (DEMO_VALIDATION_ROWS, 10)
    assert set(np.unique(labels)) == {0, 1}
    assert np.array_equal(features, again)


def test_npz_validation(tmp_path: Path) -> None:
    path = tmp_path / "valid.npz"
    np.savez(path, X=np.ones((4, 10)), y=np.array([0, 1, 0, 1]))
    features, labels = load_validation(str(path))
    assert features.shape == (4, 10)
    assert labels.tolist() == [0, 1, 0, 1]
    np.savez(tmp_path / "wrong.npz", features=np.ones((4, 10)))
    with pytest.raises(RegistryError, match="needs arrays X and y"):
        load_validation(str(tmp_path / "wrong.npz"))
    with pytest.raises(RegistryError, match="not a readable .npz"):
        load_validation(str(tmp_path / "absent.npz"))


def test_gate_config_files(tmp_path: Path) -> None:
    good = tmp_path / "gate.json"
    good.write_text('{"min_accuracy": 0.9}')
    assert load_gate_config(good) == {"min_accuracy": 0.9}
    listed = tmp_path / "list.json"
    listed.write_text("[1]")
    with pytest.raises(RegistryError, match="JSON object"):
        load_gate_config(listed)


def test_the_default_gate_is_a_valid_gate() -> None:
    assert parse_gate_config(DEFAULT_GATE).input_shape == (None, 10)


def test_gate_lines_name_the_failed_checks() -> None:
    lines = gate_lines(failing_report())
    assert lines[-1] == "gate failed: latency_p95"
    assert any(line.startswith("  FAIL  latency_p95") for line in lines)


def test_every_command_is_there_with_its_json_flag() -> None:
    assert set(registry.commands) == {
        "register", "list", "best", "promote", "rollback", "history", "keygen"
    }  # fmt: skip
    for name, command in registry.commands.items():
        if name != "keygen":  # it prints the two settings, nothing to parse
            assert "--json" in {opt for p in command.params for opt in getattr(p, "opts", [])}


def test_keygen_writes_a_matching_pair_and_never_overwrites(tmp_path: Path) -> None:
    result = CliRunner().invoke(registry, ["keygen", str(tmp_path / "keys")])
    assert result.exit_code == 0, result.output
    signing, verify = (
        tmp_path / "keys" / "registry-signing.pem",
        tmp_path / "keys" / "registry-verify.pem",
    )
    assert result.output.splitlines() == [
        f"STREAM_REGISTRY_SIGNING_KEY={signing}",
        f"STREAM_REGISTRY_VERIFY_KEY={verify}",
    ]
    assert stat.S_IMODE(signing.stat().st_mode) == 0o600
    private, public = load_signing_key(signing), load_verify_key(verify)
    public.verify(private.sign(b"x"), b"x")  # raises unless the halves match
    before = signing.read_bytes()
    again = CliRunner().invoke(registry, ["keygen", str(tmp_path / "keys")])
    assert again.exit_code == 1
    assert again.output.strip() == f"Error: {signing} exists; keys are never overwritten"
    assert signing.read_bytes() == before


def test_promote_requires_the_compare_and_set_and_a_validation_set() -> None:
    result = CliRunner().invoke(registry, ["promote", "m", "1.0.0", "--validation", "demo:1"])
    assert result.exit_code == 2
    assert "--expected-current" in result.output


def test_an_error_is_one_line_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_AB_B_SHARE", "2")
    result = CliRunner().invoke(registry, ["list"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: STREAM_AB_B_SHARE: Input should be less than 1 (got '2')"
    ]
