"""The alert rules file: the shipped one, and every refusal naming its rule and field."""

from __future__ import annotations

import json
import tomllib
from datetime import timedelta
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import pytest

from stream_app.cli import main
from stream_app.config import load_settings
from stream_app.errors import ConfigError
from stream_app.monitoring.alert_catalog import configured_rules, pipeline_rules
from stream_app.monitoring.alert_file import load_rules_file, parse_rules_text
from stream_app.monitoring.alert_rules import DEFAULT_RULES, AlertConfig, Rule, parse_rules
from tests.utils.worker import REPO_ROOT

# The pipeline's rules as they were built into alert_catalog.py before they moved to the
# shipped file (with STREAM_AB_MAX_LATENCY_INCREASE 0.5 and STREAM_VOLUME_ABSENT_FRACTION
# 0.1): the file must give exactly these, in this order.
BUILT_IN = {
    "latency_p99_ms": {"warning": 100.0, "critical": 200.0},
    "error_rate": {"warning": 0.05, "critical": 0.10},
    "prediction_volume_drop": {"warning": 0.3, "critical": 0.5},
    "drift_severity": {"warning": 1.0, "critical": 2.0},
    "ab_srm": {"critical": 1.0},
    "ab_latency_increase": {"warning": 0.5},
    "requests_absent": {"critical": 0.9},
}


def test_the_shipped_file_gives_exactly_the_built_in_rules() -> None:
    rules = load_rules_file(None)
    assert rules == BUILT_IN
    assert list(rules) == list(BUILT_IN)  # the order events of one observation come in
    assert all(type(v) is float for levels in rules.values() for v in levels.values())
    assert pipeline_rules(0.5, 0.1) == BUILT_IN


def test_the_engines_own_default_rules_are_the_shipped_ones() -> None:
    # AlertEngine() without rules keeps these three; they must not drift from the file.
    shipped = load_rules_file(None)
    assert {name: shipped[name] for name in DEFAULT_RULES} == DEFAULT_RULES


def test_the_shipped_file_is_package_data() -> None:
    shipped = resources.files("stream_app.monitoring").joinpath("alert_rules.yaml")
    assert shipped.is_file()
    assert parse_rules_text(shipped.read_text(encoding="utf-8")) == BUILT_IN
    # What puts it into a wheel (and so into a non-editable install such as the image's).
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["stream_app.monitoring"]
    assert any(fnmatch(shipped.name, pattern) for pattern in patterns)


def test_a_json_file_loads_like_yaml(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"name": "error_rate", "warning": 1e-3}]}))
    assert load_rules_file(path) == {"error_rate": {"warning": 0.001}}


def _file(*rules: object) -> str:
    return json.dumps({"rules": list(rules)})


GOOD = {"name": "error_rate", "warning": 0.05, "critical": 0.1}


NAME_CHARS = "must be 1 to 100 of the characters A-Z a-z 0-9 _ . : -"
E1 = "rule 1 (error_rate)"
ABOVE = "must be above warning (direction above)"
FIELDS = "name, metric, direction, warning, critical, service, cooldown_seconds, min_samples"
BELOW = {"name": "accuracy", "direction": "below", "warning": 0.8, "critical": 0.7}

