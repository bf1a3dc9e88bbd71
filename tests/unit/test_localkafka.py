"""The local broker's configuration and its one-line failures (no broker started here)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stream_app import localkafka
from stream_app.config import load_settings
from stream_app.errors import ConfigError, KafkaUnavailableError
from stream_app.localkafka import jars
from stream_app.localkafka.files import BrokerConfig, server_properties


def _properties(config: BrokerConfig) -> dict[str, str]:
    lines = server_properties(config).splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_server_properties_make_a_single_node_kraft_cluster(tmp_path: Path) -> None:
    props = _properties(BrokerConfig(home=tmp_path, port=19092, controller_port=19093))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == str(tmp_path / "run-19092" / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "min.insync.replicas",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_broker_config_follows_the_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "STREAM_BROKER_URL": "kafka://localhost:29092",
            "STREAM_LOCAL_KAFKA_CONTROLLER_PORT": "29093",
            "STREAM_LOCAL_KAFKA_DIR": str(tmp_path),
        }
    )
    config = localkafka.broker_config(settings)
    assert (config.home, config.port, config.controller_port) == (tmp_path, 29092, 29093)
    assert config.bootstrap == "127.0.0.1:29092"


@pytest.mark.parametrize("url", ["kafka://kafka:9092", "kafka://127.0.0.1:1;kafka://127.0.0.1:2"])
def test_the_local_broker_runs_on_loopback_only(url: str) -> None:
    with pytest.raises(ConfigError, match="STREAM_BROKER_URL"):
        localkafka.broker_config(load_settings({"STREAM_BROKER_URL": url}))


def test_default_home_is_the_checkout(tmp_path: Path) -> None:
    assert localkafka.default_home() == Path(__file__).resolve().parents[2] / ".kafka"


def test_pom_pins_kafka_and_the_log4j_binding() -> None:
    pom = jars.pom_xml()
    assert f"<artifactId>kafka_{jars.SCALA_VERSION}</artifactId>" in pom
    assert f"<version>{localkafka.KAFKA_VERSION}</version>" in pom
    assert f"<version>{jars.LOG4J_VERSION}</version>" in pom
    assert "log4j-slf4j-impl" in pom


def _fake_tool(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_no_java_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaUnavailableError, match=r"^java not found on PATH: .*Java 17\+"):
        jars.find_java()


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_tool(tmp_path, "java", "echo 'openjdk version \"11.0.2\" 2019-01-15' >&2")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaUnavailableError, match="is Java 11: .*needs Java 17"):
        jars.find_java()


def test_no_mvn_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaUnavailableError, match=r"^mvn not found on PATH"):
        jars.ensure_jars(tmp_path / "home")


def test_failed_download_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_tool(tmp_path, "mvn", "echo '[ERROR] Could not resolve dependencies'; exit 1")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaUnavailableError, match="Could not resolve dependencies"):
        jars.ensure_jars(tmp_path / "home")
    assert not (tmp_path / "home" / f"kafka-{localkafka.KAFKA_VERSION}" / ".complete").exists()


def test_cached_jars_need_no_maven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_tool(
        tmp_path,
        "mvn",
        f'touch {tmp_path}/mvn-ran; for a; do case "$a" in '
        '-DoutputDirectory=*) mkdir -p "${a#-DoutputDirectory=}";; esac; done',
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.defpath}")
    home = tmp_path / "home"
    libs = jars.ensure_jars(home)
    assert (tmp_path / "mvn-ran").exists()
    os.remove(tmp_path / "mvn-ran")
    assert jars.ensure_jars(home) == libs
    assert not (tmp_path / "mvn-ran").exists()


def test_describe_tells_ours_from_theirs() -> None:
    ours = localkafka.BrokerInfo("127.0.0.1:9092", "4.4.0", 42, started=True)
    assert ours.describe() == "Apache Kafka 4.4.0 on 127.0.0.1:9092, pid 42 (started now)"
    theirs = localkafka.BrokerInfo("127.0.0.1:9092", None, None, started=False)
    assert "not started by stream-app" in theirs.describe()
