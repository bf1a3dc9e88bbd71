"""tail and replay where no broker is needed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

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
