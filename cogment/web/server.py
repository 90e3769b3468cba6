"""`WebBridge`: the aiohttp server of `cogment web` (a page, the JS module, the WebSocket).

Routes:
  GET /              the page: `index.html` of the static folder, else the default page
  GET /cogment.js    the JavaScript module (always the bridge's own)
  GET /_cogment/...  the default page and its assets (always there, also with a static folder)
  GET /ws            the WebSocket (see `cogment.web.protocol`); `?session=ID` resumes a session
  GET /<file>        the files of the static folder

The WebSocket answers only pages of its own origin (the `Origin` header's host must be the
`Host` the page was loaded from, or one of `allowed_origins`); clients that send no `Origin`
(scripts, not browsers) are let in. Each socket is a `TabSession`; the bridge keeps nothing
else about trials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional, Union
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from cogment.client import DEFAULT_HEARTBEAT_INTERVAL
from cogment.errors import CogmentError, ConfigurationError
from cogment.web import convert
from cogment.web import protocol as p
from cogment.web.session import Frame, TabSession, dumps

log = logging.getLogger("cogment.web")

STATIC_DIR = Path(__file__).resolve().parent / "static"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
DEFAULTS_TIMEOUT = 2.0  # seconds to ask the orchestrator for its default trial
WS_HEARTBEAT = 20.0  # seconds between pings; a tab that stops answering is closed
_NO_CACHE = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


class WebBridge:
    """Serves pages and relays each browser tab to the orchestrator as one client.

    ```python
    with WebBridge(cog_settings, "127.0.0.1:9000", port=0) as bridge:
        print(bridge.url)        # open it in a browser
    ```

    The server runs on its own event loop in one background thread (`start()`), or in the
    calling thread until SIGINT/SIGTERM (`serve()`); blocking client calls run on a thread
    pool bounded by `max_tabs`.

    Args:
        settings_or_yaml_path: the project's generated cog_settings, or its cogment.yaml.
        orchestrator: the orchestrator's `host:port` (or `grpc://host:port`; `grpcs://host:port`
            for TLS).
        port: the port to serve on (0: a free one, see `port`).
        host: the interface to serve on; 127.0.0.1 unless the page must be reached from
            other machines.
        static_dir: a folder whose `index.html` replaces the default page (and whose other
            files are served as they are).
        max_tabs: how many tabs may be connected at once (more are refused, `bridge_full`).
        max_frame: the largest frame (bytes) a tab may send; larger ones get `frame_too_large`.
        allowed_origins: more origins (`http://host:port`) whose pages may open the socket.
        heartbeat_interval: seconds between the heartbeats of an idle tab's trial (keep it
            well below the trials' `max_inactivity`).
        tls_ca: for an orchestrator at `grpcs://host:port`, the PEM file its certificate is
            checked against (None: the system's roots).

    Raises:
        ConfigurationError: a missing static folder, a malformed orchestrator address or
            a limit out of range.
    """

    def __init__(
        self,
        settings_or_yaml_path: Any,
        orchestrator: str,
        *,
        port: int = p.DEFAULT_PORT,
        host: str = "127.0.0.1",
        static_dir: Union[str, os.PathLike[str], None] = None,
        max_tabs: int = p.DEFAULT_MAX_TABS,
        max_frame: int = p.DEFAULT_MAX_FRAME,
        allowed_origins: tuple[str, ...] = (),
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        tls_ca: Optional[str] = None,
    ) -> None:
        from cogment.endpoint import GRPCS_SCHEME, parse_orchestrator_endpoint
        from cogment.orchestrator.runner import load_project

        if max_tabs < 1:
            raise ConfigurationError(f"max_tabs must be at least 1, got {max_tabs}")
        if heartbeat_interval <= 0:
            raise ConfigurationError(f"heartbeat_interval must be > 0, got {heartbeat_interval}")
        if max_frame < 1024:
            raise ConfigurationError(f"max_frame must be at least 1024 bytes, got {max_frame}")
        self.static_dir = Path(static_dir).resolve() if static_dir is not None else None
        if self.static_dir is not None and not (self.static_dir / "index.html").is_file():
            raise ConfigurationError(f"--static {static_dir}: no index.html in that folder")
        self.settings = load_project(settings_or_yaml_path)
        endpoint = parse_orchestrator_endpoint(orchestrator)
        self.orchestrator = (GRPCS_SCHEME if endpoint.secure else "") + endpoint.address
        self.tls_ca = tls_ca
        self.host = host
        self.max_tabs = max_tabs
        self.max_frame = max_frame
        self.heartbeat_interval = heartbeat_interval
        self.allowed_origins = {_origin_netloc(o) for o in allowed_origins}
        self.project = convert.describe_project(self.settings)
        self._asked_orchestrator = False  # its default trial's human slots, once it answered
        self._requested_port = port
        self._port = 0
        self._sessions: dict[str, TabSession] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._executor = ThreadPoolExecutor(
            max_workers=2 * max_tabs + 4, thread_name_prefix="cogment-web"
        )
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop_event: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._error: Optional[BaseException] = None
        self._state = "unopened"

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The port served on (known once started)."""
        return self._port

    @property
    def url(self) -> str:
        """The page's address, to open in a browser."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._port}/"

    @property
    def tab_count(self) -> int:
        """How many tabs are connected."""
        return len(self._sessions)

    def start(self) -> WebBridge:
        """Starts serving in a background thread; returns once the port is bound.

        Raises:
            ConfigurationError: the port cannot be bound.
        """
        if self._state != "unopened":
            raise CogmentError(f"this WebBridge is {self._state}; make a new one")
        self._state = "started"
        self._thread = threading.Thread(target=self._main, name="cogment-web", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT):
            raise CogmentError("the web bridge did not start in time")
        if self._error is not None:
            self._thread.join()
            self._state = "stopped"
            raise self._error
        return self

    def serve(self) -> None:
        """Serves until `stop()` or, in the main thread, SIGINT/SIGTERM; then stops."""
        if self._state == "unopened":
            self.start()
        if threading.current_thread() is not threading.main_thread():
            self._stopped.wait()
            return
        received: list[int] = []
        previous = {
            signum: signal.signal(signum, lambda signum, _frame: received.append(signum))
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not received and not self._stopped.wait(0.1):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stop()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Closes every tab's socket (code 1001) and Connection, and stops serving.

        The tabs' trials are left to the orchestrator (their `max_inactivity` applies; a tab
        can join its slot again through a new bridge). Idempotent.
        """
        if self._state != "started":
            self._state = "stopped"
            return
        self._state = "stopped"
        loop, event, thread = self._loop, self._stop_event, self._thread
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(event.set)
        if thread is not None:
            thread.join(timeout)
        self._executor.shutdown(wait=False)
        self._stopped.set()

    def __enter__(self) -> WebBridge:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"WebBridge({self._state}, url={self.url!r}, orchestrator={self.orchestrator!r})"

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self._requested_port, reuse_address=True)
            await site.start()
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            self._port = int(sockets[0].getsockname()[1]) if sockets else self._requested_port
        except OSError as error:
            await runner.cleanup()
            address = f"{self.host}:{self._requested_port}"
            self._error = ConfigurationError(
                f"cannot serve on {address}: {error.strerror or error}"
            )
            self._ready.set()
            return
        self._ready.set()
        log.info("serving %s (orchestrator %s)", self.url, self.orchestrator)
        try:
            await self._stop_event.wait()
        finally:
            for ws in list(self._sockets):
                with contextlib.suppress(Exception):
                    await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the bridge is stopping")
            await runner.cleanup()

    # ------------------------------------------------------------------ the app

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[_headers])
        app.router.add_get(p.WS_PATH, self._socket)
        app.router.add_get("/", self._index)
        app.router.add_get("/cogment.js", _file(STATIC_DIR / "cogment.js"))
        app.router.add_get("/_cogment/", _file(STATIC_DIR / "index.html"))
        app.router.add_static("/_cogment/", STATIC_DIR)
        if self.static_dir is not None:
            app.router.add_static("/", self.static_dir)
        return app

    async def _index(self, request: web.Request) -> web.StreamResponse:
        folder = self.static_dir or STATIC_DIR
        return web.FileResponse(folder / "index.html")

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            max_msg_size=self.max_frame * p.HARD_FRAME_FACTOR, heartbeat=WS_HEARTBEAT
        )
        await ws.prepare(request)
        send = _sender(ws)
        assert self._loop is not None
        if not self._asked_orchestrator:
            await self._loop.run_in_executor(self._executor, self._ask_defaults)
        session_id, refusal = self._admit(request)  # (no await from here to the registration)
        if refusal is not None:
            log.warning("refused a tab from %s: %s", request.remote, refusal["message"])
            await send(refusal)
            await ws.close(code=p.CLOSE_CODES.get(refusal["code"], 1008), message=b"refused")
            return ws
        session = TabSession(
            self.settings,
            self.orchestrator,
            session_id,
            self._executor,
            send,
            self.project,
            self.heartbeat_interval,
            self.tls_ca,
        )
        self._sessions[session_id] = session
        self._sockets.add(ws)
        log.info("tab %s connected (%s)", session_id[:8], request.remote)
        try:
            await send(session.welcome(self.max_frame))
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_text(session, send, message.data)
                elif message.type is WSMsgType.BINARY:
                    await send(
                        p.error(
                            p.BAD_JSON, "binary frames are not part of the protocol: send JSON text"
                        )
                    )
                elif message.type is WSMsgType.ERROR:
                    log.info("tab %s: %s", session_id[:8], ws.exception())
        finally:
            self._sockets.discard(ws)
            del self._sessions[session_id]
            await session.close()
            log.info("tab %s disconnected", session_id[:8])
        return ws

    async def _on_text(self, session: TabSession, send: Any, text: str) -> None:
        # (a character is 1 to 4 bytes: only a long text needs encoding to be measured)
        size = len(text) if len(text) * 4 <= self.max_frame else len(text.encode("utf-8"))
        if size > self.max_frame:
            await send(
                p.error(
                    p.FRAME_TOO_LARGE,
                    f"a frame of {size} bytes is over this bridge's limit of {self.max_frame} "
                    "bytes (cogment web --max-frame); it was not read",
                )
            )
            return
        try:
            frame = json.loads(text)
        except ValueError as error:
            await send(p.error(p.BAD_JSON, f"the frame is not JSON: {error}"))
            return
        await session.handle(frame)

    def _ask_defaults(self) -> None:
        """(worker thread) The orchestrator's default trial, whose human slots a page offers
        (they may differ from cogment.yaml's); the project's until it answers."""
        from cogment.client import Connection

        try:
            with Connection(
                self.settings,
                self.orchestrator,
                timeout=DEFAULTS_TIMEOUT,
                heartbeat_interval=None,
                tls_ca=self.tls_ca,
            ) as connection:
                params = connection.get_trial_params()
        except CogmentError as error:
            log.debug("no default trial parameters from %s: %s", self.orchestrator, error)
            return
        self.project = convert.describe_project(self.settings, params)
        self._asked_orchestrator = True

    def _admit(self, request: web.Request) -> tuple[str, Optional[dict[str, Any]]]:
        """The session id of a new socket, or the error frame refusing it."""
        origin = request.headers.get("Origin")
        if origin is not None:
            netloc = _origin_netloc(origin)
            if netloc != request.host.lower() and netloc not in self.allowed_origins:
                return "", p.error(
                    p.ORIGIN_REFUSED,
                    f"a page from {origin} may not use this bridge (it serves "
                    f"{request.host}; cogment web --allow-origin {origin} lets it in)",
                )
        if len(self._sessions) >= self.max_tabs:
            return "", p.error(
                p.BRIDGE_FULL,
                f"this bridge has {self.max_tabs} tabs connected, its limit "
                "(cogment web --max-tabs): close one, or try again later",
            )
        session_id = request.query.get(p.SESSION_PARAM) or uuid.uuid4().hex
        if not p.SESSION_ID_RE.match(session_id):
            return "", p.error(
                p.BAD_REQUEST,
                f"?{p.SESSION_PARAM}= must be 8 to 64 letters, digits, '-' or '_'",
            )
        if session_id in self._sessions:
            return "", p.error(
                p.SESSION_IN_USE,
                f"session {session_id[:8]}... is open in another tab (connect without "
                f"?{p.SESSION_PARAM}= for a new session)",
            )
        return session_id, None


def _origin_netloc(origin: str) -> str:
    """`http://Host:8080` -> `host:8080` (what a `Host` header would say)."""
    origin = origin.strip()
    if origin == "null":
        return "null"
    return urlsplit(origin).netloc.lower() if "://" in origin else origin.lower()


def _sender(ws: web.WebSocketResponse) -> Any:
    async def send(frame: Frame) -> None:
        if ws.closed:
            return
        text = frame if isinstance(frame, str) else dumps(frame)
        with contextlib.suppress(ConnectionError, RuntimeError):  # the tab went away
            await ws.send_str(text)

    return send


def _file(path: Path) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path)

    return handler


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    if not isinstance(response, web.WebSocketResponse):
        response.headers.update(_NO_CACHE)
    return response
