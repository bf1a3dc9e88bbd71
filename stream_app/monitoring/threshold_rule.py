"""One alert rule: what it reads, its thresholds and direction, and its own options.

A rule is named, reads one metric and has a warning and/or a critical threshold. A value
at or above a threshold meets it (``direction`` "above", the default), or at or below it
("below": a metric where lower is worse, like an accuracy). A rule whose name ends in
``_drop`` watches the relative drop of its metric against its trailing average, so
``prediction_volume_drop`` reads ``prediction_volume``. A rule whose name ends in
``_absent`` is the same drop measured against the trailing average of the observations
where the metric was above zero (at least one is needed), and a value of zero always
reads as a drop of 1, like Prometheus's ``absent()``: ``requests_absent`` fires when a
window's requests stop, or fall to a small fraction of what they were. The metric is the
name without those suffixes unless the rule names it (``metric_name``), so two rules can
watch one metric with other thresholds, e.g. for two services.

A rule may also narrow or delay itself: ``service`` (a regular expression the whole
service name must match; the engine is per service, the alert catalog applies it),
``cooldown`` (its own re-fire cooldown instead of the engine's) and ``min_samples`` (it
fires only once it has judged that many values: a first window is often not
representative).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

__all__ = [
    "ABSENT_SUFFIX",
    "DIRECTIONS",
    "DROP_SUFFIX",
    "SEVERITIES",
    "Direction",
    "Rule",
    "Severity",
]

Severity = Literal["warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("warning", "critical")
Direction = Literal["above", "below"]
DIRECTIONS: tuple[Direction, ...] = ("above", "below")
DROP_SUFFIX = "_drop"
ABSENT_SUFFIX = "_absent"


@dataclass(frozen=True)
class Rule:
    """One metric's thresholds; at least one is set, and warning before critical in the
    rule's direction when both are (below critical "above", above it "below").

    Example:
        >>> rule = Rule("checkout_accuracy", warning=0.8, critical=0.7, direction="below",
        ...             metric_name="accuracy", service="checkout(-.+)?")
        >>> rule.metric, rule.severity_for(0.75), rule.severity_for(0.7), rule.severity_for(0.9)
        ('accuracy', 'warning', 'critical', None)
        >>> rule.applies_to("checkout-eu"), rule.applies_to("search")
        (True, False)
    """

    name: str
    warning: float | None = None
    critical: float | None = None
    direction: Direction = "above"
    metric_name: str | None = None  # None: from the name (see :attr:`metric`)
    service: str | None = None  # a regular expression; None: every service
    cooldown: timedelta | None = None  # None: the engine's
    min_samples: int = 1

    def __post_init__(self) -> None:
        if self.warning is None and self.critical is None:
            raise ValueError(f"rule {self.name!r}: needs a warning and/or a critical threshold")
        for severity, value in (("warning", self.warning), ("critical", self.critical)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"rule {self.name!r}: {severity} must be finite, got {value!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"rule {self.name!r}: direction must be above or below")
        if self.warning is not None and self.critical is not None:
            relation = "<" if self.direction == "above" else ">"
            if self.worse(self.warning, self.critical) or self.warning == self.critical:
                raise ValueError(
                    f"rule {self.name!r}: warning ({self.warning}) must be {relation} critical "
                    f"({self.critical})"
                )
        self._check_options()

    def _check_options(self) -> None:
        if self.metric_name is not None and not (
            isinstance(self.metric_name, str) and self.metric_name
        ):
            raise ValueError(f"rule {self.name!r}: metric must be a non-empty string")
        if self.service is not None:
            try:
                re.compile(self.service)
            except (re.error, TypeError):
                raise ValueError(
                    f"rule {self.name!r}: service must be a regular expression"
                ) from None
        if self.cooldown is not None and not (
            isinstance(self.cooldown, timedelta) and self.cooldown > timedelta(0)
        ):
            raise ValueError(f"rule {self.name!r}: cooldown must be a timedelta > 0")
        samples = self.min_samples
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"rule {self.name!r}: min_samples must be an integer >= 1")

    def worse(self, value: float, than: float) -> bool:
        """Whether ``value`` is worse than ``than`` in the rule's direction."""
        return value > than if self.direction == "above" else value < than

    @property
    def is_drop(self) -> bool:
        """Whether the value is derived: the drop of :attr:`metric` against its trailing mean."""
        return self.name.endswith(DROP_SUFFIX) and len(self.name) > len(DROP_SUFFIX)

    @property
    def is_absent(self) -> bool:
        """Whether the value is derived: :attr:`metric` gone to zero, or its drop against
        the trailing mean of its non-zero observations."""
        return self.name.endswith(ABSENT_SUFFIX) and len(self.name) > len(ABSENT_SUFFIX)

    @property
    def metric(self) -> str:
        """The metric read from each observation: the one named, else the rule's name
        without its ``_drop`` or ``_absent``."""
        if self.metric_name is not None:
            return self.metric_name
        if self.is_drop:
            return self.name[: -len(DROP_SUFFIX)]
        if self.is_absent:
            return self.name[: -len(ABSENT_SUFFIX)]
        return self.name

    def severity_for(self, value: float) -> Severity | None:
        """The highest severity whose threshold ``value`` meets, None when it meets none."""
        if self.critical is not None and not self.worse(self.critical, value):
            return "critical"
        if self.warning is not None and not self.worse(self.warning, value):
            return "warning"
        return None

    def applies_to(self, service: str) -> bool:
        """Whether the rule judges ``service``'s metrics (its ``service`` pattern, whole)."""
        return self.service is None or re.fullmatch(self.service, service) is not None

    def threshold(self, severity: Severity) -> float:
        """The threshold of ``severity``; a severity the rule lacks falls back to the other."""
        order = (
            (self.critical, self.warning)
            if severity == "critical"
            else (
                self.warning,
                self.critical,
            )
        )
        return next(value for value in order if value is not None)

    @property
    def resolve_below(self) -> float:
        """The threshold past which the rule is clear (its lower severity's)."""
        return self.threshold("warning")
