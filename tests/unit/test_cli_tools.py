"""tail, replay and the top-level help where no broker is needed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from stream_app import cli
from stream_app.commands.replay import replay
from stream_app.commands.tail import tail

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
        "kafka", "demo", "bundle", "registry", "gate", "tail", "send", "replay",
    ]  # fmt: skip
    assert "Send a .jsonl file's lines" in commands  # the project's send, not Faust's
