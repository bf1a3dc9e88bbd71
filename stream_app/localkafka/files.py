"""The local broker's configuration and the files it reads (server.properties, log4j2)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SINGLE_NODE_SETTINGS",
    "BrokerConfig",
    "jvm_options",
    "prepare_run_dir",
    "server_properties",
]

# Broker settings that make one node a complete cluster; docker-compose.yml sets the
# same values (a unit test compares them).
SINGLE_NODE_SETTINGS: dict[str, str] = {
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "10",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "10",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "num.partitions": "1",
    "group.initial.rebalance.delay.ms": "0",
    # The app declares its topics with the partition count of its settings; a client
    # that names a missing topic must get an error, not a 1-partition topic.
    "auto.create.topics.enable": "false",
}

_JVM_OPTS = ["-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true"]


@dataclass(frozen=True)
class BrokerConfig:
    """Where the local broker lives and listens."""

    home: Path
    port: int = 9092
    controller_port: int = 9093
    host: str = "127.0.0.1"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def run_dir(self) -> Path:
        # One directory per port, so brokers on other ports never share state.
        return self.home / f"run-{self.port}"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "broker.json"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "broker.out"

    @property
    def properties_file(self) -> Path:
        return self.run_dir / "server.properties"


def server_properties(config: BrokerConfig) -> str:
    """The broker's server.properties: KRaft, broker and controller in one process."""
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{config.host}:{config.controller_port}",
        "listeners": (
            f"PLAINTEXT://{config.host}:{config.port},"
            f"CONTROLLER://{config.host}:{config.controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://{config.host}:{config.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(config.run_dir / "data"),
        "num.network.threads": "2",
        "num.io.threads": "4",
        **SINGLE_NODE_SETTINGS,
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def jvm_options(config: BrokerConfig) -> list[str]:
    return [
        *_JVM_OPTS,
        f"-Dlog4j2.configurationFile={config.run_dir / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={config.run_dir / 'logs'}",
    ]


def prepare_run_dir(config: BrokerConfig) -> None:
    """A fresh data directory each start: local topics never outlive the broker."""
    shutil.rmtree(config.run_dir, ignore_errors=True)
    (config.run_dir / "logs").mkdir(parents=True)
    config.properties_file.write_text(server_properties(config))
    (config.run_dir / "log4j2.properties").write_text(
        "status = warn\n"
        "appender.file.type = File\n"
        "appender.file.name = file\n"
        f"appender.file.fileName = {config.run_dir / 'logs' / 'server.log'}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = file\n"
    )
