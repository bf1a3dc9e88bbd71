"""The alert rules file: YAML (or JSON, which YAML reads too), checked with pydantic.

The file holds one list, ``rules``, in the order their events are sent. Each rule has a
unique ``name`` and a ``warning`` and/or a ``critical`` threshold, and may set ``metric``
(what it reads; by default its name less a ``_drop`` or ``_absent``), ``direction``
(``above``, the default, or ``below``: warning and critical then run downwards),
``service`` (a regular expression the whole service name must match), ``cooldown_seconds``
and ``min_samples``; :class:`~stream_app.monitoring.threshold_rule.Rule` says what each
does. The package ships the pipeline's rules as ``alert_rules.yaml`` beside this module.
Every problem is one short ``ValueError`` line naming the rule (its position from 1 and
its name) and the field, never the value found there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from stream_app.monitoring.alert_rules import SEVERITIES, parse_rules

__all__ = ["RuleSpec", "RulesFile", "load_rules_file", "parse_rules_text", "shipped_rules_text"]

SHIPPED = "alert_rules.yaml"

# Strict: "100" (a quoted string) or true is a mistake in a threshold, not a number.
Threshold = Annotated[float, Field(strict=True, allow_inf_nan=False)]
NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,100}$"
RuleName = Annotated[str, Field(strict=True, pattern=NAME_PATTERN)]


class RuleSpec(BaseModel):
    """One rule as written in the file (what each field does: :class:`Rule`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RuleName
    metric: RuleName | None = None
    direction: Literal["above", "below"] = "above"
    warning: Threshold | None = None
    critical: Threshold | None = None
    service: Annotated[str, Field(strict=True, min_length=1, max_length=200)] | None = None
    # At most the engine's retention (7 days), which must keep a resolution that long.
    cooldown_seconds: Annotated[float, Field(strict=True, gt=0, le=7 * 86_400)] | None = None
    min_samples: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 1

    @field_validator("critical")
    @classmethod
    def _after_warning(cls, value: float | None, info: ValidationInfo) -> float | None:
        # Either missing from the data means it failed its own check: that error suffices.
        warning, direction = info.data.get("warning"), info.data.get("direction")
        if value is None or warning is None or direction is None:
            return value
        if direction == "above" and not warning < value:
            raise ValueError("must be above warning (direction above)")
        if direction == "below" and not warning > value:
            raise ValueError("must be below warning (direction below)")
        return value

    @field_validator("service")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error:
                raise ValueError("not a valid regular expression") from None
        return value

    def entry(self) -> dict[str, Any]:
        """The rule as the engine's rules mapping takes it (options only when set)."""
        entry = self.model_dump(exclude={"name"}, exclude_none=True, exclude_defaults=True)
        return {key: float(v) if key in SEVERITIES else v for key, v in entry.items()}


class RulesFile(BaseModel):
    """The whole file: at least one rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[RuleSpec] = Field(min_length=1)


def parse_rules_text(text: str) -> dict[str, dict[str, Any]]:
    """The rules of a YAML or JSON text, by name in file order, as the engine takes them.

    Example:
        >>> parse_rules_text("rules:\\n  - {name: error_rate, warning: 0.05, critical: 0.1}")
        {'error_rate': {'warning': 0.05, 'critical': 0.1}}
        >>> parse_rules_text('{"rules": [{"name": "error_rate", "warning": 0.2, "critical": 0.1}]}')
        Traceback (most recent call last):
        ...
        ValueError: rule 1 (error_rate), critical: must be above warning (direction above)
    """
    data = _load(text)
    if not isinstance(data, Mapping):
        raise ValueError("must be a mapping with a list of rules under 'rules'")
    try:
        parsed = RulesFile.model_validate(data)
    except ValidationError as error:
        raise ValueError(_describe(error, data)) from None
    rules: dict[str, dict[str, Any]] = {}
    for index, rule in enumerate(parsed.rules):
        if rule.warning is None and rule.critical is None:
            raise ValueError(f"{_rule(index, rule.name)}: needs a warning and/or a critical")
        if rule.name in rules:
            first = next(i for i, r in enumerate(parsed.rules) if r.name == rule.name)
            raise ValueError(f"{_rule(index, rule.name)}, name: repeats rule {first + 1}")
        rules[rule.name] = rule.entry()
    parse_rules(rules)  # the engine's own checks, so the file never holds what it refuses
    return rules


def _load(text: str) -> object:
    try:
        # JSON first: YAML 1.1 reads a number like 1e-3 (no dot) as a string.
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"
        raise ValueError(f"not valid YAML or JSON{where}") from None


def shipped_rules_text() -> str:
    """The text of the rules file the package ships (the pipeline's default rules)."""
    return resources.files(__package__).joinpath(SHIPPED).read_text(encoding="utf-8")


def load_rules_file(path: Path | None) -> dict[str, dict[str, Any]]:
    """The rules of the file at ``path``, or of the shipped file when ``path`` is None."""
    if path is None:
        return parse_rules_text(shipped_rules_text())
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or type(error).__name__}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    return parse_rules_text(text)


def _rule(index: int, name: object) -> str:
    # A name that is not a valid one is not shown: it may be anything.
    shown = f" ({name})" if isinstance(name, str) and re.match(NAME_PATTERN, name) else ""
    return f"rule {index + 1}{shown}"


def _describe(error: ValidationError, data: Mapping[str, Any]) -> str:
    """The first error as ``rule N (name), field: message``; values are never shown."""
    errors = error.errors(include_input=False, include_url=False)
    first, more = errors[0], f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return _where(first["loc"], data) + _message(first["type"], first["msg"], first["loc"]) + more


def _message(kind: str, message: str, loc: tuple[int | str, ...]) -> str:
    fields = ", ".join(RuleSpec.model_fields)
    if kind == "extra_forbidden":
        return f"unknown field (allowed: {fields if len(loc) > 2 else 'rules'})"
    if kind == "model_type":
        return f"must be a mapping of {fields}"
    if kind == "string_pattern_mismatch":
        return "must be 1 to 100 of the characters A-Z a-z 0-9 _ . : -"
    return message.removeprefix("Value error, ")


def _where(loc: tuple[int | str, ...], data: Mapping[str, Any]) -> str:
    if len(loc) < 2 or loc[0] != "rules" or not isinstance(loc[1], int):
        return f"{'.'.join(map(str, loc)) or 'file'}: "
    raw = data["rules"][loc[1]]
    name = raw.get("name") if isinstance(raw, Mapping) else None
    field = f", {'.'.join(map(str, loc[2:]))}" if len(loc) > 2 else ""
    return f"{_rule(loc[1], name)}{field}: "