BAD = [
    (_file({**GOOD, "warning": "0.05"}), f"{E1}, warning: Input should be a valid number"),
    (_file({**GOOD, "critical": True}), f"{E1}, critical: Input should be a valid number"),
    (_file(GOOD, {**GOOD, "name": "x", "critical": 1e999}),
     "rule 2 (x), critical: Input should be a finite number"),
    (_file({**GOOD, "critical": 0.05}), f"{E1}, critical: {ABOVE}"),
    (_file({**GOOD, "warning": 0.2}), f"{E1}, critical: {ABOVE}"),
    (_file({**BELOW, "critical": 0.9}),
     "rule 1 (accuracy), critical: must be below warning (direction below)"),
    (_file({**BELOW, "direction": "down"}),
     "rule 1 (accuracy), direction: Input should be 'above' or 'below'"),
    (_file({**GOOD, "metric": "a b"}), f"{E1}, metric: {NAME_CHARS}"),
    (_file({**GOOD, "service": "check(out"}), f"{E1}, service: not a valid regular expression"),
    (_file({**GOOD, "service": ""}), f"{E1}, service: String should have at least 1 character"),
    (_file({**GOOD, "cooldown_seconds": 0}),
     f"{E1}, cooldown_seconds: Input should be greater than 0"),
    (_file({**GOOD, "cooldown_seconds": 8 * 86_400}),
     f"{E1}, cooldown_seconds: Input should be less than or equal to 604800"),
    (_file({**GOOD, "cooldown_seconds": "60"}),
     f"{E1}, cooldown_seconds: Input should be a valid number"),
    (_file({**GOOD, "min_samples": 0}),
     f"{E1}, min_samples: Input should be greater than or equal to 1"),
    (_file({**GOOD, "min_samples": 2.5}), f"{E1}, min_samples: Input should be a valid integer"),
    (_file({"name": "error_rate"}), f"{E1}: needs a warning and/or a critical"),
    (_file(GOOD, {"warning": 1}), "rule 2, name: Field required"),
    (_file({**GOOD, "name": "a secret value"}), f"rule 1, name: {NAME_CHARS}"),
    (_file({**GOOD, "name": "x" * 101}), f"rule 1, name: {NAME_CHARS}"),
    (_file({**GOOD, "name": 7}), "rule 1, name: Input should be a valid string"),
    (_file(GOOD, {"name": "a", "warning": 1}, GOOD), "rule 3 (error_rate), name: repeats rule 1"),
    (_file({**GOOD, "severity": "page"}), f"{E1}, severity: unknown field (allowed: {FIELDS})"),
    (_file(GOOD, 3), f"rule 2: must be a mapping of {FIELDS}"),
    (_file(), "rules: List should have at least 1 item after validation, not 0"),
    (json.dumps({"rules": [GOOD], "cooldown": 5}), "cooldown: unknown field (allowed: rules)"),
    (json.dumps({"rule": [GOOD]}), "rules: Field required (and 1 more)"),
    (json.dumps([GOOD]), "must be a mapping with a list of rules under 'rules'"),
    ("rules:\n  - {name: error_rate, warning: [}", "not valid YAML or JSON (line 2, column 34)"),
    ("", "must be a mapping with a list of rules under 'rules'"),
    # Edges: equal thresholds, the first of two repeats, a later line, three errors, caps.
    (_file({**BELOW, "critical": 0.8}),
     "rule 1 (accuracy), critical: must be below warning (direction below)"),
    (_file({"name": "z", "warning": 1}, GOOD, GOOD), "rule 3 (error_rate), name: repeats rule 2"),
    (_file({"name": "a", "warning": 1}, GOOD, GOOD), "rule 3 (error_rate), name: repeats rule 2"),
    ("rules:\n  - {name: a, warning: 1}\n  - {name: error_rate, warning: [}",
     "not valid YAML or JSON (line 3, column 34)"),
    (json.dumps({"rule": [GOOD], "x": 1}), "rules: Field required (and 2 more)"),
    (_file({**GOOD, "service": "x" * 201}),
     f"{E1}, service: String should have at most 200 characters"),
    (_file({**GOOD, "min_samples": 10_001}),
     f"{E1}, min_samples: Input should be less than or equal to 10000"),
]  # fmt: skip


