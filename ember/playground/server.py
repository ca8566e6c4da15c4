"""The playground's web server: the page, a small JSON API and one WebSocket per browser tab.

Built on aiohttp (HTTP server and WebSocket in one maintained package; an optional dependency,
``pip install 'ember[playground]'``). It listens on 127.0.0.1 only and answers only requests
addressed to ``127.0.0.1`` or ``localhost`` from pages of those hosts (a page elsewhere cannot
reach it through a DNS name pointing here, nor open a WebSocket to it).

Routes:

* ``GET /`` -- the page; ``GET /static/...`` -- its script and style, shipped in the package.
* ``GET /api/options`` -- dataset, feature, activation and optimizer names, limits, defaults,
  and the backprop step-through's sample count and limits.
* ``GET /api/config?<query>`` -- the config a URL query describes, normalized, with its Python
  code, or ``400`` with ``{"error": ...}``.
* ``GET /ws`` -- the WebSocket of one tab, which owns one :class:`TrainingSession`. The page sends
  JSON messages ``{"type": "config", "config": {...}}``, ``{"type": "play"}``, ``"pause"``,
  ``{"type": "step", "unit": "batch" | "epoch"}``, ``"reset"``, and
  ``{"type": "backprop", "samples": 4}`` (the backprop step-through of the current weights:
  one ``"backprop"`` message with an SVG frame per graph node, see
  :meth:`TrainingSession.backprop`; one request at a time, at most one a second, and refused
  with an ``"error"`` whose ``"about"`` is ``"backprop"`` when the graph is too large); the
  server answers ``{"type": "hello", "session": id}`` once, then ``"ready"``, ``"state"``,
  ``"backprop"`` and ``"error"`` messages. States are coalesced: a slow page gets the latest,
  never a backlog. Closing the tab closes the socket, which stops the session's thread.
* ``GET /api/sessions/<id>/model`` -- the session's model as an Ember file (``model.save``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import json
import math
import sys
import threading
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from . import session as _session
from .config import (
    DATASETS,
    FEATURES,
    REGULARIZATIONS,
    PlaygroundConfig,
    activation_names,
    limits,
    optimizer_names,
)
from .recipe import python_code
from .session import TrainingSession

if TYPE_CHECKING:  # aiohttp is imported on first use (an optional dependency)
    from aiohttp import web

__all__ = [
    "PlaygroundServer",
    "serve",
    "create_app",
    "main",
    "HOST",
    "MAX_SESSIONS",
    "MAX_MESSAGE_BYTES",
    "HEARTBEAT_SECONDS",
    "SAVE_TIMEOUT",
]

HOST = "127.0.0.1"
"""The only address the server listens on."""
MAX_SESSIONS = 16
"""Tabs training at once; one more gets an error message instead of a session."""
MAX_MESSAGE_BYTES = 64 * 1024
"""Largest WebSocket message accepted from a page (a config is well under 1 KiB)."""
HEARTBEAT_SECONDS = 20.0
"""WebSocket ping interval: a tab that vanished without closing is noticed within two pings."""
SAVE_TIMEOUT = 60.0
"""Seconds a model download may wait for the training thread."""
STATIC_DIR = Path(__file__).with_name("static")
_LOCAL_NAMES = {"127.0.0.1", "localhost"}


def _web():
    """aiohttp.web, imported on first use so ``import ember.playground`` works without it."""
    try:
        from aiohttp import web
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Ember playground needs aiohttp; install it with pip install 'ember[playground]'"
        ) from exc
    return web


def _dumps(message: dict) -> str:
    """JSON for the page; NaN/inf (a diverged model) become null, which JSON.parse accepts."""
    try:
        return json.dumps(message, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_finite(message), separators=(",", ":"))


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class _Playground:
    """The application's state (the open sessions) and its request handlers."""

    def __init__(self):
        self.sessions: dict[str, TrainingSession] = {}
        self.sockets: set = set()

    # ------------------------------------------------------------------ plain HTTP
    async def index(self, request):
        return _web().FileResponse(STATIC_DIR / "index.html")

    async def options(self, request):
        return _web().json_response({
            "datasets": list(DATASETS),
            "features": list(FEATURES),
            "activations": activation_names(),
            "optimizers": optimizer_names(),
            "regularizations": list(REGULARIZATIONS),
            "limits": limits(),
            "defaults": PlaygroundConfig().to_dict(),
            "backprop": {  # the step-through's limits (read now: tests may lower them)
                "samples": _session.BACKPROP_SAMPLES,
                "max_samples": _session.MAX_BACKPROP_SAMPLES,
                "max_nodes": _session.MAX_BACKPROP_NODES,
                "min_interval": _session.MIN_BACKPROP_INTERVAL,
            },
        })

    async def config(self, request):
        web = _web()
        try:
            config = PlaygroundConfig.from_query(request.query_string)
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({
            "config": config.to_dict(),
            "query": config.to_query(),
            "code": python_code(config),
        })

    async def model(self, request):
        web = _web()
        session = self.sessions.get(request.match_info["session"])
        if session is None:
            return web.json_response(
                {"error": "no such session (it ends when its tab closes)"}, status=404
            )
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(None, session.save_model, SAVE_TIMEOUT)
        except ValueError as exc:  # no configuration chosen yet
            return web.json_response({"error": str(exc)}, status=409)
        except RuntimeError as exc:  # busy or closing
            return web.json_response({"error": str(exc)}, status=503)
        except Exception as exc:
            return web.json_response(
                {"error": f"could not save the model: {type(exc).__name__}: {exc}"}, status=500
            )
        return web.Response(
            body=data,
            content_type="application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="playground.ember"'},
        )

    # ------------------------------------------------------------------ WebSocket
    async def socket(self, request):
        web = _web()
        from aiohttp import WSMsgType
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        if len(self.sessions) >= MAX_SESSIONS:
            await ws.send_str(_dumps({"type": "error", "message": (
                f"too many playground tabs are open (MAX_SESSIONS = {MAX_SESSIONS}); close one "
                "and reload")}))
            await ws.close()
            return ws
        outbox = _Outbox(asyncio.get_running_loop())
        session = TrainingSession(publish=outbox.publish_from_thread)
        self.sessions[session.id] = session
        self.sockets.add(ws)
        sender = asyncio.create_task(outbox.pump(ws))
        try:
            outbox.put(_dumps({"type": "hello", "session": session.id}), "hello")
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(session, outbox, message.data)
                elif message.type == WSMsgType.BINARY:
                    outbox.error("binary messages are not understood; send JSON text")
        finally:
            sender.cancel()
            self.sockets.discard(ws)
            self.sessions.pop(session.id, None)
            # Joining the thread may wait for one batch: not on the event loop.
            await asyncio.get_running_loop().run_in_executor(None, session.close)
        return ws

    def _on_text(self, session: TrainingSession, outbox: _Outbox, text: str) -> None:
        try:
            self._dispatch(session, outbox, text)
        except RuntimeError as exc:  # the session is busy (too many commands) or closed
            outbox.error(str(exc))

    def _dispatch(self, session: TrainingSession, outbox: _Outbox, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            outbox.error(f"malformed JSON from the page: {exc.msg} (line {exc.lineno}, column "
                         f"{exc.colno})")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "config":
            try:
                config = PlaygroundConfig.from_dict(message.get("config"))
            except (TypeError, ValueError) as exc:
                outbox.error(str(exc))
                return
            session.configure(config)
        elif kind in ("play", "pause", "reset"):
            getattr(session, kind)()
        elif kind == "step":
            unit = message.get("unit", "batch")
            if unit not in ("batch", "epoch"):
                outbox.error(f'step: unit must be "batch" or "epoch", got {unit!r}')
                return
            session.step(unit)
        elif kind == "backprop":
            try:
                session.request_backprop(message.get("samples", _session.BACKPROP_SAMPLES))
            except (ValueError, RuntimeError) as exc:  # bad samples, too soon, or closed
                outbox.error(str(exc), "backprop")
        else:
            outbox.error(
                'each message must be a JSON object whose "type" is one of config, play, '
                f"pause, step, reset, backprop; got {text[:80]!r}"
            )

    async def on_shutdown(self, app) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"server shutting down")

    async def on_cleanup(self, app) -> None:
        for session in list(self.sessions.values()):
            session.close()
        self.sessions.clear()


