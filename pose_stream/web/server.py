"""The web server of the live view: aiohttp on an event loop in a thread of its own.

    /                      the page (page.html): each source's video and numbers, updated live
    /stream/N.mjpg         source N's annotated video, MJPEG (multipart/x-mixed-replace)
    /api/status            numbers per source (state, FPS, latency, people, dropped, reconnects) as JSON
    /api/poses             the newest poses of every source as JSON
    /metrics               Prometheus metrics

A viewer costs the pipeline nothing but a reference per frame: JPEG encoding runs in the server's small
thread pool (shared by all viewers, once per frame). A browser that goes away ends its stream's coroutine; no
thread is made per viewer. `stop()` closes every connection and joins the thread.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from importlib import resources

from pose_stream.errors import PoseStreamError
from pose_stream.web.address import is_loopback
from pose_stream.web.live import LiveView
from pose_stream.web.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

BOUNDARY = "pose-stream-frame"
POLL_SECONDS = 0.02          # how often a stream looks for a new frame
ENCODE_THREADS = 2           # JPEG encoding for all viewers together
SHUTDOWN_SECONDS = 2.0


class WebServer:
    """Serves a LiveView on host:port. `start()` binds (PoseStreamError if it cannot); `stop()` ends everything.

    Args:
        view: what to show.
        host, port: where to listen (port 0: any free port; `port` holds the real one after start).
        max_fps: the most frames per second sent to each viewer per source.
    """

    def __init__(self, view: LiveView, host: str, port: int, max_fps: float = 25.0) -> None:
        self.view, self.host, self.port, self.max_fps = view, host, port, max_fps
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._encoder = concurrent.futures.ThreadPoolExecutor(ENCODE_THREADS, thread_name_prefix="pose-stream-jpeg")
        self.streams = 0      # MJPEG streams open now
        self.frames_sent = 0  # JPEG frames sent, over all streams

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="pose-stream-web", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._encoder.shutdown(wait=True)
            raise PoseStreamError(f"--serve {self.host}:{self.port}: cannot listen there: {_reason(self._error)}")
        if is_loopback(self.host):
            log.info("live view on %s", self.url)
        else:
            log.warning("live view on %s: serving on %s, so anyone who can reach this machine can watch (the "
                        "default is 127.0.0.1)", self.url, self.host)

    def stop(self) -> None:
        """Close every connection and stop the server; idempotent."""
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self._thread = None
        self._encoder.shutdown(wait=True)

    # -- the server thread ---------------------------------------------------------------------------
    def _serve(self) -> None:
        from aiohttp import web

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(self._app(), handle_signals=False, access_log=None,
                               shutdown_timeout=SHUTDOWN_SECONDS)
        try:
            self._stopping = asyncio.Event()
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.port)
            try:
                loop.run_until_complete(site.start())
            except OSError as exc:
                self._error = exc
                return
            sockets = site._server.sockets if site._server is not None else []  # noqa: SLF001 - the bound port
            if sockets:
                self.port = sockets[0].getsockname()[1]
            self._ready.set()
            loop.run_until_complete(self._stopping.wait())
        except BaseException as exc:  # noqa: BLE001 - reported by start(), or logged when already serving
            if not self._ready.is_set():
                self._error = exc
            else:
                log.error("the live view's server failed: %s", exc)
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._ready.set()

    def _app(self):
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/stream/{index:\\d+}.mjpg", self._stream)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/poses", self._poses)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _page(self, request):
        from aiohttp import web

        html = resources.files("pose_stream.web").joinpath("page.html").read_text(encoding="utf-8")
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _status(self, request):
        from aiohttp import web

        return web.json_response(self.view.status(), dumps=_dumps, headers={"Cache-Control": "no-store"})

    async def _poses(self, request):
        from aiohttp import web

        return web.json_response(self.view.poses(), dumps=_dumps, headers={"Cache-Control": "no-store"})

    async def _metrics(self, request):
        from aiohttp import web

        body = await asyncio.get_running_loop().run_in_executor(self._encoder, self.view.metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _stream(self, request):
        from aiohttp import web

        index = int(request.match_info["index"])
        if index >= self.view.num_sources:
            raise web.HTTPNotFound(text=f"no source {index} (there are {self.view.num_sources})")
        response = web.StreamResponse(headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}", "Cache-Control": "no-store"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        sent, last_sent_at = -1, 0.0
        self.streams += 1
        try:
            while not self._stopping.is_set():
                if self.view.frames(index) == sent or loop.time() - last_sent_at < 1.0 / self.max_fps:
                    await asyncio.sleep(POLL_SECONDS)
                    continue
                frames, jpeg = await loop.run_in_executor(self._encoder, self.view.jpeg, index)
                sent = frames
                if jpeg is None:
                    continue
                last_sent_at = loop.time()
                await response.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                                     f"\r\n\r\n".encode() + jpeg + b"\r\n")
                self.frames_sent += 1
        except ConnectionError:
            pass  # the viewer went away
        finally:
            self.streams -= 1
        return response


def _dumps(value) -> str:
    return json.dumps(value, allow_nan=False)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text[:1].lower() + text[1:] if text else type(exc).__name__
