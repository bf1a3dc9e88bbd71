"""What the registry accepts: registration payloads, gate reports, the expected production.

Pure checks that raise RegistryError (or PromotionRefusedError) with the reason; the
registry runs them against the state it has just read from the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from stream_app.errors import PromotionRefusedError, RegistryError
from stream_app.lifecycle.gate_report import GateReport
from stream_app.lifecycle.registry_state import Direction, ModelRecord, ModelVersion, finite_metric

__all__ = ["check_current", "check_gate_report", "prefers_higher", "registration_payload"]


def registration_payload(
    metrics: Mapping[str, float],
    path: str | os.PathLike[str],
    digest: str | None,
    tags: Mapping[str, str] | None,
    directions: Mapping[str, Direction] | None,
) -> dict[str, Any]:
    """The payload of a registered event, every field checked.

    Example:
        >>> registration_payload({"recall": 0.8}, "m/1", None, None, {"recall": "higher"})
        {'metrics': {'recall': 0.8}, 'directions': {'recall': 'higher'}, 'path': 'm/1', \
'digest': None, 'tags': {}}
        >>> registration_payload({"recall": 0.8}, "m/1", None, None, {"recall": "up"})
        Traceback (most recent call last):
        ...
        stream_app.errors.RegistryError: direction of 'recall' must be 'higher' or 'lower'
    """
    clean = {str(k): finite_metric(str(k), v) for k, v in metrics.items()}
    for metric, direction in (directions or {}).items():
        if metric not in clean:
            raise RegistryError(f"direction given for {metric!r}, which has no metric value")
        if direction not in get_args(Direction):
            raise RegistryError(f"direction of {metric!r} must be 'higher' or 'lower'")
    text_path = os.fspath(path)
    if not isinstance(text_path, str) or not text_path:
        raise RegistryError("path must be a non-empty string")
    if digest is not None and (not isinstance(digest, str) or not digest):
        raise RegistryError("digest must be a non-empty string when given")
    if any(not isinstance(k, str) or not isinstance(v, str) for k, v in (tags or {}).items()):
        raise RegistryError("tags must map strings to strings")
    return {
        "metrics": clean,
        "directions": dict(directions or {}),
        "path": text_path,
        "digest": digest,
        "tags": dict(tags or {}),
    }


def check_gate_report(candidate: ModelVersion, report: GateReport | None) -> GateReport:
    """Refuse a promotion whose gate report is missing, failed or not about ``candidate``.

    The report must name the model and version it validated, equal to the candidate's;
    the digests are compared when both the report and the registered version have one.

    Example:
        >>> from datetime import UTC, datetime
        >>> from stream_app.lifecycle.gate_report import GateCheck, ModelIdentity
        >>> candidate = ModelVersion("churn", "1.1.0", {}, {}, "m", None, {},
        ...                          datetime(2026, 1, 1, tzinfo=UTC))
        >>> checks = (GateCheck("accuracy", True, "0.88 >= 0.8"),)
        >>> named = GateReport(checks, {}, ModelIdentity("churn", "1.1.0"))
        >>> check_gate_report(candidate, named).passed
        True
        >>> check_gate_report(candidate, GateReport(checks))
        Traceback (most recent call last):
        ...
        stream_app.errors.PromotionRefusedError: the gate report does not say which model it \
validated (name and version are required)
    """
    if report is None:
        raise PromotionRefusedError("a passing gate report is required to promote")
    if not report.passed:
        failed = ", ".join(report.failed) or "no checks"
        raise PromotionRefusedError(f"the gate did not pass ({failed})")
    identity = report.identity
    if identity is None or identity.name is None or identity.version is None:
        raise PromotionRefusedError(
            "the gate report does not say which model it validated (name and version are required)"
        )
    compared = [("name", identity.name, candidate.name)]
    compared.append(("version", identity.version, candidate.version))
    if identity.digest is not None and candidate.digest is not None:
        compared.append(("digest", identity.digest, candidate.digest))
    for field, reported, registered in compared:
        if reported != registered:
            raise PromotionRefusedError(
                f"the gate report is for {field} {reported!r}, not {registered!r}"
            )
    return report


def check_current(record: ModelRecord, expected: str | None) -> None:
    """The compare-and-set: refuse unless ``expected`` is the version serving now.

    Example:
        >>> check_current(ModelRecord("churn", {}, lineage=("1.0.0",)), "1.0.0")
        >>> check_current(ModelRecord("churn", {}), "1.0.0")
        Traceback (most recent call last):
        ...
        stream_app.errors.PromotionRefusedError: production of 'churn' is None, caller \
expected '1.0.0'
    """
    if record.production != expected:
        raise PromotionRefusedError(
            f"production of {record.name!r} is {record.production!r}, caller expected {expected!r}"
        )


def prefers_higher(candidates: Iterable[ModelVersion], metric: str) -> bool:
    """True unless the versions registered ``metric`` as "lower"; refuses disagreement.

    Example:
        >>> prefers_higher([], "accuracy")
        True
    """
    recorded = {v.directions[metric] for v in candidates if metric in v.directions}
    if len(recorded) > 1:
        raise RegistryError(f"versions disagree on the direction of {metric!r}; pass it explicitly")
    return recorded != {"lower"}
