"""The worker's log format: Faust's text lines, or one JSON object per line.

With ``STREAM_LOG_FORMAT=json`` the app hands Faust a logging config
(:func:`json_logging_config`) that replaces the formatters of Faust's own handlers
("default" for a log file, "colored" for the console), so every record that reaches
the root logger, Faust's, aiokafka's and ours, is written by :class:`JsonLogFormatter`.
Faust keeps choosing the handler, the level (``-l``) and the file (``--logfile``).
Fields passed with ``extra=`` (agent, reason, count) become keys of the object; log
calls name sizes and reasons, never a request's content.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

__all__ = ["LogFormat", "JsonLogFormatter", "json_logging_config"]

LogFormat = Literal["text", "json"]


class JsonLogFormatter(JsonFormatter):
    """``{"time", "level", "logger", "message", ...extras}``, time in ISO 8601 UTC.

    Example:
        >>> record = logging.LogRecord("agents.driver", logging.WARNING, __file__, 1,
        ...                            "%s: skipped %d", ("intake", 2), None)
        >>> record.created = 1767225600.25
        >>> record.agent = "intake"
        >>> print(JsonLogFormatter().format(record))
        {"time": "2026-01-01T00:00:00.250+00:00", "level": "WARNING", "logger": "agents.driver", "message": "intake: skipped 2", "agent": "intake"}
    """  # noqa: E501

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def json_logging_config() -> dict[str, Any]:
    """The ``logging_config`` app setting for JSON lines: merged into Faust's own config,
    it replaces only the formatters its handlers use."""
    formatter = {"()": JsonLogFormatter}
    return {"merge": True, "formatters": {"default": formatter, "colored": formatter}}
