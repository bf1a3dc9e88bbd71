"""The demo's orchestration pieces that need no Kafka: settings, pacing, drain, bundles."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from schemas.codec import encode
from stream_app.config import load_settings
from stream_app.demo.bundles import DEMO_MODELS, bundle_dir, ensure_bundle, register_and_promote
from stream_app.demo.collect import drain_status
from stream_app.demo.keys import demo_keys
from stream_app.demo.launch import demo_settings, serving_versions, worker_environment
from stream_app.demo.play import PlayProgress, in_flight_limit, progress_marks
from stream_app.demo.report import ReportBuilder
from stream_app.demo.report_text import RunFacts, render_report, stable_part
from stream_app.demo.scenario import ScenarioConfig, build_scenario
from stream_app.lifecycle.bundle import MODEL_FILE
from stream_app.lifecycle.registry import ModelRegistry
from stream_app.lifecycle.serving_choice import choose_serving
from tests.utils.contracts import HOUR, SAMPLES

KEY = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="  # base64 of 32 ASCII bytes


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ("demo-r", "demo-r.", "data/demo", 3600.0, 1800.0)),
        (
            {"STREAM_METRICS_WINDOW_SECONDS": "60", "STREAM_TOPIC_PREFIX": "t."},
            ("demo-r", "t.demo-r.", "data/demo", 60.0, 1800.0),
        ),
        (
            {"STREAM_DATA_DIR": "srv/x", "STREAM_WINDOW_GRACE_SECONDS": "0"},
            ("demo-r", "demo-r.", "srv/x/demo", 3600.0, 0.0),
        ),
    ],
)
def test_demo_settings_take_the_environment_over_the_demo_defaults(
    environ: dict[str, str], expected: tuple[object, ...]
) -> None:
    s = demo_settings(environ, "r")
    got = (s.app_id, s.topic_prefix, s.data_dir.as_posix(), s.metrics_window_seconds,
           s.window_grace_seconds)  # fmt: skip
    assert got == expected


def test_demo_settings_overrides_win() -> None:
    assert demo_settings({"STREAM_WEB_PORT": "7000"}, "r", web_port=7001).web_port == 7001


def test_worker_environment_round_trips_through_load_settings() -> None:
    settings = demo_settings({"STREAM_PSEUDONYM_KEY": KEY, "STREAM_PARTITIONS": "2"}, "r9")
    env = worker_environment(settings, {"HOME": "/h", "STREAM_APP_ID": "stale"})
    assert env["HOME"] == "/h"
    assert env["STREAM_PSEUDONYM_KEY"] == KEY  # the secret itself, not its mask
    again = load_settings({k: v for k, v in env.items() if k.startswith("STREAM_")})
    assert again.model_dump() == settings.model_dump()
    assert again.pseudonym_key_bytes == settings.pseudonym_key_bytes


def test_serving_versions_reads_the_model_component() -> None:
    health = {"model": {"production": "1.0.0", "challenger": "1.1.0"}}
    assert serving_versions(health) == ("1.0.0", "1.1.0")
    assert serving_versions({}) == (None, None)


@pytest.mark.parametrize(
    ("requests", "span", "grace", "limit"),
    [(30_000, 88_200.0, 1800.0, 204), (2_000, 88_200.0, 1800.0, 13), (10, 0.0, 60.0, 10),
     (864_000, 86_400.0, 300.0, 1000)],
)  # fmt: skip
def test_in_flight_limit_is_a_third_of_the_grace(
    requests: int, span: float, grace: float, limit: int
) -> None:
    assert in_flight_limit(requests, span, grace) == limit


@pytest.mark.parametrize(
    ("total", "steps", "marks"),
    [(100, 20, list(range(5, 101, 5))), (3, 20, [1, 2, 3]), (10, 4, [3, 5, 8, 10])],
)
def test_progress_marks(total: int, steps: int, marks: list[int]) -> None:
    assert sorted(progress_marks(total, steps)) == marks


def test_progress_line_with_no_elapsed_time() -> None:
    line = PlayProgress(0, 0, 0, 0.0, 0).line()
    assert line.startswith("[  0%] event time 1970-01-01 00:00 | sent 0 of 0 | 0 msg/s")


def test_drain_status_waits_for_the_counts_and_the_last_windows() -> None:
    scenario = build_scenario(ScenarioConfig(n_requests=300, over_limit_clients=0, seed=2))
    truth = scenario.truth
    builder = ReportBuilder()
    requests = [m for m in scenario.messages if m.topic == "prediction_requests"]
    for i, _ in enumerate(requests):  # every request predicted: counts right, no window yet
        builder.add("predictions", None, _prediction(f"r{i}"))
    status = drain_status(builder.summary(), truth)
    assert (status.accounted, status.expected, status.done) == (300, 300, False)
    day_end = truth.day_end
    drift = SAMPLES["drift_reports"].model_copy(update={"window_end": day_end - HOUR})
    builder.add("drift_reports", b"m", encode(drift))
    assert not drain_status(builder.summary(), truth).drift_closed
    drift = SAMPLES["drift_reports"].model_copy(update={"window_end": day_end})
    builder.add("drift_reports", b"m", encode(drift))
    assert drain_status(builder.summary(), truth).drift_closed
    assert not drain_status(builder.summary(), truth).done
    ab = SAMPLES["ab_reports"].model_copy(update={"interval_end": day_end})
    builder.add("ab_reports", b"m", encode(ab))
    assert drain_status(builder.summary(), truth).done


def _prediction(request_id: str) -> bytes:
    fields = {"model_name": "m", "model_version": "1", "variant": "A", "score": 0.5}
    return json.dumps({"request_id": request_id, **fields, "label": 1, "latency_ms": 1.0}).encode()


def test_run_ids_do_not_change_the_stable_report() -> None:
    def text(app_id: str) -> str:
        builder = ReportBuilder()
        for service in (app_id, f"{app_id}.drift", "checkout-api"):
            value = b'{"service": "%s", "timestamp": "2026-01-01T00:05:00Z", "latency_p99_ms": 9}'
            builder.add("service_metrics", service.encode(), value % service.encode())
        facts = RunFacts({"prediction_requests": 0}, 1.0, frozenset({app_id}), app_id=app_id)
        return render_report(builder.summary(), facts)

    first, second = text("demo-1"), text("demo-20260101-abcd")
    assert stable_part(first) == stable_part(second)
    assert "  app: 1 point" in first and "  app.drift: 1 point, latency" in first


def test_bundles_are_reused_when_sound_and_retrained_when_not(tmp_path: Path) -> None:
    model = DEMO_MODELS[0]
    first, reused = ensure_bundle(tmp_path, "conversion", model, None)
    assert not reused and first.directory == bundle_dir(tmp_path, "conversion", model)
    again, reused = ensure_bundle(tmp_path, "conversion", model, None)
    assert reused and again.digest == first.digest
    (first.directory / MODEL_FILE).write_bytes(b"tampered")
    retrained, reused = ensure_bundle(tmp_path, "conversion", model, None)
    assert not reused and retrained.digest == first.digest  # fixed trained_at: same bytes


def test_register_and_promote_serves_a_with_b_as_challenger(tmp_path: Path) -> None:
    bundles = {m: ensure_bundle(tmp_path, "conversion", m, None)[0] for m in DEMO_MODELS}
    registry = ModelRegistry()
    lines: list[str] = []
    assert register_and_promote(registry, bundles, lines.append) == "1.0.0"
    assert choose_serving(registry.state, "conversion").versions == ("1.0.0", "1.1.0")
    assert "gate passed" in "\n".join(lines)


def test_alerts_on_the_apps_own_latency_go_to_the_measured_part() -> None:
    builder = ReportBuilder()
    for service, rule in (("demo-1", "latency_p99_ms"), ("demo-1", "error_rate"),
                          ("checkout-api", "latency_p99_ms")):  # fmt: skip
        alert = SAMPLES["alerts"].model_copy(
            update={"rule": rule, "service": service, "fingerprint": service + rule}
        )
        builder.add("alerts", None, encode(alert))
    text = render_report(builder.summary(), RunFacts({}, 1.0, frozenset({"demo-1"}), "demo-1"))
    stable, measured = stable_part(text), text[len(stable_part(text)) :]
    assert "alerts: 2 fired" in stable
    assert "error_rate [app]" in stable and "latency_p99_ms [checkout-api]" in stable
    assert "latency_p99_ms [app]" in measured and "latency_p99_ms [app]" not in stable


def test_the_demo_makes_its_keys_once_and_takes_the_environments_over_them(
    tmp_path: Path,
) -> None:
    base = load_settings({}, data_dir=tmp_path)
    first = demo_keys(base, tmp_path / "keys")
    assert sorted(first) == [
        "bundle_root", "bundle_signing_key", "registry_signing_key", "registry_verify_key"
    ]  # fmt: skip
    assert first["bundle_root"] == tmp_path / "demo" / "bundles"
    assert stat.S_IMODE((tmp_path / "keys" / "registry-signing.pem").stat().st_mode) == 0o600
    settings = demo_settings({}, "r", **first)
    assert settings.registry_signer is not None and settings.registry_verifier is not None
    again = demo_keys(base, tmp_path / "keys")
    assert again["bundle_signing_key"] == first["bundle_signing_key"]
    assert again["registry_signing_key"].read_bytes() == first["registry_signing_key"].read_bytes()
    environ = {"STREAM_ALLOW_UNSIGNED_BUNDLES": "true", "STREAM_BUNDLE_ROOT": str(tmp_path)}
    assert sorted(demo_keys(load_settings(environ), tmp_path / "keys")) == [
        "registry_signing_key", "registry_verify_key"
    ]  # fmt: skip
