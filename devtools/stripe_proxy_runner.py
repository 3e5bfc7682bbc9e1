"""Start localstripe and the Stripe proxy in subprocesses for tests and benchmarks.

    with running_localstripe() as upstream, running_stripe_proxy(upstream, seed=1) as proxy:
        proxy.configure(latency_ms=400, rate_limit=25)
        ...  # point STRIPE_API_BASE at proxy.url
        assert proxy.stats()["payment_intents_created"] == 3

Subprocesses rather than threads: the proxy's event loop must not share the GIL with the code
under test, or a busy test would look like a slow Stripe. Standard library only (plus the proxy
module), so importing this costs nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devtools.stripe_proxy import register_webhook_endpoint

ROOT = Path(__file__).resolve().parent.parent

__all__ = [
    "RunningProxy",
    "free_port",
    "register_webhook_endpoint",
    "running_localstripe",
    "running_stripe_proxy",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(method: str, url: str, payload: Any = None, timeout: float = 10.0) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback URLs we started
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


class RunningProxy:
    """A proxy subprocess: its base URL and its control endpoints as methods."""

    def __init__(self, url: str, upstream: str, process: subprocess.Popen) -> None:
        self.url = url
        self.upstream = upstream
        self.process = process

    @property
    def webhook_relay_url(self) -> str:
        return f"{self.url}/_proxy/webhook-relay"

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at run time (keys of ProxyConfig); returns the whole configuration."""
        try:
            return _call("POST", f"{self.url}/_proxy/config", changes)
        except urllib.error.HTTPError as error:
            raise ValueError(error.read().decode()) from None

    def config(self) -> dict[str, Any]:
        return _call("GET", f"{self.url}/_proxy/config")

    def stats(self) -> dict[str, Any]:
        return _call("GET", f"{self.url}/_proxy/stats")

    def reset(self, *, config: bool = False) -> None:
        """Zero the counters, forget idempotency keys; config=True also restores the settings
        the proxy was started with."""
        _call("POST", f"{self.url}/_proxy/reset", {"config": config})

    def flush_webhooks(self) -> int:
        return _call("POST", f"{self.url}/_proxy/webhooks/flush")["released"]

    def relay_webhooks(
        self,
        target: str,
        secret: str,
        *,
        endpoint_id: str = "stripe-proxy-relay",
        events: list[str] | None = None,
    ) -> None:
        """Have localstripe send its webhooks (signed with `secret`) through this proxy, which
        delivers them to `target` (the app's webhook URL) with the webhook_* faults."""
        self.configure(webhook_target=target)
        register_webhook_endpoint(
            self.upstream, self.webhook_relay_url, secret, endpoint_id=endpoint_id, events=events
        )


def _flags(options: dict[str, Any]) -> list[str]:
    flags = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            flags += [flag, "none" if value is None else str(value)]
    return flags


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_stripe_proxy(
    upstream: str,
    *,
    port: int = 0,
    startup_timeout: float = 20.0,
    access_log: bool = False,
    **options: Any,
) -> Iterator[RunningProxy]:
    """Run `python -m devtools.stripe_proxy` in front of `upstream` on 127.0.0.1 and yield it
    once it answers. `options` are ProxyConfig keys (latency_ms=400, seed=1, ...). Port 0 lets
    the proxy pick a free port itself (no race with other processes grabbing it)."""
    with tempfile.TemporaryDirectory(prefix="stripe-proxy-") as folder:
        ready = Path(folder) / "ready"
        log = Path(folder) / "stderr.log"
        command = [
            sys.executable,
            "-m",
            "devtools.stripe_proxy",
            "--upstream",
            upstream,
            "--port",
            str(port),
            "--ready-file",
            str(ready),
            *(["--access-log"] if access_log else []),
            *_flags(options),
        ]
        with log.open("wb") as stderr:
            process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr
            )
        try:
            url = _wait_for_ready_file(process, ready, log, startup_timeout)
            yield RunningProxy(url, upstream, process)
        finally:
            _stop(process)


def _wait_for_ready_file(process: subprocess.Popen, ready: Path, log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        # The proxy writes the file after it is listening; a partial read is impossible to
        # mistake for a URL because we check it answers.
        if ready.exists() and (url := ready.read_text().strip()):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{url}/_proxy/health", timeout=1).read()  # noqa: S310
                return url
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError("stripe proxy did not start: " + log.read_text()[-2000:])
        time.sleep(0.05)


@contextlib.contextmanager
def running_localstripe(*, port: int | None = None, startup_timeout: float = 20.0) -> Iterator[str]:
    """A localstripe of our own (devtools.localstripe_server: loopback, in memory); yields its
    base URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "devtools.localstripe_server", "--port", str(port), "--quiet"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                try:
                    urllib.request.urlopen(f"{url}/js.stripe.com/v3/", timeout=1).read()  # noqa: S310
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        stderr.seek(0)
                        raise RuntimeError(
                            "localstripe did not start: " + stderr.read().decode()[-2000:]
                        ) from None
                    time.sleep(0.1)
            yield url
        finally:
            _stop(process)
