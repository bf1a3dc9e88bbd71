"""STREAM_LOG_FORMAT=json: the formatter, and Faust's logging setup writing through it."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mode.utils.logging import setup_logging

from stream_app.logs import JsonLogFormatter, json_logging_config


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    out = logging.LogRecord("agents.score", logging.ERROR, __file__, 7, message, args, None)
    out.created = 1767225600.0
    out.__dict__.update(extra)
    return out


def test_a_record_is_one_json_line_with_its_extras() -> None:
    line = JsonLogFormatter().format(
        record(
            "agent %s: a batch failed (%s)\nsecond line",
            "intake",
            "KafkaTimeoutError",
            agent="intake",
            count=12,
        )  # fmt: skip
    )
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2026-01-01T00:00:00.000+00:00",
        "level": "ERROR",
        "logger": "agents.score",
        "message": "agent intake: a batch failed (KafkaTimeoutError)\nsecond line",
        "agent": "intake",
        "count": 12,
    }


def test_an_exception_is_a_field_of_the_same_object() -> None:
    try:
        raise TimeoutError("no acknowledgement")
    except TimeoutError:
        failed = record("send failed")
        failed.exc_info = sys.exc_info()
    body = json.loads(JsonLogFormatter().format(failed))
    assert body["message"] == "send failed"
    assert "TimeoutError: no acknowledgement" in body["exc_info"]


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logging")
def test_fausts_logging_setup_with_the_apps_config_writes_json_from_every_logger(
    tmp_path: Path,
) -> None:
    logfile = tmp_path / "worker.log"
    # What a Faust worker calls with the app's logging_config and `--logfile`.
    setup_logging(loglevel="info", logfile=str(logfile), logging_config=json_logging_config())
    logging.getLogger("faust.worker").info("[^Worker]: Ready")
    logging.getLogger("aiokafka.consumer").warning("Heartbeat failed for group %s", "g")
    logging.getLogger("agents.driver").debug("below the level: not written")
    logging.getLogger("agents.driver").warning("skipped", extra={"agent": "intake"})
    lines = [json.loads(line) for line in logfile.read_text().splitlines()]
    assert [(x["logger"], x["level"], x["message"]) for x in lines] == [
        ("faust.worker", "INFO", "[^Worker]: Ready"),
        ("aiokafka.consumer", "WARNING", "Heartbeat failed for group g"),
        ("agents.driver", "WARNING", "skipped"),
    ]
    assert lines[2]["agent"] == "intake"
    assert all(x["time"].endswith("+00:00") for x in lines)