def test_the_largest_service_pattern_and_sample_count_are_taken() -> None:
    rules = parse_rules_text(_file({**GOOD, "service": "x" * 200, "min_samples": 10_000}))
    assert rules["error_rate"]["service"] == "x" * 200
    assert rules["error_rate"]["min_samples"] == 10_000


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_file_is_refused_naming_the_rule_and_field(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_rules_text(text)
    assert str(caught.value) == message
    assert "secret" not in str(caught.value)


def test_an_unreadable_file_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        load_rules_file(tmp_path / "missing.yaml")
    assert (
        str(caught.value) == f"cannot read {tmp_path / 'missing.yaml'}: No such file or directory"
    )
    (tmp_path / "latin1.yaml").write_bytes(b"rules: [\xe9]")
    with pytest.raises(ValueError, match=r"latin1\.yaml is not UTF-8 text$"):
        load_rules_file(tmp_path / "latin1.yaml")


def test_a_file_of_ones_own_is_taken_as_written(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: ab_latency_increase, warning: 0.2}\n")
    settings = load_settings(
        {"STREAM_ALERT_RULES": str(path), "STREAM_AB_MAX_LATENCY_INCREASE": "2"}
    )
    rules = configured_rules(settings.alert_rules, 2.0, settings.volume_absent_fraction)
    assert rules == {"ab_latency_increase": {"warning": 0.2}}
    assert configured_rules(None, 2.0, 0.1)["ab_latency_increase"] == {"warning": 2.0}


def test_a_bad_file_is_a_config_error_naming_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: error_rate, warning: 0.2, critical: 0.1}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"STREAM_ALERT_RULES": str(path)})
    assert str(caught.value) == (
        "STREAM_ALERT_RULES: rule 1 (error_rate), critical: must be above warning "
        f"(direction above) (got '{path}')"
    )


def test_the_absent_fraction_is_refused_beside_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: requests_absent, critical: 0.8}\n")
    assert load_settings({"STREAM_ALERT_RULES": str(path)}).alert_rules == path
    with pytest.raises(ConfigError, match="^STREAM_VOLUME_ABSENT_FRACTION sets the shipped rules'"):
        load_settings({"STREAM_ALERT_RULES": str(path), "STREAM_VOLUME_ABSENT_FRACTION": "0.2"})


def test_a_bad_file_stops_the_worker_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: error_rate, warning: 0.05, cooldown: 60}\n")
    monkeypatch.setenv("STREAM_ALERT_RULES", str(path))
    with pytest.raises(SystemExit) as caught:
        main(["worker", "-l", "info"])
    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "stream-app: STREAM_ALERT_RULES: rule 1 (error_rate), cooldown: unknown field "
        f"(allowed: {FIELDS}) (got '{path}')\n"
    )


def test_every_field_reaches_the_engine() -> None:
    text = """
rules:
  - name: checkout_accuracy
    metric: accuracy
    direction: below
    warning: 0.8
    critical: 0.7
    service: checkout(-.+)?
    cooldown_seconds: 600
    min_samples: 3
  - {name: error_rate, warning: 1}
"""
    rules = parse_rules_text(text)
    assert rules == {
        "checkout_accuracy": {
            "metric": "accuracy",
            "direction": "below",
            "warning": 0.8,
            "critical": 0.7,
            "service": "checkout(-.+)?",
            "cooldown_seconds": 600.0,
            "min_samples": 3,
        },
        "error_rate": {"warning": 1.0},
    }
    config = AlertConfig(parse_rules(rules))
    assert config.rules == (
        Rule("checkout_accuracy", 0.8, 0.7, "below", "accuracy", "checkout(-.+)?",
             timedelta(minutes=10), 3),
        Rule("error_rate", 1.0),
    )  # fmt: skip
    assert parse_rules(config.to_dict()["rules"]) == config.rules


def test_the_readme_example_is_a_valid_file() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n### The alert rules file\n", 1)[1].split("\n### ", 1)[0]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    rules = parse_rules_text(example)
    assert list(rules) == ["latency_p99_ms", "checkout_accuracy", "error_rate"]
    assert rules["checkout_accuracy"]["direction"] == "below"
