"""A real Prometheus (the Debian package's binary) scraping a live FakeProduct, for tests.

Reusable from any test module — import the fixtures (module-scoped) into it or its conftest:

    from tests.monitoring.realprom import live_service, real_prometheus  # noqa: F401

or use LiveService / RealPrometheus / prometheus_scraping directly.
The binary is started directly (never the system service) on a free loopback port with a
temporary storage directory, scraping every second; teardown terminates it, then kills it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from bot.sandbox import FakeProduct, TrafficProfile, run_in_thread

T = TypeVar("T")
BINARY_ENV = "GOLIVE_PROMETHEUS_BINARY"
SCRAPE_SECONDS = 1.0


def prometheus_binary() -> str | None:
    """The prometheus executable: $GOLIVE_PROMETHEUS_BINARY, /usr/bin/prometheus, or on PATH."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        return configured
    if Path("/usr/bin/prometheus").exists():
        return "/usr/bin/prometheus"
    return shutil.which("prometheus")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1
) -> T:
    """Poll `condition` until it returns something truthy; TimeoutError naming `what` if not."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last problem on timeout
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"gave up after {timeout:g}s waiting for {what}{detail}")
        time.sleep(interval)


async def eventually(
    condition: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
) -> T:
    """Async twin of wait_until: poll an async condition until truthy, within a deadline."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = await condition()
            if value:
                return value
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"gave up after {timeout:g}s waiting for {what}{detail}")
        await asyncio.sleep(interval)


class LiveService:
    """A FakeProduct serving /metrics from a background thread, with traffic in real time."""

    def __init__(self, *, rate: float = 200.0, error_ratio: float = 0.001, p95: float = 0.12):
        """Traffic at `rate` req/s with that 5xx share and p95 (seconds); not started yet."""
        self.product = FakeProduct(traffic=TrafficProfile(rate, error_ratio, p95))
        self.product.traffic.tick = 0.1  # smooth counters between 1 s scrapes
        self.clean = TrafficProfile(rate, error_ratio, p95)
        self.url = ""
        self.changed_at: dict[str, float] = dict.fromkeys(("rate", "error_ratio", "p95"), 0.0)
        self._stack = contextlib.ExitStack()

    @asynccontextmanager
    async def _serving(self) -> AsyncIterator[str]:
        async with self.product:
            self.product.start_traffic()
            yield self.product.url

    def start(self) -> str:
        """Serve on a free loopback port and start the traffic generator; returns the URL."""
        self.url = self._stack.enter_context(run_in_thread(self._serving))
        self.changed_at = dict.fromkeys(self.changed_at, time.time())
        return self.url

    def stop(self) -> None:
        """Stop the traffic and the server."""
        self._stack.close()

    @property
    def target(self) -> str:
        """host:port, as a Prometheus scrape target."""
        return self.url.removeprefix("http://")

    def set_traffic(self, **changes: float) -> None:
        """Switch rate / error_ratio / p95 now (thread-safe: one attribute assignment)."""
        self.product.set_traffic(**changes)
        now = time.time()
        self.changed_at.update(dict.fromkeys(changes, now))

    def restore(self) -> None:
        """Back to the clean profile the service started with (only the fields that differ)."""
        profile = self.product.traffic.profile
        changed = {
            name: float(getattr(self.clean, name))
            for name in self.changed_at
            if getattr(profile, name) != getattr(self.clean, name)
        }
        if changed:
            self.set_traffic(**changed)

    def clean_since(self, *fields: str) -> float | None:
        """When `fields` (default all) last became clean; None while any of them is changed."""
        names = fields or tuple(self.changed_at)
        profile = self.product.traffic.profile
        if any(getattr(profile, n) != getattr(self.clean, n) for n in names):
            return None
        return max(self.changed_at[n] for n in names)


_CONFIG = """\
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: golive-product
    static_configs:
      - targets: [{targets}]
"""


