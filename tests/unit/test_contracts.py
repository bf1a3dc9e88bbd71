"""The topics' contracts: one model per topic, its encoder, its JSON Schema and the export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from schemas.alerts import AlertMessage
from schemas.codec import decode_topic, encode
from schemas.contracts import CONTRACTS, INPUTS, JSON_SCHEMA_DIALECT, OUTPUTS, json_schema
from schemas.metrics import AppServiceMetrics
from schemas.reports import DriftReportMessage
from stream_app.commands import load_group
from stream_app.monitoring.drift import compare
from stream_app.monitoring.drift_windows import ClosedDriftWindow
from stream_app.monitoring.stats import ReferenceProfile, WindowStats
from stream_app.topics import SPECS
from tests.utils.contracts import HOUR, SAMPLES, T0

REQUIRED = [
    (name, field)
    for name, model in CONTRACTS.items()
    for field, info in model.model_fields.items()
    if info.is_required()
]


def test_every_topic_with_json_values_has_one_contract() -> None:
    assert set(CONTRACTS) == {spec.attr for spec in SPECS} - {"model_bundles"}
    assert sorted((*OUTPUTS, *INPUTS)) == sorted(CONTRACTS)
    assert set(SAMPLES) == set(CONTRACTS)


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_a_message_round_trips_and_matches_its_exported_schema(name: str) -> None:
    raw = encode(SAMPLES[name])
    assert decode_topic(name, raw) == SAMPLES[name]
    assert type(decode_topic(name, raw)) is CONTRACTS[name]
    Draft202012Validator(json_schema(name)).validate(json.loads(raw))


@pytest.mark.parametrize(("name", "field"), REQUIRED)
def test_a_message_without_a_required_field_is_refused(name: str, field: str) -> None:
    data = json.loads(encode(SAMPLES[name]))
    del data[field]
    with pytest.raises(ValidationError) as caught:
        decode_topic(name, json.dumps(data))
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]
    assert not Draft202012Validator(json_schema(name)).is_valid(data)


def test_the_drift_and_alert_contracts_require_what_their_readers_need() -> None:
    assert ("alerts", "fingerprint") in REQUIRED and ("alerts", "service") in REQUIRED
    assert ("drift_reports", "features") in REQUIRED
    assert ("model_registry", "signature") not in REQUIRED


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_each_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = json_schema(name)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    Draft202012Validator.check_schema(schema)


def test_every_field_of_the_alert_contract_is_described() -> None:
    schema = json_schema("alerts")
    assert schema["description"] == (
        "An alert event as the alert agent publishes it (the alerts topic's contract)."
    )
    undescribed = [n for n, p in schema["properties"].items() if not p.get("description")]
    assert undescribed == []
    assert sorted(schema["required"]) == sorted(AlertMessage.model_fields)


def test_a_verdict_names_its_moments_in_the_schema() -> None:
    verdict = json_schema("drift_reports")["$defs"]["FeatureDriftVerdict"]["properties"]
    for field in ("reference_mean", "reference_std", "current_mean", "current_std"):
        assert verdict[field]["description"]
    assert {"z_score", "psi", "p_value", "severity"} <= set(verdict)


def test_an_infinite_z_score_travels_as_the_string_inf() -> None:
    # A reference with a zero standard deviation: any other current mean is infinitely far.
    profile = ReferenceProfile.from_data({"x": [1.0] * 200})
    stats = WindowStats.empty(profile).update({"x": [2.0] * 150})
    report = compare(profile, stats, window_start=T0, window_end=T0 + HOUR)
    window = ClosedDriftWindow("m", "1.0.0", "ref", T0, T0 + HOUR, 3, 150, 0, report)
    raw = encode(window.to_message())
    data = json.loads(raw)
    assert data["features"]["x"]["z_score"] == "inf"
    assert data["features"]["x"]["reference_std"] == 0.0
    assert data["features"]["x"]["current_mean"] == 2.0
    assert data["window_end"] == "2026-03-02T11:00:00+00:00"
    Draft202012Validator(json_schema("drift_reports")).validate(data)
    back = decode_topic("drift_reports", raw)
    assert isinstance(back, DriftReportMessage)
    assert back.features["x"].z_score == float("inf")
    assert back == window.to_message()


def test_the_apps_service_metrics_leave_absent_figures_out() -> None:
    drift = AppServiceMetrics(service="stream-app.drift", timestamp=T0, drift_severity=1)
    assert json.loads(encode(drift)) == {
        "service": "stream-app.drift",
        "timestamp": "2026-03-02T10:00:00+00:00",
        "drift_severity": 1.0,
    }
    upstream = decode_topic(
        "service_metrics", b'{"timestamp": "2026-03-02T10:00:00Z", "queue_depth": 7}'
    )
    assert isinstance(upstream, AppServiceMetrics)
    assert upstream.metrics() == {"queue_depth": 7.0}


def test_a_topic_without_a_contract_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="model_bundles"):
        decode_topic("model_bundles", b"{}")


def test_schemas_export_writes_one_schema_file_per_topic(tmp_path: Path) -> None:
    out = tmp_path / "contracts"
    result = CliRunner().invoke(load_group("schemas"), ["export", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{name}.schema.json" for name in CONTRACTS
    )
    for name in CONTRACTS:
        assert json.loads((out / f"{name}.schema.json").read_text()) == json_schema(name)
    assert result.output.splitlines() == [str(out / f"{n}.schema.json") for n in CONTRACTS]
