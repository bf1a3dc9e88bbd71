"""``stream-app demo``: the local Kafka and a worker in the foreground, until Ctrl-C."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request

import click

from stream_app import localkafka
from stream_app.config import Settings, load_settings
from stream_app.errors import StreamAppError

__all__ = ["demo"]

_READY_TIMEOUT = 120.0


@click.group(invoke_without_command=True)
def demo() -> None:
    """Start the local Kafka (left running) and a worker; print where /health is."""
    try:
        settings = load_settings()
        broker = localkafka.start(localkafka.broker_config(settings))
    except StreamAppError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"kafka: {broker.describe()}")
    base = f"http://{settings.web_host}:{settings.web_port}"
    worker = subprocess.Popen(  # noqa: S603 - this interpreter, our own CLI
        [sys.executable, "-m", "stream_app.cli", "worker", "-l", "info"]
    )
    try:
        _wait_healthy(worker, base)
        click.echo(f"\nready: {base}/health (report) and {base}/livez; Ctrl-C stops the worker\n")
        code = worker.wait()
    except KeyboardInterrupt:
        code = _stop(worker)
    finally:
        if worker.poll() is None:
            _stop(worker)
    click.echo(f"\nworker stopped. {_kafka_hint(settings)}")
    sys.exit(0 if code in (0, -2, 130) else code)


def _wait_healthy(worker: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise click.ClickException(f"the worker exited with code {worker.returncode}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=3):  # noqa: S310 - our URL
                return
        except urllib.error.HTTPError:
            # 503 is an answer too: a worker without a promoted model is unhealthy by design.
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise click.ClickException(f"{base}/health did not answer in {_READY_TIMEOUT:.0f} s")


def _stop(worker: subprocess.Popen[bytes]) -> int:
    # Ctrl-C reached the worker too (same terminal); give it time to leave its group.
    try:
        return worker.wait(30)
    except subprocess.TimeoutExpired:
        worker.terminate()
        return worker.wait(10)
    except KeyboardInterrupt:
        worker.kill()
        return worker.wait()


def _kafka_hint(settings: Settings) -> str:
    return f"Kafka is still up on {settings.bootstrap_servers[0]}: `make kafka-down` stops it."
