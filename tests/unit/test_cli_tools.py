"""tail, replay and the top-level help where no broker is needed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from schemas.codec import encode
from schemas.events import Rejection
from stream_app import cli
from stream_app.commands.replay import replay
from stream_app.commands.replay_plan import judge
from stream_app.commands.tail import tail
from stream_app.commands.topic_view import decode_for_topic, message_line

# No broker listens here: a command that reached for Kafka would fail, not pass.
NO_BROKER = {"STREAM_BROKER_URL": "kafka://127.0.0.1:1"}


def test_tail_names_the_valid_topics_for_an_unknown_one() -> None:
    done = CliRunner().invoke(tail, ["prediction"], env=NO_BROKER)
    assert done.exit_code == 2
    assert done.output.strip() == (
        "Error: unknown topic 'prediction'; one of: prediction-requests, requests-invalid, "
        "requests-throttled, predictions, prediction-logs, outcomes, service-metrics, "
        "drift-reports, ab-reports, alerts, model-registry, model-bundles"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reason", "schema", "--since", "last week"], "Invalid value for --since"),
        (["--reason", "unknown_outcome", "--since", "1h"], "Invalid value for '--reason'"),
    ],
)
def test_replay_refuses_a_bad_since_or_an_outcome_reason(args: list[str], message: str) -> None:
    done = CliRunner().invoke(replay, ["requests-invalid", *args], env=NO_BROKER)
    assert done.exit_code == 2
    assert message in done.output


def test_top_level_help_describes_stream_app_first_and_keeps_faust_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STREAM_BROKER_URL", raising=False)
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert description.split()[:5] == ["stream-app", "serves", "a", "scikit-learn", "model"]
    assert "Welcome" not in out and "faust-streaming.github.io" not in out
    commands = out.split("\nCommands:\n", 1)[1]
    listed = [line.split()[0] for line in commands.splitlines() if line.strip()]
    for name in ("gate", "tail", "send", "replay", "registry", "worker", "agents", "tables"):
        assert name in listed
    ours = out.split("The project's commands", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in ours.splitlines()[1:]] == [
        "kafka", "demo", "bundle", "registry", "schemas", "gate", "tail", "send", "replay",
    ]  # fmt: skip
    assert "Send a .jsonl file's lines" in commands  # the project's send, not Faust's


def dead_letter(reason: str, raw: bytes, client_id: str | None = None) -> bytes:
    return encode(Rejection(reason=reason, raw=raw, client_id=client_id))  # type: ignore[arg-type]


OUTCOME_AHEAD = b'{"request_id": "o1", "converted": 1, "timestamp": "2099-01-01T00:00:00Z"}'


@pytest.mark.parametrize(
    ("value", "reason", "stamp", "fate"),
    [
        (dead_letter("schema", b'{"client_id": "c1"}', "c1"), "schema", 2000, "sent"),
        (dead_letter("malformed_json", b"{oops"), "malformed_json", 2000, "sent"),
        # An outcome refused for its time shares a request reason: its bytes tell it apart.
        (dead_letter("timestamp_ahead", OUTCOME_AHEAD), "timestamp_ahead", 2000, "outcome"),
        (dead_letter("schema", b'{"request_id": "o2", "converted": 9}'), "schema", 2000, "outcome"),
        (dead_letter("schema", b'{"converted": 1}', "c1"), "schema", 2000, "sent"),
        (dead_letter("schema", b"{}"), "schema", 999, "before_since"),
        (dead_letter("too_large", b"x"), "schema", 2000, "other_reason"),
        (b"not a rejection", "schema", 2000, "unreadable"),
    ],
)
def test_replay_judges_each_dead_letter(value: bytes, reason: str, stamp: int, fate: str) -> None:
    assert judge(value, stamp, "0:1:2", reason=reason, since_ms=1000, replayed=set())[0] == fate


def test_a_tail_line_shows_no_request_field_and_no_dead_letter_bytes() -> None:
    request = json.dumps({
        "request_id": "r1", "client_id": "c1", "user_id": "USR1", "age": 30,
        "purchase_history": [9.5], "category_preference": "home",
        "session_duration_minutes": 3, "email": "jo@example.com", "phone": "+44 20 7946 0958",
    }).encode()  # fmt: skip
    for topic, value in (
        ("prediction-requests", request),
        ("requests-invalid", dead_letter("schema", request, "c1")),
    ):
        line = message_line(
            topic, partition=0, offset=3, timestamp_ms=0, key=b"c1",
            data=decode_for_topic(topic, value),
        )  # fmt: skip
        for personal in ("jo@example.com", "7946", "USR1", "home", "9.5"):
            assert personal not in line, (topic, line)
    assert message_line(
        "requests-invalid", partition=0, offset=3, timestamp_ms=0, key=b"c1",
        data=decode_for_topic("requests-invalid", dead_letter("schema", request, "c1")),
    ) == f"1970-01-01T00:00:00Z 0:3 key=c1 reason=schema request_id=- client_id=c1 errors=- " \
        f"raw={len(request)} bytes"  # fmt: skip


def test_a_key_with_a_newline_stays_on_one_line() -> None:
    line = message_line("alerts", partition=0, offset=0, timestamp_ms=0, key=b"a\nb", data={})
    assert line == "1970-01-01T00:00:00Z 0:0 key=a\\nb "
