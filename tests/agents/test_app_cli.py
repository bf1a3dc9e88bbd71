"""The Faust app and the stream-app command line, built without a broker."""

from __future__ import annotations

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from stream_app import cli
from stream_app.app import create_app
from stream_app.commands import GROUPS, load_group
from stream_app.config import load_settings
from stream_app.localkafka import KAFKA_VERSION
from stream_app.topics import internal_topic_names, topic_names


def test_the_app_declares_every_topic_with_the_configured_partitions() -> None:
    app = create_app(load_settings({}, app_id="unit", partitions=6, topic_prefix="p."))
    declared = {t.name: t for t in app._declared}
    names = {**topic_names(app.settings), **internal_topic_names(app.settings)}
    assert set(declared) == set(names.values())
    # Everything is co-partitioned with the requests except the one-partition registry log
    # and bundle store.
    partitions = {name: t.partitions for name, t in declared.items()}
    assert partitions.pop("p.model-registry") == 1
    assert partitions.pop("p.model-bundles") == 1
    assert set(partitions.values()) == {6}
    assert declared["p.model-registry"].config["retention.ms"] == "-1"
    assert declared["p.model-bundles"].config == {"cleanup.policy": "compact"}
    assert app.kafka_topics.alerts.get_topic_name() == "p.alerts"


def test_the_app_takes_faust_settings_from_settings() -> None:
    settings = load_settings(
        {
            "STREAM_APP_ID": "conf",
            "STREAM_BROKER_URL": "kafka://127.0.0.1:19092",
            "STREAM_WEB_PORT": "7070",
            "STREAM_PROCESSING_GUARANTEE": "exactly_once",
            "STREAM_REPLICATION_FACTOR": "3",
            "STREAM_SESSION_TIMEOUT_SECONDS": "6",
        }
    )
    conf = create_app(settings).conf
    assert conf.id == "conf"
    assert [str(url) for url in conf.broker] == ["kafka://127.0.0.1:19092"]
    assert conf.web_port == 7070
    assert conf.processing_guarantee.value == "exactly_once"
    assert conf.topic_replication_factor == 3
    # A dead worker's session expires after 6 s; survivors hear of it within a second.
    assert (conf.broker_session_timeout, conf.broker_heartbeat_interval) == (6.0, 1.0)


def test_project_groups_run_without_faust(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["kafka", "version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == KAFKA_VERSION


def test_every_registered_group_loads() -> None:
    for name in GROUPS:
        assert load_group(name).name == name


def test_bad_settings_stop_faust_commands_with_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAM_WEB_PORT", "70000")
    with pytest.raises(SystemExit) as done:
        cli.main(["worker"])
    assert done.value.code == 2
    assert "STREAM_WEB_PORT" in capsys.readouterr().err


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_faust_connects_as_every_other_client(protocol: str) -> None:
    login = {"kafka_sasl_username": "alice", "kafka_sasl_password": "pw"}
    settings = load_settings(
        {},
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism="SCRAM-SHA-256",
        **(login if protocol.startswith("SASL") else {}),
    )
    app = create_app(settings)
    faust_options = credentials_to_aiokafka_auth(app.conf.broker_credentials)
    # Faust passes ssl_context=None without TLS, as aiokafka's own default.
    assert {k: v for k, v in faust_options.items() if v is not None} == app.kafka_security
    assert app.kafka_security["security_protocol"] == protocol
