"""send, tail and replay against the real broker, in process (CliRunner).

No worker runs: each test creates the topics it needs as a worker would and produces
the records it reads.
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from schemas.codec import encode
from schemas.events import FieldError, Rejection
from stream_app.commands.replay import replay
from stream_app.commands.send import send
from stream_app.commands.tail import tail
from stream_app.config import Settings, load_settings
from stream_app.kafka_admin import TopicRequest, ensure_topics
from stream_app.localkafka import BrokerInfo
from stream_app.topics import SPECS, replayed_topic_name, topic_config, topic_names
from tests.utils.kafka_io import produce, read_topics, read_until
from tests.utils.worker import REPO_ROOT, worker_env

pytestmark = pytest.mark.integration


def request_line(i: int, client: str) -> str:
    return json.dumps({
        "request_id": f"r{i}", "client_id": client, "user_id": f"USR{i}", "age": 30 + i,
        "purchase_history": [9.5], "category_preference": "home",
        "session_duration_minutes": 3, "email": f"u{i}@example.com",
    })  # fmt: skip


def setup(broker: BrokerInfo, run_id: str) -> tuple[dict[str, str], Settings]:
    """This test's settings (as env and as Settings) and the topics a worker would make."""
    env = {"STREAM_BROKER_URL": f"kafka://{broker.bootstrap}", "STREAM_TOPIC_PREFIX": f"{run_id}."}
    settings = load_settings(env)
    names = topic_names(settings)
    used = [s for s in SPECS if s.attr in ("prediction_requests", "requests_invalid", "outcomes")]
    wanted = [
        TopicRequest(names[s.attr], settings.partitions, 1, topic_config(s, settings)) for s in used
    ]
    asyncio.run(ensure_topics(settings.bootstrap_servers, wanted))
    return env, settings


def invoke(command: object, args: list[str], env: dict[str, str]) -> Result:
    done = CliRunner().invoke(command, args, env=env)  # type: ignore[arg-type]
    assert done.exception is None or isinstance(done.exception, SystemExit), done.output
    return done


def test_send_then_tail_sees_exactly_the_lines(
    kafka_broker: BrokerInfo, run_id: str, tmp_path: Path
) -> None:
    env, settings = setup(kafka_broker, run_id)
    lines = [request_line(1, "c1"), "not json", "", request_line(2, "c2"), "[1, 2]",
             request_line(3, "c1")]  # fmt: skip
    (tmp_path / "requests.jsonl").write_text("\n".join(lines) + "\n")
    done = invoke(send, [str(tmp_path / "requests.jsonl")], env)
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        "sent 3 lines to prediction-requests",
        "skipped 2 lines not a JSON object: 2, 5",
    ]
    assert "not json" not in done.output

    done = invoke(tail, ["prediction-requests", "--from-beginning", "--json"], env)
    assert done.exit_code == 0, done.output
    shown = [json.loads(line) for line in done.output.splitlines()]
    assert sorted((m["key"], m["value"]["request_id"]) for m in shown) == [
        ("c1", "r1"), ("c1", "r3"), ("c2", "r2"),
    ]  # fmt: skip
    assert {m["value"]["email"] for m in shown} == {"u1@example.com", "u2@example.com",
                                                      "u3@example.com"}  # fmt: skip
    # What the topic holds is the bytes of each line, as written.
    name = topic_names(settings)["prediction_requests"]
    records = asyncio.run(read_until(kafka_broker.bootstrap, [name], lambda r: len(r[name]) >= 3))
    assert sorted(r.value.decode() for r in records[name]) == sorted(lines[i] for i in (0, 3, 5))

    done = invoke(tail, ["prediction-requests", "--from-beginning", "--key", "c1"], env)
    tails = sorted(line.split(" ", 2)[2] for line in done.output.splitlines())
    assert tails == [
        "key=c1 request_id=r1 client_id=c1 (9 fields)",
        "key=c1 request_id=r3 client_id=c1 (9 fields)",
    ]
    assert "example.com" not in done.output  # a line never shows a request's fields

    done = invoke(tail, ["prediction-requests", "--lines", "1"], env)
    # The last message of each partition that has any: r3 is after r1 on c1's partition.
    assert sorted(line.split("request_id=")[1].split()[0] for line in done.output.splitlines()) \
        == ["r2", "r3"]  # fmt: skip


def test_send_outcomes_keys_them_by_request_id(
    kafka_broker: BrokerInfo, run_id: str, tmp_path: Path
) -> None:
    env, _ = setup(kafka_broker, run_id)
    outcome = {"request_id": "r7", "converted": 1, "timestamp": "2026-01-01T00:00:00Z"}
    (tmp_path / "outcomes.jsonl").write_text(json.dumps(outcome) + "\n")
    assert invoke(send, [str(tmp_path / "outcomes.jsonl"), "--topic", "outcomes"], env).output \
        == "sent 1 line to outcomes\n"  # fmt: skip
    done = invoke(tail, ["outcomes", "--from-beginning"], env)
    assert done.output.split(" ", 2)[2] == (
        "key=r7 request_id=r7 converted=1 timestamp=2026-01-01T00:00:00Z\n"
    )