class RealPrometheus:
    """/usr/bin/prometheus as a child process on a free loopback port, scraping `targets`."""

    def __init__(
        self,
        targets: list[str],
        *,
        binary: str | None = None,
        scrape_seconds: float = SCRAPE_SECONDS,
    ) -> None:
        """Prepare (do not start) a Prometheus scraping host:port `targets`."""
        found = binary or prometheus_binary()
        if found is None:
            raise FileNotFoundError("no prometheus binary (apt-get install -y prometheus)")
        self.binary = found
        self.targets = targets
        self.scrape_seconds = scrape_seconds
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.up_at = 0.0
        self._dir = Path(tempfile.mkdtemp(prefix="golive-prometheus-"))
        self.log_path = self._dir / "prometheus.log"

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        """The last lines Prometheus logged (for failure messages)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _spawn(self) -> subprocess.Popen[bytes]:
        config = self._dir / "prometheus.yml"
        config.write_text(
            _CONFIG.format(
                interval=f"{self.scrape_seconds:g}s",
                targets=", ".join(f'"{t}"' for t in self.targets),
            )
        )
        data = self._dir / "data"
        shutil.rmtree(data, ignore_errors=True)
        self.port = free_port()
        log = self.log_path.open("ab")
        try:
            return subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._dir,
            )
        finally:
            log.close()

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.process.returncode}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _targets_up(self) -> bool:
        answer = httpx.get(f"{self.url}/api/v1/targets", timeout=1.0).json()
        active: list[dict[str, Any]] = answer["data"]["activeTargets"]
        return len(active) == len(self.targets) and all(t["health"] == "up" for t in active)

    def start(self, *, timeout: float = 30.0) -> str:
        """Start the binary, wait for /-/ready and every target up; returns the base URL.

        Target discovery is throttled to 5 s inside Prometheus, so this takes about 6 s.
        """
        self.started_at = time.time()
        for attempt in range(3):  # another process may grab the free port before Prometheus
            self.process = self._spawn()
            try:
                wait_until(self._ready, timeout=timeout, what="Prometheus /-/ready")
                break
            except (RuntimeError, TimeoutError) as exc:
                self._terminate()
                if attempt == 2 or "address already in use" not in self.log_tail():
                    raise RuntimeError(f"{exc}; Prometheus log:\n{self.log_tail()}") from None
        wait_until(self._targets_up, timeout=timeout, what="the scrape targets to be up")
        self.up_at = time.time()
        return self.url

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate (then kill) the process and remove its storage."""
        self._terminate()
        shutil.rmtree(self._dir, ignore_errors=True)


@contextmanager
def prometheus_scraping(service: LiveService) -> Iterator[RealPrometheus]:
    """A started RealPrometheus scraping a started LiveService; stopped on exit."""
    prometheus = RealPrometheus([service.target])
    try:
        prometheus.start()
        yield prometheus
    finally:
        prometheus.stop()


@pytest.fixture(scope="module")
def live_service() -> Iterator[LiveService]:
    """A FakeProduct on loopback at 200 req/s, 0.1% 5xx, p95 120 ms, traffic in real time.

    0.1% rather than 1%: at 2,000 requests per 10 s window a 1% baseline gives a clean tick a
    ~0.6% chance of a (correct-by-the-maths) FAIL; at 0.1% it is ~2e-5, so tests do not flake.
    """
    service = LiveService(rate=200.0, error_ratio=0.001, p95=0.12)
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def real_prometheus(live_service: LiveService) -> Iterator[RealPrometheus]:
    """/usr/bin/prometheus on a free port scraping `live_service` every second (target up).

    A missing binary fails the test: these tests never skip (`.ci/run` installs the package).
    """
    if prometheus_binary() is None:
        pytest.fail("the prometheus binary is missing: apt-get install -y prometheus")
    with prometheus_scraping(live_service) as prometheus:
        yield prometheus
