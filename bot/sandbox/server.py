"""Serve aiohttp applications on loopback: in the caller's loop or in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
SHUTDOWN_TIMEOUT = 0.5  # seconds in-flight requests (e.g. a "slow" fault) may take to finish
_RUNNING: dict[str, LoopbackServer] = {}


class LoopbackServer:
    """One aiohttp application on one port; can be stopped (connection refused) and restarted."""

    def __init__(
        self,
        app: web.Application | Callable[[], web.Application],
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        """Serve `app` (or a fresh app from a factory per start) on host:port (0 = ephemeral)."""
        self._app = app
        self.host = host
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL, `http://127.0.0.1:PORT` (the port is known once started)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the port accepts connections."""
        return self._runner is not None

    async def start(self) -> str:
        """Bind and serve; returns the base URL. A restart reuses the port chosen the first time."""
        if self._runner is not None:
            return self.url
        app = self._app if isinstance(self._app, web.Application) else self._app()
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = int(runner.addresses[0][1])
        self._runner = runner
        self.loop = asyncio.get_running_loop()
        _RUNNING[self.url] = self
        return self.url

    async def stop(self) -> None:
        """Close the port and every open connection; clients then get connection refused."""
        runner, self._runner = self._runner, None
        _RUNNING.pop(self.url, None)
        if runner is not None:
            await runner.cleanup()

    async def restart(self) -> str:
        """Stop (if running) and serve again on the same port."""
        await self.stop()
        return await self.start()

    async def __aenter__(self) -> LoopbackServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@asynccontextmanager
async def serve(app: web.Application, host: str = LOOPBACK, port: int = 0) -> AsyncIterator[str]:
    """Serve `app` on the running loop for the duration of the block; yields its base URL."""
    server = LoopbackServer(app, host, port)
    url = await server.start()
    try:
        yield url
    finally:
        await server.stop()


def find_server(url: str) -> LoopbackServer | None:
    """The running server behind a base URL (as yielded by `serve`), if any."""
    return _RUNNING.get(url.rstrip("/"))


async def stop_server(url: str) -> None:
    """Stop the server at `url` mid-test ("provider down"), whichever loop or thread runs it."""
    server = find_server(url)
    if server is None or server.loop is None:
        return
    if server.loop is asyncio.get_running_loop():
        await server.stop()
    else:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(server.stop(), server.loop))


def stop_server_sync(url: str, timeout: float = 10.0) -> None:
    """Stop a server that runs in another thread (see `serve_in_thread`) from synchronous code."""
    server = find_server(url)
    if server is None or server.loop is None:
        return
    asyncio.run_coroutine_threadsafe(server.stop(), server.loop).result(timeout)


@contextmanager
def run_in_thread(
    factory: Callable[[], AbstractAsyncContextManager[T]], timeout: float = 10.0
) -> Iterator[T]:
    """Enter an async context manager on a private loop in a daemon thread; yield its value."""
    ready = threading.Event()
    values: list[T] = []
    errors: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        try:
            async with factory() as value:
                values.append(value)
                ready.set()
                await stop.wait()
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="golive-sandbox", daemon=True)
    thread.start()
    if not ready.wait(timeout):
        raise TimeoutError("sandbox thread did not start in time")
    if errors:
        thread.join(timeout)
        raise RuntimeError("sandbox thread failed to start") from errors[0]
    try:
        yield values[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)


@contextmanager
def serve_in_thread(app: web.Application, host: str = LOOPBACK, port: int = 0) -> Iterator[str]:
    """Serve `app` from a daemon thread with its own loop, for sync callers; yields the base URL."""
    with run_in_thread(lambda: serve(app, host, port)) as url:
        yield url
