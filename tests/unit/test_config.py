"""Settings validation: every bad value is refused with the variable's name."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import pytest

from stream_app.config import TOPIC_FIELDS, Settings, env_name, load_settings
from stream_app.errors import ConfigError

KEY_32 = base64.b64encode(bytes(range(32))).decode()
KEY_31 = base64.b64encode(bytes(range(31))).decode()
KEY_48_URLSAFE = base64.urlsafe_b64encode(b"\xfb\xff" * 24).decode()


def test_defaults() -> None:
    s = load_settings({})
    assert s.broker_url == "kafka://127.0.0.1:9092"
    assert s.bootstrap_servers == ["127.0.0.1:9092"]
    assert (s.broker_host, s.broker_port) == ("127.0.0.1", 9092)
    assert s.store == "memory://"
    assert s.processing_guarantee == "at_least_once"
    assert s.rate_limit_max_requests == 60
    assert s.rate_limit_window_seconds == 60
    assert s.drift_window_seconds == 3600
    assert s.ab_b_share == 0.5
    assert s.alert_cooldown_seconds == 3600
    assert s.bundle_signing_key_bytes is None
    assert s.pseudonym_key_bytes is None
    assert s.local_kafka_controller_port == 9093
    assert (s.bundle_store, s.bundle_chunk_bytes) == ("directory", 524_288)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"STREAM_BROKER_URL": "kafka://a:1;kafka://b:2"}, ("bootstrap_servers", ["a:1", "b:2"])),
        ({"STREAM_WEB_PORT": "8080"}, ("web_port", 8080)),
        ({"STREAM_PARTITIONS": "12"}, ("partitions", 12)),
        ({"STREAM_PROCESSING_GUARANTEE": "exactly_once"}, ("processing_guarantee", "exactly_once")),
        ({"STREAM_TOPIC_PREDICTIONS": "preds.v2"}, ("topic_predictions", "preds.v2")),
        ({"STREAM_AB_B_SHARE": "0.1"}, ("ab_b_share", 0.1)),
        ({"STREAM_BATCH_WITHIN_SECONDS": "0.2"}, ("batch_within_seconds", 0.2)),
        ({"STREAM_BUNDLE_SIGNING_KEY": KEY_32}, ("bundle_signing_key_bytes", bytes(range(32)))),
        ({"STREAM_PSEUDONYM_KEY": KEY_48_URLSAFE}, ("pseudonym_key_bytes", b"\xfb\xff" * 24)),
        ({"STREAM_LOCAL_KAFKA_DIR": "/srv/kafka"}, ("local_kafka_dir", Path("/srv/kafka"))),
        ({"STREAM_WEB_PORT": ""}, ("web_port", 6066)),  # empty means unset
        ({"STREAM_BUNDLE_STORE": "kafka"}, ("bundle_store", "kafka")),
        ({"STREAM_BUNDLE_CHUNK_BYTES": "1000000"}, ("bundle_chunk_bytes", 1_000_000)),
        ({"STREAM_SESSION_TIMEOUT_SECONDS": "6"}, ("session_timeout_seconds", 6.0)),
    ],
)
def test_valid_values(env: dict[str, str], expected: tuple[str, object]) -> None:
    attribute, value = expected
    assert getattr(load_settings(env), attribute) == value


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("STREAM_BROKER_URL", "127.0.0.1:9092", "kafka://host:port"),
        ("STREAM_BROKER_URL", "kafka://host", "port 1..65535"),
        ("STREAM_BROKER_URL", "kafka://host:70000", "port 1..65535"),
        ("STREAM_APP_ID", "my app", "pattern"),
        ("STREAM_PARTITIONS", "0", "greater than or equal to 1"),
        ("STREAM_REPLICATION_FACTOR", "0", "greater than or equal to 1"),
        ("STREAM_STORE", "redis://", "memory:// or rocksdb://"),
        ("STREAM_PROCESSING_GUARANTEE", "at_most_once", "at_least_once"),
        ("STREAM_WEB_PORT", "0", "greater than or equal to 1"),
        ("STREAM_WEB_PORT", "65536", "less than or equal to 65535"),
        ("STREAM_WEB_PORT", "http", "valid integer"),
        ("STREAM_TOPIC_ALERTS", "bad topic", "pattern"),
        ("STREAM_TOPIC_PREFIX", "a/b", "pattern"),
        ("STREAM_RATE_LIMIT_MAX_REQUESTS", "0", "greater than or equal to 1"),
        ("STREAM_RATE_LIMIT_WINDOW_SECONDS", "0", "greater than 0"),
        ("STREAM_BATCH_SIZE", "0", "greater than or equal to 1"),
        ("STREAM_SESSION_TIMEOUT_SECONDS", "5", "greater than or equal to 6"),
        ("STREAM_SESSION_TIMEOUT_SECONDS", "301", "less than or equal to 300"),
        ("STREAM_BATCH_WITHIN_SECONDS", "-1", "greater than 0"),
        ("STREAM_DRIFT_WINDOW_SECONDS", "59", "greater than or equal to 60"),
        ("STREAM_AB_B_SHARE", "0", "greater than 0"),
        ("STREAM_AB_B_SHARE", "1", "less than 1"),
        ("STREAM_AB_REPORT_INTERVAL_SECONDS", "0.5", "greater than or equal to 1"),
        ("STREAM_ALERT_COOLDOWN_SECONDS", "0", "greater than 0"),
        ("STREAM_ALERT_COOLDOWN_SECONDS", "nan", "less than or equal to"),
        ("STREAM_BUNDLE_SIGNING_KEY", KEY_31, "decodes to 31 bytes; at least 32"),
        ("STREAM_BUNDLE_SIGNING_KEY", "not base64!", "must be base64"),
        ("STREAM_PSEUDONYM_KEY", "c2hvcnQ=", "decodes to 5 bytes"),
        ("STREAM_LOCAL_KAFKA_CONTROLLER_PORT", "9092", "must differ from the broker port"),
        ("STREAM_BUNDLE_STORE", "s3", "'directory' or 'kafka'"),
        ("STREAM_BUNDLE_CHUNK_BYTES", "1000001", "less than or equal to 1000000"),
        ("STREAM_BUNDLE_CHUNK_BYTES", "1023", "greater than or equal to 1024"),
    ],
)
def test_invalid_values_name_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    message = str(caught.value)
    assert variable in message
    assert says in message


@pytest.mark.parametrize("installed", [True, False])
def test_rocksdb_store_needs_rocksdict(monkeypatch: pytest.MonkeyPatch, installed: bool) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (object() if installed else None) if name == "rocksdict" else real(name),
    )
    env = {"STREAM_STORE": "rocksdb://"}
    if installed:
        assert load_settings(env).store == "rocksdb://"
    else:
        with pytest.raises(ConfigError, match=r"STREAM_STORE: rocksdb:// needs rocksdict"):
            load_settings(env)


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"STREAM_BUNDLE_SIGNING_KEY": KEY_31})
    assert KEY_31 not in str(caught.value)
    assert KEY_31 not in repr(load_settings({"STREAM_PSEUDONYM_KEY": KEY_32}))


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"STREAM_WEB_PORT": "0", "STREAM_AB_B_SHARE": "7"})
    assert "STREAM_WEB_PORT" in str(caught.value)
    assert "STREAM_AB_B_SHARE" in str(caught.value)


def test_two_topics_with_one_name_are_refused() -> None:
    with pytest.raises(ConfigError, match="STREAM_TOPIC_ALERTS and STREAM_TOPIC_PREDICTIONS"):
        load_settings({"STREAM_TOPIC_ALERTS": "predictions"})


def test_unknown_stream_variable_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting STREAM_WEB_PROT"):
        load_settings({"STREAM_WEB_PROT": "8080"})


def test_other_variables_are_ignored() -> None:
    assert load_settings({"PATH": "/bin", "STREAMING": "x"}).web_port == 6066


def test_overrides_win_over_the_environment() -> None:
    assert load_settings({"STREAM_WEB_PORT": "7000"}, web_port=7001).web_port == 7001


def test_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_APP_ID", "from-env")
    assert load_settings().app_id == "from-env"
    monkeypatch.setenv("STREAM_PARTITONS", "3")
    with pytest.raises(ConfigError, match="STREAM_PARTITONS"):
        load_settings()


def test_settings_are_frozen() -> None:
    s = load_settings({})
    with pytest.raises(ValueError, match="frozen"):
        s.web_port = 1  # type: ignore[misc]


def test_topic_fields_cover_the_design_table() -> None:
    assert len(TOPIC_FIELDS) == 12
    assert "topic_prefix" not in TOPIC_FIELDS
    assert all(f in Settings.model_fields for f in TOPIC_FIELDS)


def test_env_name() -> None:
    assert env_name("topic_predictions") == "STREAM_TOPIC_PREDICTIONS"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STREAM_METRICS_WINDOW_SECONDS": "7"}, "STREAM_DRIFT_WINDOW_SECONDS"),
        ({"STREAM_AB_REPORT_INTERVAL_SECONDS": "90"}, "STREAM_AB_REPORT_INTERVAL_SECONDS"),
    ],
)
def test_windows_must_be_whole_multiples_of_the_metrics_window(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)
    assert load_settings({"STREAM_METRICS_WINDOW_SECONDS": "300"}).metrics_window_seconds == 300
