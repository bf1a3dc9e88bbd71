"""TLS and SASL settings: what is refused at start, and what every aiokafka client gets."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from stream_app.config import load_settings
from stream_app.errors import ConfigError
from stream_app.kafka_auth import client_security, ssl_context
from stream_app.localkafka.files import (
    BrokerConfig,
    SaslSslListener,
    scram_arguments,
    server_properties,
)

LOGIN = {"STREAM_KAFKA_SASL_USERNAME": "alice", "STREAM_KAFKA_SASL_PASSWORD": "pw-secret"}


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    """A file that exists (the checks of paths run before any TLS is built)."""
    path = tmp_path / "file.pem"
    path.write_text("not a certificate\n")
    return path


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"STREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
         "STREAM_KAFKA_SASL_USERNAME and STREAM_KAFKA_SASL_PASSWORD must be set for SASL_SSL"),
        ({"STREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "STREAM_KAFKA_SASL_USERNAME": "a"},
         "STREAM_KAFKA_SASL_PASSWORD must be set for SASL_PLAINTEXT"),
        ({"STREAM_KAFKA_SECURITY_PROTOCOL": "SSL", **LOGIN},
         "STREAM_KAFKA_SASL_USERNAME is used only with STREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
        ({"STREAM_KAFKA_SASL_PASSWORD": "pw-secret"},
         "STREAM_KAFKA_SASL_PASSWORD is used only with STREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL or "
         "SASL_PLAINTEXT (it is PLAINTEXT)"),
        ({"STREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", **LOGIN,
          "STREAM_KAFKA_SSL_CAFILE": "{pem}"},
         "STREAM_KAFKA_SSL_CAFILE is used only with STREAM_KAFKA_SECURITY_PROTOCOL=SSL or "
         "SASL_SSL"),
        ({"STREAM_KAFKA_SECURITY_PROTOCOL": "SSL", "STREAM_KAFKA_SSL_KEYFILE": "{pem}"},
         "STREAM_KAFKA_SSL_KEYFILE is used only with STREAM_KAFKA_SSL_CERTFILE"),
        ({"STREAM_KAFKA_SECURITY_PROTOCOL": "SSL", "STREAM_KAFKA_SSL_CAFILE": "/no/such.pem"},
         "STREAM_KAFKA_SSL_CAFILE: no such file: /no/such.pem"),
        ({"STREAM_KAFKA_SECURITY_PROTOCOL": "TLS"},
         "STREAM_KAFKA_SECURITY_PROTOCOL: Input should be"),
        ({"STREAM_KAFKA_SASL_MECHANISM": "GSSAPI"},
         "STREAM_KAFKA_SASL_MECHANISM: Input should be"),
    ],
)  # fmt: skip
def test_unusable_combinations_are_refused_naming_the_variable(
    env: dict[str, str], says: str, pem: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({k: v.format(pem=pem) for k, v in env.items()})
    assert says in str(caught.value)
    assert "pw-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("protocol", "keys"),
    [
        ("PLAINTEXT", {"security_protocol"}),
        ("SSL", {"security_protocol", "ssl_context"}),
        ("SASL_PLAINTEXT", {"security_protocol", "sasl_mechanism", "sasl_plain_username",
                            "sasl_plain_password"}),
        ("SASL_SSL", {"security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username",
                      "sasl_plain_password"}),
    ],
)  # fmt: skip
def test_client_security_gives_each_protocol_its_options(protocol: str, keys: set[str]) -> None:
    login = LOGIN if protocol.startswith("SASL") else {}
    env = {
        "STREAM_KAFKA_SECURITY_PROTOCOL": protocol,
        "STREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    }
    options = client_security(load_settings({**env, **login}))
    assert set(options) == keys
    assert options["security_protocol"] == protocol
    if "sasl_mechanism" in keys:
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
            "alice",
            "pw-secret",
        )
    if "ssl_context" in keys:
        context = options["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_a_file_that_is_no_certificate_is_one_error_naming_the_variable(pem: Path) -> None:
    settings = load_settings(
        {"STREAM_KAFKA_SECURITY_PROTOCOL": "SSL", "STREAM_KAFKA_SSL_CAFILE": str(pem)}
    )
    with pytest.raises(ConfigError, match=r"^STREAM_KAFKA_SSL_CAFILE: not usable for TLS"):
        ssl_context(settings)


def test_the_password_is_kept_out_of_reprs() -> None:
    settings = load_settings({"STREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", **LOGIN})
    assert "pw-secret" not in repr(settings)


def test_the_local_broker_can_add_a_sasl_ssl_listener_with_scram_users(tmp_path: Path) -> None:
    listener = SaslSslListener(19094, tmp_path / "broker.pem", (("alice", "pw"), ("bob", "pw2")))
    config = BrokerConfig(home=tmp_path, port=19092, controller_port=19093, sasl_ssl=listener)
    props = dict(line.split("=", 1) for line in server_properties(config).splitlines())
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19094,CONTROLLER://127.0.0.1:19093"
    )
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19094"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert (
        'user_alice="pw" user_bob="pw2";' in props["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    )
    assert scram_arguments(config)[:4] == [
        "--add-scram", "SCRAM-SHA-256=[name=alice,password=pw]",
        "--add-scram", "SCRAM-SHA-256=[name=bob,password=pw2]",
    ]  # fmt: skip
    assert len(scram_arguments(config)) == 8
    assert scram_arguments(BrokerConfig(home=tmp_path)) == []
    assert "pw" not in repr(listener)


@pytest.mark.parametrize("users", [(), (("alice", 'pw"; x'),), (("al ice", "pw"),)])
def test_a_listener_refuses_logins_that_would_need_quoting(tmp_path: Path, users: tuple) -> None:
    with pytest.raises(ValueError, match=r"users must|user names and passwords must"):
        SaslSslListener(19094, tmp_path / "broker.pem", users)
