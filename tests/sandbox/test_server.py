"""The loopback server helpers: serve, stop mid-test, restart, serve from a thread."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from bot.sandbox import (
    LoopbackServer,
    serve,
    serve_in_thread,
    stop_server,
    stop_server_sync,
)


def hello_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    app = web.Application()
    app.router.add_get("/", hello)
    return app


async def test_serve_yields_loopback_url_and_serves(client: httpx.AsyncClient) -> None:
    """serve() binds 127.0.0.1 on an ephemeral port and answers there."""
    async with serve(hello_app()) as url:
        assert url.startswith("http://127.0.0.1:")
        assert int(url.rsplit(":", 1)[1]) > 0
        assert (await client.get(url + "/")).json() == {"hello": "world"}
    with pytest.raises(httpx.ConnectError):
        await client.get(url + "/")


async def test_stop_server_mid_test_refuses_connections(client: httpx.AsyncClient) -> None:
    """stop_server(url) makes the provider go down: connection refused, exit stays clean."""
    async with serve(hello_app()) as url:
        await stop_server(url)
        with pytest.raises(httpx.ConnectError):
            await client.get(url + "/")


async def test_loopback_server_restarts_on_the_same_port(client: httpx.AsyncClient) -> None:
    """A stopped LoopbackServer comes back on the port it had (the provider recovers)."""
    async with LoopbackServer(hello_app) as server:
        url = server.url
        await server.stop()
        assert not server.running
        with pytest.raises(httpx.ConnectError):
            await client.get(url + "/")
        assert await server.restart() == url
        assert (await client.get(url + "/")).status_code == 200


def test_serve_in_thread_for_sync_callers() -> None:
    """serve_in_thread() serves from a daemon thread; stop_server_sync() takes it down."""
    with serve_in_thread(hello_app()) as url:
        assert httpx.get(url + "/").json() == {"hello": "world"}
        stop_server_sync(url)
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/")
