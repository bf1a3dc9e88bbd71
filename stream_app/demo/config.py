"""The demo day's parameters, checked once; the pipeline's knobs come from Settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stream_app.inference.validate import DEFAULT_MAX_BYTES
from stream_app.lifecycle.demo_model import DEFAULT_START, SHIFTABLE

if TYPE_CHECKING:
    from stream_app.config import Settings

__all__ = ["ScenarioConfig"]

_SHARES = ("invalid_share", "pii_share", "unkeyed_share", "wrong_key_share", "untimed_share")


@dataclass(frozen=True)
class ScenarioConfig:
    """What the demo day holds; every count is exact, every draw seeded by ``seed``.

    ``n_requests`` counts every message on prediction-requests: the bursts of the
    ``over_limit_clients`` (``rate_limit_max_requests + over_limit_extra`` each) and the
    regular traffic, of which the ``*_share`` fractions are invalid, carry PII, have no
    key, a wrong key, or no timestamp field (disjoint sets). Traffic runs for one day
    from ``start`` plus ``flush_seconds`` into the next, so the event-time windows of the
    day's last hour close. ``incident_hour`` None picks an afternoon hour from the seed.

    Example:
        >>> ScenarioConfig(n_requests=500).over_limit_clients
        3
        >>> ScenarioConfig(invalid_share=0.9, pii_share=0.2)
        Traceback (most recent call last):
        ...
        ValueError: the shares must add up to at most 1, got 1.13
    """

    seed: int = 7
    n_requests: int = 30_000
    start: datetime = DEFAULT_START
    n_clients: int = 4_000
    over_limit_clients: int = 3
    over_limit_extra: int = 25
    rate_limit_max_requests: int = 60
    rate_limit_window_seconds: float = 60.0
    invalid_share: float = 0.02
    oversize_messages: int = 2
    max_request_bytes: int = DEFAULT_MAX_BYTES
    pii_share: float = 0.01
    unkeyed_share: float = 0.01
    wrong_key_share: float = 0.01
    untimed_share: float = 0.01
    shift_feature: str = "age"
    shift_amount: float = 12.0
    shift_at_hours: float = 12.0
    incident_service: str = "checkout-api"
    incident_hour: int | None = None
    metrics_interval_seconds: float = 60.0
    ab_experiment: str = "conversion-ab"
    ab_b_share: float = 0.5
    b_uplift: float = 0.25
    flush_seconds: float = 900.0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        if self.n_clients < 2 or self.over_limit_clients < 0 or self.over_limit_extra < 1:
            raise ValueError(
                "need n_clients >= 2, over_limit_clients >= 0 and over_limit_extra >= 1"
            )
        if self.rate_limit_max_requests < 1 or not self.rate_limit_window_seconds > 0:
            raise ValueError("need rate_limit_max_requests >= 1 and rate_limit_window_seconds > 0")
        if self.n_requests < self.burst_requests:
            raise ValueError(
                f"n_requests must be >= the bursts' {self.burst_requests} requests, "
                f"got {self.n_requests}"
            )
        for name in _SHARES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        total = sum(getattr(self, name) for name in _SHARES)
        if total > 1.0:
            raise ValueError(f"the shares must add up to at most 1, got {total:g}")
        self._check_rest()

    def _check_rest(self) -> None:
        if self.shift_feature not in SHIFTABLE:
            raise ValueError(f"shift_feature must be one of {list(SHIFTABLE)}")
        if not (math.isfinite(self.shift_amount) and 0.0 <= self.shift_at_hours <= 24.0):
            raise ValueError("shift_amount must be finite and shift_at_hours in [0, 24]")
        if self.incident_hour is not None and not 0 <= self.incident_hour <= 23:
            raise ValueError(f"incident_hour must be in 0..23, got {self.incident_hour}")
        if not 1.0 <= self.metrics_interval_seconds <= 3600.0:
            raise ValueError("metrics_interval_seconds must be in [1, 3600]")
        if not 0.0 < self.ab_b_share < 1.0 or not 0.0 <= self.b_uplift <= 10.0:
            raise ValueError("need ab_b_share in (0, 1) and b_uplift in [0, 10]")
        if not 0.0 <= self.flush_seconds <= 86_400.0:
            raise ValueError(f"flush_seconds must be in [0, 86400], got {self.flush_seconds}")
        if self.oversize_messages < 0 or self.max_request_bytes < 1:
            raise ValueError("need oversize_messages >= 0 and max_request_bytes >= 1")

    @property
    def burst_requests(self) -> int:
        """Requests sent by the over-limit clients, all bursts together."""
        return self.over_limit_clients * (self.rate_limit_max_requests + self.over_limit_extra)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ScenarioConfig:
        """The default day with the rate limit and A/B split of ``settings``.

        Example:
            >>> from stream_app.config import load_settings
            >>> s = load_settings({}, rate_limit_max_requests=10, ab_b_share=0.3)
            >>> c = ScenarioConfig.from_settings(s, seed=1)
            >>> c.rate_limit_max_requests, c.ab_b_share, c.seed
            (10, 0.3, 1)
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown scenario parameter(s): {', '.join(unknown)}")
        values: dict[str, Any] = {
            "rate_limit_max_requests": settings.rate_limit_max_requests,
            "rate_limit_window_seconds": settings.rate_limit_window_seconds,
            "ab_experiment": settings.ab_experiment,
            "ab_b_share": settings.ab_b_share,
        }
        values.update(overrides)
        return cls(**values)
