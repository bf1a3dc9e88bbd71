"""A real single-node Apache Kafka on this machine, without Docker.

The broker jars come from Maven Central (cached in ``.kafka/``), KRaft storage is
formatted fresh on every start, and "ready" means a metadata request is answered.
Use it from the shell (``python -m stream_app.localkafka up|down|status``, or
``stream-app kafka ...``) or from Python (:func:`running_broker`).
"""

from __future__ import annotations

from pathlib import Path

from stream_app.config import Settings, env_name
from stream_app.errors import ConfigError
from stream_app.localkafka.broker import BrokerInfo, running_broker, start, status, stop
from stream_app.localkafka.files import SINGLE_NODE_SETTINGS, BrokerConfig, SaslSslListener
from stream_app.localkafka.jars import KAFKA_VERSION

__all__ = [
    "KAFKA_VERSION",
    "SINGLE_NODE_SETTINGS",
    "BrokerConfig",
    "BrokerInfo",
    "SaslSslListener",
    "broker_config",
    "default_home",
    "running_broker",
    "start",
    "status",
    "stop",
]

_LOOPBACK = frozenset({"127.0.0.1", "localhost"})


def default_home() -> Path:
    """``.kafka/`` at the project root for a source checkout, else in the working directory."""
    root = Path(__file__).resolve().parents[2]
    return (root if (root / "pyproject.toml").exists() else Path.cwd()) / ".kafka"


def broker_config(settings: Settings) -> BrokerConfig:
    """The local broker the settings point at (``STREAM_BROKER_URL`` must be on loopback)."""
    if settings.broker_host not in _LOOPBACK or len(settings.bootstrap_servers) != 1:
        raise ConfigError(
            f"{env_name('broker_url')}={settings.broker_url}: the local broker runs on "
            "127.0.0.1 only (one broker, e.g. kafka://127.0.0.1:9092)"
        )
    return BrokerConfig(
        home=settings.local_kafka_dir or default_home(),
        port=settings.broker_port,
        controller_port=settings.local_kafka_controller_port,
    )
