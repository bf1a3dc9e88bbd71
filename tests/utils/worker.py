"""Run a real ``stream-app worker`` as a subprocess for integration tests.

The worker gets its settings from ``STREAM_*`` variables, like in production; the
helper waits until /livez answers and the wanted topics' partitions are assigned,
and stops it with SIGTERM (SIGKILL only if it hangs).
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["REPO_ROOT", "WorkerProcess", "free_port", "worker_env"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its STREAM_ variables, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


@dataclass
class WorkerProcess:
    """One worker subprocess: ``python -m <module> worker -l info`` with ``settings``.

    ``module`` is ``stream_app.cli`` (the ``stream-app`` console script) unless a test
    runs its own app module that ends in ``stream_app.cli.run_faust``; ``command``, when
    given, is run instead (a script that ends in the worker, as the compose stack's).
    """

    settings: Mapping[str, str]
    log_path: Path
    module: str = "stream_app.cli"
    command: Sequence[str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.settings['STREAM_WEB_PORT']}"

    def start(self, *, wait_topics: Mapping[str, int] | None = None, timeout: float = 90) -> None:
        """Start and wait until /livez answers and ``wait_topics`` (name -> partitions) are
        assigned to this worker; a model need not be loaded (see :meth:`wait_ready`)."""
        command = self.command or [sys.executable, "-m", self.module, "worker", "-l", "info"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, cwd=REPO_ROOT, env=worker_env(self.settings),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        self._wait(lambda: self.get("/livez") is not None, deadline, "/livez to answer")
        wanted = dict(wait_topics or {})
        self._wait(lambda: self._assigned(wanted), deadline, f"partitions of {sorted(wanted)}")

    def get(self, path: str) -> dict[str, Any] | None:
        """GET a JSON page of the worker (any HTTP status); None when nothing answers."""
        try:
            with urllib.request.urlopen(self.web_url + path, timeout=5) as response:  # noqa: S310
                return dict(json.load(response))
        except urllib.error.HTTPError as error:
            return dict(json.load(error))
        except OSError:
            return None

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, wait, then SIGKILL; return the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self, timeout: float = 120) -> dict[str, Any]:
        """Wait until /readyz says ready (a verified model loaded too); return its body."""
        deadline = time.monotonic() + timeout
        self._wait(lambda: (self.get("/readyz") or {}).get("ready") is True, deadline, "/readyz")
        return self.get("/readyz") or {}

    def wait_for(self, path: str, check: Any, what: str, timeout: float = 120) -> dict[str, Any]:
        """Poll the JSON page ``path`` until ``check(body)`` holds; return that body."""
        found: list[dict[str, Any]] = []

        def ready() -> bool:
            body = self.get(path)
            if body is not None and check(body):
                found.append(body)
                return True
            return False

        self._wait(ready, time.monotonic() + timeout, what)
        return found[0]

    def _assigned(self, wanted: Mapping[str, int]) -> bool:
        # Not "healthy": a worker without a model is unhealthy by design, yet running.
        report = self.get("/health")
        if report is None or not report["app"]["running"] or report["app"]["rebalancing"]:
            return False
        if not report["kafka"]["reachable"]:
            return False
        assigned = report["kafka"]["assigned_partitions"]
        return all(assigned.get(topic) == n for topic, n in wanted.items())

    def _wait(self, ready: Any, deadline: float, what: str) -> None:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited ({self.process.returncode}):\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.25)
        raise TimeoutError(f"worker: gave up waiting for {what}:\n{self.log_tail()}")