class _Outbox:
    """Messages waiting for one socket, in order; a new state replaces a state not yet sent."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: collections.deque[tuple[str, str]] = collections.deque()
        self.wake = asyncio.Event()

    def publish_from_thread(self, message: dict) -> None:
        # Serialized on the training thread, so the event loop only moves bytes.
        text = _dumps(message)
        try:
            self.loop.call_soon_threadsafe(self.put, text, message.get("type", ""))
        except RuntimeError:  # the loop is closed: the server stopped, nobody is listening
            pass

    def put(self, text: str, kind: str) -> None:
        if kind == "state" and self.queue and self.queue[-1][1] == "state":
            self.queue[-1] = (text, kind)
        else:
            self.queue.append((text, kind))
        self.wake.set()

    def error(self, message: str, about: str | None = None) -> None:
        """An error for the page; ``about`` names the request it answers (the page's
        step-through panel shows its own errors)."""
        error = {"type": "error", "message": message}
        if about is not None:
            error["about"] = about
        self.put(_dumps(error), "error")

    async def pump(self, ws) -> None:
        try:
            while not ws.closed:
                await self.wake.wait()
                self.wake.clear()
                while self.queue and not ws.closed:
                    text, _ = self.queue.popleft()
                    await ws.send_str(text)
        except (ConnectionError, RuntimeError):  # the tab went away mid-send
            pass


@functools.cache
def _playground_key():
    return _web().AppKey("playground", _Playground)


def create_app() -> web.Application:
    """The aiohttp application (routes above), for embedding or aiohttp's test client.

    Example:
        >>> from ember.playground import create_app
        >>> app = create_app()
        >>> sorted({r.method for r in app.router.routes()})
        ['GET', 'HEAD']
    """
    web = _web()
    playground = _Playground()

    @web.middleware
    async def local_only(request, handler):
        # A page served elsewhere may point its own name at 127.0.0.1 (DNS rebinding), or open
        # a WebSocket here (no same-origin rule for those): both are refused.
        origin = request.headers.get("Origin")
        foreign_origin = origin is not None and urlparse(origin).hostname not in _LOCAL_NAMES
        if (request.url.host or "") not in _LOCAL_NAMES or foreign_origin:
            return web.json_response(
                {"error": "the playground answers pages of 127.0.0.1 and localhost only"},
                status=403,
            )
        return await handler(request)

    app = web.Application(middlewares=[local_only], client_max_size=MAX_MESSAGE_BYTES)
    app[_playground_key()] = playground
    app.router.add_get("/", playground.index)
    app.router.add_get("/api/options", playground.options)
    app.router.add_get("/api/config", playground.config)
    app.router.add_get("/api/sessions/{session}/model", playground.model)
    app.router.add_get("/ws", playground.socket)
    app.router.add_static("/static/", STATIC_DIR)
    app.on_shutdown.append(playground.on_shutdown)
    app.on_cleanup.append(playground.on_cleanup)
    return app


class PlaygroundServer:
    """A playground server running on its own thread and event loop (from :func:`serve`).

    ``url`` is where it answers and ``app`` the aiohttp application; :meth:`stop` closes every
    tab's session and the port; it is also a context manager.

    Example:
        >>> import json, urllib.request
        >>> from ember.playground import serve
        >>> with serve(port=0) as server:
        ...     with urllib.request.urlopen(server.url + "api/options") as reply:
        ...         options = json.load(reply)
        >>> options["defaults"]["dataset"], server.url.startswith("http://127.0.0.1:")
        ('spirals', True)
    """

    def __init__(self, port: int = 0):
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"PlaygroundServer: port must be an int from 0 to 65535, got {port!r}")
        self.port = port
        self.url = ""
        self.app = create_app()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ember-playground-server",
                                        daemon=True)

    @property
    def sessions(self) -> dict[str, TrainingSession]:
        """The open sessions (one per connected tab) by id; a copy."""
        return dict(self.app[_playground_key()].sessions)

    def start(self) -> PlaygroundServer:
        """Start listening; returns once the port is open (raises ``OSError`` if it cannot)."""
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(); the thread ends here
            self._error = exc
        finally:
            self._started.set()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self) -> None:
        web = _web()
        runner = web.AppRunner(self.app, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, HOST, self.port)
            await site.start()
            self.port = runner.addresses[0][1]
            self.url = f"http://{HOST}:{self.port}/"
            self._stop = asyncio.Event()
            self._started.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self, timeout: float = 15.0) -> None:
        """Close the sessions and the port, and wait for the thread; idempotent."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop already closed
                pass
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C interrupts the wait)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> PlaygroundServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def serve(port: int = 0) -> PlaygroundServer:
    """Start a playground server on 127.0.0.1 in a background thread and return it, running.

    ``port=0`` picks a free port; ``server.url`` says which.

    Example:
        >>> from ember.playground import serve
        >>> server = serve()
        >>> server.url.startswith("http://127.0.0.1:")
        True
        >>> server.stop()
    """
    return PlaygroundServer(port).start()


def main(argv: list[str] | None = None) -> int:
    """``ember playground``: serve the playground, print its URL, open a browser tab, and run
    until Ctrl-C. Options: ``--port N`` (0, the default, picks a free port), ``--no-browser``.

    Example:
        >>> import contextlib, io
        >>> from ember.playground import main
        >>> with contextlib.redirect_stderr(io.StringIO()) as err:
        ...     main(["--port", "-1"])
        2
        >>> print(err.getvalue().strip())
        ember playground: error: PlaygroundServer: port must be an int from 0 to 65535, got -1
    """
    parser = argparse.ArgumentParser(
        prog="ember playground",
        description="Train Ember networks live in the browser (a local web app on 127.0.0.1).",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    args = parser.parse_args(argv)
    server = None
    try:  # Ctrl-C may come at any moment once the port is open, even during the print
        server = serve(args.port)
        print(f"Ember playground: {server.url}  (Ctrl-C stops it)", flush=True)
        if not args.no_browser:
            webbrowser.open(server.url)
        server.wait()
    except (OSError, ValueError, ImportError) as exc:
        print(f"ember playground: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.stop()
    return 0
