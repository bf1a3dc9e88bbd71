"""The demo day: exact counts of a small seeded day, checked against the pipeline's own cores."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas.events import Outcome, PredictionRequest, Rejection
from stream_app.config import load_settings
from stream_app.demo.scenario import Scenario, ScenarioConfig, ScenarioMessage, build_scenario
from stream_app.inference.features import build_features
from stream_app.inference.rate_limit import SlidingWindowLimiter
from stream_app.inference.score import assign_variant
from stream_app.inference.scrub import scrub
from stream_app.inference.validate import parse_request
from stream_app.monitoring.alerts import AlertEngine

SMALL = ScenarioConfig(
    seed=11,
    n_requests=2000,
    n_clients=300,
    over_limit_clients=2,
    over_limit_extra=10,
    rate_limit_max_requests=20,
    oversize_messages=1,
    max_request_bytes=4096,
)


@pytest.fixture(scope="module")
def small() -> Scenario:
    return build_scenario(SMALL)


@pytest.fixture(scope="module")
def default_day() -> Scenario:
    return build_scenario()


def _of(scenario: Scenario, topic: str) -> list[ScenarioMessage]:
    return [m for m in scenario.messages if m.topic == topic]


def _parsed(scenario: Scenario) -> list[tuple[ScenarioMessage, PredictionRequest | Rejection]]:
    return [
        (m, parse_request(m.value, max_bytes=SMALL.max_request_bytes))
        for m in _of(scenario, "prediction_requests")
    ]


def test_counts_of_the_small_day(small: Scenario) -> None:
    truth = small.truth
    assert small.counts() == {
        "service_metrics": 1455,  # one a minute for 24 h 15 min
        "prediction_requests": 2000,
        "outcomes": 1941,
    }
    # 2000 = 60 burst + 1940 regular; 2 % of 1940 invalid = 39: 1 oversize, then 38 over
    # the 12 kinds in turn (the first two get a fourth); 1 % each of the other roles = 19.
    assert truth.invalid_by_reason == {"malformed_json": 14, "schema": 24, "too_large": 1}
    assert truth.invalid_by_kind["not_json"] == truth.invalid_by_kind["truncated_json"] == 4
    assert truth.invalid_by_kind["age_bool"] == truth.invalid_by_kind["oversize"] + 2 == 3
    assert (truth.count("scored"), truth.count("throttled"), truth.count("invalid")) == (
        1941,
        20,
        24,
    )
    assert truth.invalid_unidentified == 15
    assert (truth.unkeyed, truth.wrong_key, truth.untimed) == (19, 19, 19)
    assert len(truth.pii_values) == 19 * 6 == len(set(truth.pii_values))
    assert truth.throttled_by_client == {"client-00300": 10, "client-00301": 10}
    assert truth.exposures == {"A": 932, "B": 1009}
    assert truth.conversions == {"A": 328, "B": 464}
    assert truth.shift_at == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert truth.incident_start == datetime(2026, 1, 1, 18, tzinfo=UTC)
    assert truth.incident_end - truth.incident_start == timedelta(hours=1)


def test_every_invalid_message_gets_its_reason_from_parse_request(small: Scenario) -> None:
    parsed = _parsed(small)
    reasons = Counter(p.reason for _, p in parsed if isinstance(p, Rejection))
    assert dict(reasons) == small.truth.invalid_by_reason
    identified = {p.request_id for _, p in parsed if isinstance(p, Rejection) and p.request_id}
    assert identified == {rid for rid, f in small.truth.fates.items() if f == "invalid"}


def test_every_identifiable_request_has_one_fate_and_one_message(small: Scenario) -> None:
    parsed = _parsed(small)
    ids = [p.request_id for _, p in parsed if p.request_id is not None]
    assert len(ids) == len(set(ids)) == len(small.truth.fates)
    assert set(ids) == set(small.truth.fates)


def test_the_rate_limiter_throttles_exactly_the_planted_excess(small: Scenario) -> None:
    limiter = SlidingWindowLimiter(SMALL.rate_limit_max_requests, SMALL.rate_limit_window_seconds)
    throttled: Counter[str] = Counter()
    for message, request in _parsed(small):
        if isinstance(request, PredictionRequest):
            # the intake's event time: the request's timestamp, else the Kafka timestamp
            when = request.timestamp or message.timestamp
            if not limiter.check(request.client_id, when.timestamp()).allowed:
                throttled[request.client_id] += 1
                assert small.truth.fates[request.request_id] == "throttled"
    assert dict(throttled) == small.truth.throttled_by_client


def test_keys_timestamps_and_order(small: Scenario) -> None:
    stamps = [m.timestamp_ms for m in small.messages]
    assert stamps == sorted(stamps)
    valid = [(m, p) for m, p in _parsed(small) if isinstance(p, PredictionRequest)]
    assert sum(m.key is None for m, _ in valid) == small.truth.unkeyed
    wrong = sum(m.key is not None and m.key != p.client_id.encode() for m, p in valid)
    assert wrong == small.truth.wrong_key
    assert sum(p.timestamp is None for _, p in valid) == small.truth.untimed
    assert all(p.timestamp is None or p.timestamp == m.timestamp for m, p in valid)


def test_planted_pii_is_in_the_requests_and_gone_after_scrub(small: Scenario) -> None:
    planted = small.truth.pii_values
    carriers = [
        (m, p)
        for m, p in _parsed(small)
        if isinstance(p, PredictionRequest) and p.model_extra and "email" in p.model_extra
    ]
    assert len(carriers) == len(planted) // 6
    raw = b"".join(m.value for m, _ in carriers).decode()
    assert all(value in raw for value in planted)
    scrubbed = json.dumps([scrub(p) for _, p in carriers], ensure_ascii=False)
    assert [value for value in planted if value in scrubbed] == []


def test_the_shift_moves_one_feature_from_mid_day(small: Scenario) -> None:
    valid = [p for _, p in _parsed(small) if isinstance(p, PredictionRequest) and p.timestamp]
    cut = small.truth.shift_at
    before = build_features([p for p in valid if p.timestamp and p.timestamp < cut])
    after = build_features([p for p in valid if p.timestamp and p.timestamp >= cut])
    age_gap = after[:, 0].mean() - before[:, 0].mean()
    session_gap = after[:, 5].mean() - before[:, 5].mean()
    assert 10.0 < age_gap < 14.0  # shift_amount 12 years
    assert abs(session_gap) < 1.5  # every other feature stays put


def test_outcomes_follow_their_scored_request_and_favour_b(small: Scenario) -> None:
    requests = {p.request_id: (m, p) for m, p in _parsed(small) if isinstance(p, PredictionRequest)}
    converted: Counter[str] = Counter()
    seen = set()
    for message in _of(small, "outcomes"):
        outcome = Outcome.model_validate_json(message.value)
        assert message.key == outcome.request_id.encode()
        request_message, request = requests[outcome.request_id]
        lag = (outcome.timestamp - request_message.timestamp).total_seconds()
        assert 60 <= lag < 1800
        assert message.timestamp == outcome.timestamp
        variant = assign_variant(request.user_id, SMALL.ab_experiment, SMALL.ab_b_share)
        converted[variant] += outcome.converted
        seen.add(outcome.request_id)
    assert seen == {rid for rid, f in small.truth.fates.items() if f == "scored"}
    assert dict(converted) == small.truth.conversions
    rates = {v: converted[v] / small.truth.exposures[v] for v in ("A", "B")}
    assert rates["B"] > rates["A"] * 1.2


def test_the_incident_hour_pages_once_with_the_default_rules(small: Scenario) -> None:
    engine = AlertEngine()
    events = []
    for message in _of(small, "service_metrics"):
        assert message.key == b"checkout-api"
        body = json.loads(message.value)
        metrics = {k: body[k] for k in ("latency_p99_ms", "error_rate")}
        events += engine.observe(message.timestamp, metrics)
    start = small.truth.incident_start
    assert [(e.kind, e.rule, e.severity, e.timestamp - start) for e in events] == [
        ("firing", "latency_p99_ms", "warning", timedelta(0)),
        ("escalated", "latency_p99_ms", "critical", timedelta(minutes=5)),
        ("deescalated", "latency_p99_ms", "warning", timedelta(minutes=55)),
        ("resolved", "latency_p99_ms", "warning", timedelta(hours=1)),
    ]


@pytest.mark.parametrize("window_seconds", [300, 900])
def test_the_default_day_never_trips_the_volume_drop_rule(
    default_day: Scenario, window_seconds: int
) -> None:
    scenario = default_day
    start_ms = round(scenario.truth.start.timestamp() * 1000)
    volume = Counter(
        (m.timestamp_ms - start_ms) // (window_seconds * 1000)
        for m in scenario.messages
        if m.topic == "prediction_requests"
    )
    engine = AlertEngine({"prediction_volume_drop": {"warning": 0.3, "critical": 0.5}})
    events = [
        engine.observe(
            scenario.truth.start + timedelta(seconds=(k + 1) * window_seconds),
            {"prediction_volume": float(volume[k])},
        )
        for k in sorted(volume)
    ]
    assert sum(events, []) == []


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    config = ScenarioConfig(seed=5, n_requests=300, over_limit_clients=1)
    assert build_scenario(config).messages == build_scenario(config).messages
    other = ScenarioConfig(seed=6, n_requests=300, over_limit_clients=1)
    assert build_scenario(config).messages != build_scenario(other).messages


def test_settings_give_the_rate_limit_and_split() -> None:
    settings = load_settings({}, rate_limit_max_requests=5, ab_experiment="exp-9")
    config = ScenarioConfig.from_settings(settings, n_requests=500)
    assert (config.rate_limit_max_requests, config.ab_experiment) == (5, "exp-9")
    assert build_scenario(config).truth.count("throttled") == 3 * 25
    with pytest.raises(ValueError, match="unknown scenario parameter"):
        ScenarioConfig.from_settings(settings, n_request=500)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_requests": 100}, "n_requests must be >= the bursts' 255"),
        ({"invalid_share": 1.5}, r"invalid_share must be in \[0, 1\]"),
        ({"shift_feature": "income"}, "shift_feature must be one of"),
        ({"incident_hour": 24}, "incident_hour must be in 0..23"),
        ({"start": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"n_clients": 1}, "n_clients >= 2"),
        ({"ab_b_share": 1.0}, r"ab_b_share in \(0, 1\)"),
    ],
)
def test_config_refuses_values_out_of_range(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScenarioConfig(**changes)  # type: ignore[arg-type]


def test_the_oversize_message_is_over_the_limit() -> None:
    scenario = build_scenario(ScenarioConfig(n_requests=400, over_limit_clients=0))
    sizes = [len(m.value) for m in scenario.messages if m.topic == "prediction_requests"]
    assert sorted(sizes)[-2:] == [1_048_576 + 1024] * 2
    assert np.median(sizes) < 400
