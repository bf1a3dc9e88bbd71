"""The local broker's configuration and the files it reads (server.properties, log4j2)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SASL_MECHANISMS",
    "SINGLE_NODE_SETTINGS",
    "BrokerConfig",
    "SaslSslListener",
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

# What the extra SASL_SSL listener offers; SCRAM users are written at storage format.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SCRAM_MECHANISMS = SASL_MECHANISMS[1:]
_LOGIN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_JVM_OPTS = ["-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true"]


@dataclass(frozen=True)
class SaslSslListener:
    """An extra SASL_SSL listener, next to PLAINTEXT, as a managed cluster offers.

    ``keystore`` is one PEM file: the broker's certificate (for 127.0.0.1) and its
    unencrypted PKCS#8 key. ``users`` (name, password) may log in with any of
    SASL_MECHANISMS; names and passwords are of [A-Za-z0-9._-] so that they need no
    quoting in the JAAS line and the storage tool's ``--add-scram`` argument.
    """

    port: int
    keystore: Path
    users: tuple[tuple[str, str], ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.users:
            raise ValueError("users must name at least one (name, password)")
        for name, password in self.users:
            if not (_LOGIN.match(name) and _LOGIN.match(password)):
                raise ValueError("user names and passwords must be 1-64 of [A-Za-z0-9._-]")


@dataclass(frozen=True)
class BrokerConfig:
    """Where the local broker lives and listens (``sasl_ssl``: an extra listener)."""

    home: Path
    port: int = 9092
    controller_port: int = 9093
    host: str = "127.0.0.1"
    sasl_ssl: SaslSslListener | None = None

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
    if config.sasl_ssl is not None:
        lines.update(_sasl_ssl_properties(config, config.sasl_ssl))
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def scram_arguments(config: BrokerConfig) -> list[str]:
    """The storage tool's ``--add-scram`` arguments: every user, every SCRAM mechanism."""
    if config.sasl_ssl is None:
        return []
    return [
        argument
        for mechanism in SCRAM_MECHANISMS
        for name, password in config.sasl_ssl.users
        for argument in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
    ]


def _sasl_ssl_properties(config: BrokerConfig, listener: SaslSslListener) -> dict[str, str]:
    plain_users = " ".join(f'user_{name}="{password}"' for name, password in listener.users)
    prefix = "listener.name.sasl_ssl"
    return {
        "listeners": (
            f"PLAINTEXT://{config.host}:{config.port},"
            f"SASL_SSL://{config.host}:{listener.port},"
            f"CONTROLLER://{config.host}:{config.controller_port}"
        ),
        "advertised.listeners": (
            f"PLAINTEXT://{config.host}:{config.port},SASL_SSL://{config.host}:{listener.port}"
        ),
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
        ),
        "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        f"{prefix}.ssl.keystore.type": "PEM",
        f"{prefix}.ssl.keystore.location": str(listener.keystore),
        f"{prefix}.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        ),
        **{
            f"{prefix}.{m.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
            for m in SCRAM_MECHANISMS
        },
    }


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
