"""``dxtrack ui``: the dashboard on 127.0.0.1, served with aiohttp.

A watcher looks at the source's files twice a second (a bucket every ten seconds); when they
changed, it queries again and tells every open page through server-sent events, and the page
fetches the new snapshot. The snapshot is computed before the first page is served, and served
from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from dxtrack.cli.store import Store
from dxtrack.dashboard.page import CONTENT_TYPES, static
from dxtrack.dashboard.snapshot import snapshot

WATCH_SECONDS = 0.5
WATCH_S3_SECONDS = 10.0
"""A bucket is listed less often: each look is a ListObjectsV2 call."""
HOST = "127.0.0.1"


class Dashboard:
    """The current snapshot, the pages listening for changes, and the watcher."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.version = 0
        self.body = b""
        self.listeners: set[asyncio.Queue[int]] = set()
        self.signature: object = None

    def compute(self) -> None:
        """Query again (on a worker thread: DuckDB releases the GIL while it works)."""
        self.signature = self.store.source.signature()
        self.store.refresh()
        self.body = orjson.dumps(snapshot(self.store), default=str)
        self.version += 1

    async def watch(self) -> None:
        """Recompute when the files change, then wake every listener."""
        loop = asyncio.get_running_loop()
        interval = WATCH_S3_SECONDS if self.store.source.is_s3 else WATCH_SECONDS
        while True:
            await asyncio.sleep(interval)
            try:
                signature = await loop.run_in_executor(None, self.store.source.signature)
                if signature == self.signature:
                    continue
                await loop.run_in_executor(None, self.compute)
            except Exception:  # a file being replaced, an S3 hiccup: look again next time
                continue
            for queue in list(self.listeners):
                queue.put_nowait(self.version)

    # ---- handlers ---------------------------------------------------------------------------

    async def index(self, _: web.Request) -> web.Response:
        return web.Response(text=static("index.html"), content_type="text/html")

    async def static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in CONTENT_TYPES:
            raise web.HTTPNotFound()
        return web.Response(text=static(name), content_type=CONTENT_TYPES[name])

    async def snapshot(self, _: web.Request) -> web.Response:
        return web.Response(
            body=self.body, content_type="application/json", headers={"Cache-Control": "no-store"}
        )

    async def occurrences(self, request: web.Request) -> web.Response:
        fingerprint = request.match_info["fingerprint"]
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(None, self.store.occurrences, fingerprint, 20)
        return web.Response(body=orjson.dumps(rows, default=str), content_type="application/json")

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[int] = asyncio.Queue()
        self.listeners.add(queue)
        try:
            await response.write(f"event: hello\ndata: {self.version}\n\n".encode())
            while True:
                try:
                    version = await asyncio.wait_for(queue.get(), timeout=15)
                    await response.write(f"event: snapshot\ndata: {version}\n\n".encode())
                except asyncio.TimeoutError:
                    await response.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.listeners.discard(queue)
        return response


def application(store: Store) -> web.Application:
    """The aiohttp application of the dashboard over ``store`` (its snapshot computed)."""
    dashboard = Dashboard(store)
    dashboard.compute()
    app = web.Application()
    app.router.add_get("/", dashboard.index)
    app.router.add_get("/static/{name}", dashboard.static_file)
    app.router.add_get("/api/snapshot", dashboard.snapshot)
    app.router.add_get("/api/errors/{fingerprint}", dashboard.occurrences)
    app.router.add_get("/api/events", dashboard.events)

    async def watcher(app: web.Application) -> Any:
        task = asyncio.create_task(dashboard.watch())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(watcher)
    return app


def serve(store: Store, *, port: int, announce: Callable[[str], None] = print) -> None:
    """Serve the dashboard on 127.0.0.1 until interrupted; ``announce`` gets its address."""

    async def run() -> None:
        runner = web.AppRunner(application(store))
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        try:
            announce(
                f"dxtrack dashboard: http://{HOST}:{runner.addresses[0][1]}  (Ctrl-C stops it)"
            )
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