def dead_letters() -> list[tuple[bytes | None, bytes]]:
    """Four refused messages: two schema requests, a malformed one, a malformed outcome."""
    error = (FieldError(loc="age", message="must be >= 13", type="greater_than_equal"),)
    fixed = request_line(1, "c1").encode()
    return [
        (b"c1", encode(Rejection(reason="schema", errors=error, raw=fixed, request_id="r1",
                                 client_id="c1"))),
        (b"c2", encode(Rejection(reason="schema", errors=error, raw=request_line(2, "c2").encode(),
                                 request_id="r2", client_id="c2"))),
        (None, encode(Rejection(reason="malformed_json", raw=b'{"request_id": "r3", oops'))),
        (None, encode(Rejection(reason="schema", raw=b'{"request_id": "o1", "converted": 7}',
                                request_id="o1"))),
    ]  # fmt: skip


def test_replay_sends_each_dead_letter_once_and_dry_run_sends_nothing(
    kafka_broker: BrokerInfo, run_id: str
) -> None:
    env, settings = setup(kafka_broker, run_id)
    names = topic_names(settings)
    invalid, requests = names["requests_invalid"], names["prediction_requests"]
    asyncio.run(produce(kafka_broker.bootstrap, invalid, dead_letters()))
    since = ["--since", "1h"]

    dry = invoke(replay, ["requests-invalid", "--reason", "schema", *since, "--dry-run"], env)
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        "would send 2 to prediction-requests (dry run: nothing sent)",
        "not sent 2: another reason 1, outcomes (never sent as requests) 1",
    ]
    first = invoke(replay, ["requests-invalid", "--reason", "schema", *since], env)
    assert first.output.splitlines() == [
        "sent 2 to prediction-requests",
        "not sent 2: another reason 1, outcomes (never sent as requests) 1",
    ]
    second = invoke(replay, ["requests-invalid", "--reason", "schema", *since], env)
    assert second.output.splitlines() == [
        "sent 0 to prediction-requests",
        "not sent 4: already replayed 2, another reason 1, outcomes (never sent as requests) 1",
    ]
    other = invoke(replay, ["requests-invalid", "--reason", "malformed_json", *since], env)
    assert other.output.splitlines() == [
        "sent 1 to prediction-requests",
        "not sent 3: another reason 3",
    ]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    none = invoke(replay, ["requests-invalid", "--reason", "too_large", "--since", later], env)
    assert none.output.splitlines() == [
        "sent 0 to prediction-requests",
        "not sent 4: before --since 4",
    ]

    # The dry run sent nothing and the second run sent nothing: exactly three requests,
    # the original bytes, keyed by client_id where the dead letter named one.
    read = asyncio.run(
        read_topics(kafka_broker.bootstrap, [requests, replayed_topic_name(settings)])
    )
    sent = sorted((r.value, r.key) for r in read[requests])
    assert sent == sorted([
        (b'{"request_id": "r3", oops', None),
        (request_line(1, "c1").encode(), b"c1"),
        (request_line(2, "c2").encode(), b"c2"),
    ])  # fmt: skip
    markers = read[replayed_topic_name(settings)]
    assert len(markers) == 3
    assert all(b"example.com" not in m.value and b"USR" not in m.value for m in markers)


def test_tail_follow_prints_messages_as_they_arrive(kafka_broker: BrokerInfo, run_id: str) -> None:
    env, settings = setup(kafka_broker, run_id)
    outcomes = topic_names(settings)["outcomes"]

    def outcome(i: int) -> tuple[bytes, bytes]:
        value = {"request_id": f"r{i}", "converted": i % 2, "timestamp": "2026-01-01T00:00:00Z"}
        return f"r{i}".encode(), json.dumps(value).encode()

    asyncio.run(produce(kafka_broker.bootstrap, outcomes, [outcome(1)]))
    command = [sys.executable, "-m", "stream_app.cli", "tail", "outcomes", "--follow", "--json"]
    tail_process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
        command, env=worker_env(env), cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in tail_process.stdout or ()]
    )
    reader.start()
    try:
        # The guard timeouts only stop a hang: each line is awaited, not a duration.
        assert json.loads(lines.get(timeout=60))["key"] == "r1"  # it is reading
        asyncio.run(produce(kafka_broker.bootstrap, outcomes, [outcome(2), outcome(3)]))
        later = [json.loads(lines.get(timeout=60)) for _ in range(2)]
        assert sorted(m["value"]["request_id"] for m in later) == ["r2", "r3"]
        assert tail_process.poll() is None  # still following
    finally:
        tail_process.terminate()
        tail_process.wait(timeout=30)
        reader.join(timeout=30)
