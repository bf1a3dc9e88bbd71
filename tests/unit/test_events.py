"""Event models outside the request path: what each accepts and refuses."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas import ServiceMetrics, decode, encode


def test_service_metrics_take_the_service_from_the_key_when_the_value_has_none() -> None:
    # DESIGN.md: the service name is the Kafka key, so the value need not repeat it.
    event = decode(b'{"timestamp": "2026-01-31T12:00:00Z", "latency_p99_ms": 250}', ServiceMetrics)
    assert event.service is None
    assert event.metrics() == {"latency_p99_ms": 250.0}
    named = event.model_copy(update={"service": "checkout"})
    assert decode(encode(named), ServiceMetrics).service == "checkout"


def test_service_metrics_carry_extra_numeric_metrics() -> None:
    event = ServiceMetrics.model_validate(
        {"service": "api", "timestamp": "2026-01-31T12:00:00Z", "error_rate": 0.5, "qps": 12}
    )
    assert event.metrics() == {"error_rate": 0.5, "qps": 12.0}


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"service": ""}, "service"),
        ({"timestamp": "2026-01-31T12:00:00"}, "timestamp"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"latency_p99_ms": -1}, "latency_p99_ms"),
    ],
)
def test_service_metrics_refuse_bad_values(changes: dict[str, Any], loc: str) -> None:
    fields = {"service": "api", "timestamp": "2026-01-31T12:00:00Z"} | changes
    with pytest.raises(ValidationError) as caught:
        ServiceMetrics.model_validate(fields)
    assert [e["loc"] for e in caught.value.errors()] == [(loc,)]
