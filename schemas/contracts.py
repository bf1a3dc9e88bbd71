"""Every topic's contract in one mapping: topic short name -> the pydantic model of its value.

The short names are the attributes of ``stream_app.topics.SPECS`` (the topic's name comes
from the settings and may carry a prefix). A tool that reads any topic decodes its
values with ``decode(raw, CONTRACTS[short_name])``; ``stream-app schemas export`` writes
:func:`json_schema` of each one. model-bundles holds binary chunks and has no contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from schemas.alerts import AlertMessage
from schemas.events import (
    Outcome,
    Prediction,
    PredictionLog,
    PredictionRequest,
    Rejection,
    ThrottledRequest,
)
from schemas.metrics import AppServiceMetrics
from schemas.registry import RegistryEventMessage
from schemas.reports import ABReportMessage, DriftReportMessage

__all__ = ["CONTRACTS", "INPUTS", "JSON_SCHEMA_DIALECT", "OUTPUTS", "json_schema"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# The topics the app writes (service-metrics also carries upstream's figures).
OUTPUTS: tuple[str, ...] = (
    "requests_invalid",
    "requests_throttled",
    "predictions",
    "prediction_logs",
    "service_metrics",
    "drift_reports",
    "ab_reports",
    "alerts",
    "model_registry",
)
# The topics only upstream writes.
INPUTS: tuple[str, ...] = ("prediction_requests", "outcomes")

CONTRACTS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        "prediction_requests": PredictionRequest,
        "requests_invalid": Rejection,
        "requests_throttled": ThrottledRequest,
        "predictions": Prediction,
        "prediction_logs": PredictionLog,
        "outcomes": Outcome,
        "service_metrics": AppServiceMetrics,
        "drift_reports": DriftReportMessage,
        "ab_reports": ABReportMessage,
        "alerts": AlertMessage,
        "model_registry": RegistryEventMessage,
    }
)


def json_schema(short_name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a topic's values, from its model.

    Example:
        >>> schema = json_schema("alerts")
        >>> schema["$schema"], schema["title"], "fingerprint" in schema["required"]
        ('https://json-schema.org/draft/2020-12/schema', 'AlertMessage', True)
        >>> json_schema("model_bundles")
        Traceback (most recent call last):
        ...
        KeyError: "no contract for topic 'model_bundles'"
    """
    model = CONTRACTS.get(short_name)
    if model is None:
        raise KeyError(f"no contract for topic {short_name!r}")
    return {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema()}
