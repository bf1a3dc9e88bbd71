"""How every Kafka client connects: TLS and SASL from the settings, and a login check.

:func:`client_security` gives the keyword arguments every aiokafka client takes
(producer, consumer, ``AIOKafkaClient``, the admin client); :func:`faust_credentials`
the same for ``faust.App(broker_credentials=...)``. Build them once per process: the
TLS context reads the CA and key files. :func:`check_login` asks the broker once
before a worker starts, so a refused password or an untrusted certificate is one line
naming the setting instead of a traceback from inside Faust.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from stream_app.config import Settings, env_name
from stream_app.errors import ConfigError

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = ["check_login", "client_security", "faust_credentials", "ssl_context"]


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the settings (None without TLS); ConfigError naming a bad file.

    Example:
        >>> from stream_app.config import load_settings
        >>> ssl_context(load_settings({})) is None
        True
        >>> ssl_context(load_settings({}, kafka_security_protocol="SSL")).check_hostname
        True
    """
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    key_password = settings.kafka_ssl_key_password
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            password=None if key_password is None else key_password.get_secret_value(),
        )
    except (ssl.SSLError, OSError) as exc:
        named = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
        given = ", ".join(env_name(f) for f in named if getattr(settings, f) is not None)
        raise ConfigError(f"{given or 'the system CAs'}: not usable for TLS ({exc})") from None
    return context


def client_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client: protocol, SASL login, TLS context.

    Example:
        >>> from stream_app.config import load_settings
        >>> client_security(load_settings({}))
        {'security_protocol': 'PLAINTEXT'}
        >>> sorted(client_security(load_settings({}, kafka_security_protocol="SASL_PLAINTEXT",
        ...     kafka_sasl_username="alice", kafka_sasl_password="pw")))
        ['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol']
    """
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol in ("SASL_SSL", "SASL_PLAINTEXT"):
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = None if password is None else password.get_secret_value()
    return options


def faust_credentials(security: Mapping[str, Any]) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for the options of :func:`client_security`."""
    from faust.auth import SASLCredentials, SSLCredentials  # Faust only where it runs

    protocol = security["security_protocol"]
    if protocol == "SSL":
        return SSLCredentials(security["ssl_context"])
    if protocol in ("SASL_SSL", "SASL_PLAINTEXT"):
        # SASLCredentials is SASL_SSL with a context and SASL_PLAINTEXT without one.
        return SASLCredentials(
            username=security["sasl_plain_username"],
            password=security["sasl_plain_password"],
            ssl_context=security.get("ssl_context"),
            mechanism=security["sasl_mechanism"],
        )
    return None


async def check_login(
    settings: Settings, security: Mapping[str, Any], timeout: float = 10.0
) -> None:
    """Connect to the first broker that answers; ConfigError when it refuses the login
    or its certificate is not trusted. A broker that does not answer at all is not an
    error here: the worker's own start reports and retries that."""
    for server in settings.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout * 1000), **security),
                timeout,
            )
        except (SaslAuthenticationFailed, AuthenticationFailedError) as exc:
            raise ConfigError(_refused_login(settings, server, exc)) from None
        except UnsupportedSaslMechanismError:
            raise ConfigError(
                f"{env_name('kafka_sasl_mechanism')}={settings.kafka_sasl_mechanism}: the broker "
                f"at {server} does not offer this SASL mechanism"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise ConfigError(
                f"the broker at {server} has a certificate that is not trusted "
                f"({exc.verify_message}): set {env_name('kafka_ssl_cafile')} to the CA "
                "that signed it"
            ) from None
        except (OSError, TimeoutError, KafkaError):
            continue
        conn.close()
        return


def _refused_login(settings: Settings, server: str, exc: Exception) -> str:
    return (
        f"the broker at {server} refused the SASL login of "
        f"{env_name('kafka_sasl_username')}={settings.kafka_sasl_username} "
        f"({settings.kafka_sasl_mechanism}): check {env_name('kafka_sasl_password')} "
        f"and {env_name('kafka_sasl_mechanism')} ({exc.__class__.__name__})"
    )
