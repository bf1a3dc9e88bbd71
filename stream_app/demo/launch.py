"""The demo's settings and its worker subprocess: start it, wait until it serves, stop it.

Each run gets its own app id and topic prefix, so a second run neither reads the outputs
of the first nor recovers its tables; everything else comes from the ``STREAM_``
environment, with a few demo defaults where the environment says nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

import stream_app
from stream_app.config import ENV_PREFIX, Settings, env_name, load_settings
from stream_app.errors import StreamAppError

__all__ = [
    "DEMO_DEFAULTS",
    "demo_settings",
    "free_port",
    "get_json",
    "port_free",
    "serving_versions",
    "start_worker",
    "stop_worker",
    "wait_serving",
    "worker_environment",
]

# Where the environment is silent. A day plays in about a minute, so one second of wall
# time is some 20 minutes of event time: the grace must cover how far one partition may
# run ahead of another (see play.in_flight_limit), and 5-minute metric windows keep the
# app's own metrics to 288 points a day.
DEMO_DEFAULTS: Mapping[str, Any] = {
    # Hourly windows: a demo hour holds about 250 requests, enough for an error rate or a
    # volume drop to mean something (a 5-minute window of about 20 made them pure noise).
    "metrics_window_seconds": 3600.0,
    "ab_report_interval_seconds": 3600.0,
    "window_grace_seconds": 1800.0,
}
_PROJECT_ROOT = Path(stream_app.__file__).resolve().parents[1]


def demo_settings(environ: Mapping[str, str] | None, run_id: str, **overrides: Any) -> Settings:
    """Settings for one demo run: the environment, DEMO_DEFAULTS, and per-run names.

    ``environ`` None reads the process environment. The app id is ``demo-<run_id>``, the
    topic prefix gets ``demo-<run_id>.`` appended and the data goes under ``<data_dir>/demo``;
    ``overrides`` (field values) win over all of it.

    Example:
        >>> s = demo_settings({"STREAM_WINDOW_GRACE_SECONDS": "900"}, "r1")
        >>> s.app_id, s.topic_prefix, s.data_dir.as_posix()
        ('demo-r1', 'demo-r1.', 'data/demo')
        >>> s.metrics_window_seconds, s.window_grace_seconds
        (3600.0, 900.0)
    """
    base = load_settings(environ)
    values = {k: v for k, v in DEMO_DEFAULTS.items() if k not in base.model_fields_set}
    values.update(
        app_id=f"demo-{run_id}",
        topic_prefix=f"{base.topic_prefix}demo-{run_id}.",
        data_dir=base.data_dir / "demo",
    )
    return load_settings(environ, **{**values, **overrides})


def worker_environment(settings: Settings, inherited: Mapping[str, str]) -> dict[str, str]:
    """``inherited`` without its STREAM_ variables, plus every field set in ``settings``.

    Example:
        >>> s = load_settings({}, app_id="w", metrics_window_seconds=300.0)
        >>> env = worker_environment(s, {"PATH": "/bin", "STREAM_APP_ID": "old"})
        >>> env["PATH"], env["STREAM_APP_ID"], env["STREAM_METRICS_WINDOW_SECONDS"]
        ('/bin', 'w', '300.0')
    """
    env = {k: v for k, v in inherited.items() if not k.startswith(ENV_PREFIX)}
    for field in sorted(settings.model_fields_set):
        value = getattr(settings, field)
        if value is None:
            continue
        env[env_name(field)] = (
            value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        )
    # The worker imports the agents package, which sits next to stream_app.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    """True when nothing accepts connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != 0


def start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m stream_app.cli worker`` with ``settings``, its output into ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - this interpreter, our own CLI
            [sys.executable, "-m", "stream_app.cli", "worker", "-l", "info"],
            env=worker_environment(settings, os.environ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C is the demo's to handle, not the worker's
        )


def get_json(url: str) -> tuple[int, dict[str, Any]] | None:
    """(status, JSON body) of a worker page, any status; None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our URL
            return int(response.status), dict(json.load(response))
    except urllib.error.HTTPError as error:
        return int(error.code), dict(json.load(error))
    except (OSError, ValueError):
        return None


def serving_versions(health: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(production, challenger) from a /health report.

    Example:
        >>> serving_versions({"model": {"production": "1.0.0", "challenger": None}})
        ('1.0.0', None)
    """
    model = health.get("model") or {}
    return model.get("production"), model.get("challenger")


def wait_serving(
    worker: subprocess.Popen[bytes],
    base_url: str,
    want: tuple[str, str | None],
    timeout: float,
) -> None:
    """Wait for /readyz 200 and /health serving ``want`` (production, challenger)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise StreamAppError(f"the worker exited with code {worker.returncode}")
        ready = get_json(base_url + "/readyz")
        health = get_json(base_url + "/health")
        if ready is not None and ready[0] == 200 and health is not None:
            if serving_versions(health[1]) == want:
                return
        time.sleep(0.5)
    raise StreamAppError(f"{base_url} did not serve {want} within {timeout:.0f} s")


def stop_worker(worker: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM (the worker leaves its group cleanly), then SIGKILL if it hangs."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
    return int(worker.returncode)
