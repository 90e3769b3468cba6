"""Fixtures of the `cogment web` tests: a real bridge in front of a real orchestrator and the
test project's services (tests/e2e/conftest.py), and WebSocket tabs talking to it.

* `orchestrator`, `services`: those of the end-to-end tests (imported here).
* `bridge` (function): `bridge(orch, **kwargs)` starts a `WebBridge` on 127.0.0.1, port 0,
  in front of `orch` (an Orchestrator or a `host:port`); stopped at teardown.
* `Tab`: one tab, as a page's JavaScript would be: `await Tab.open(bridge)`, then
  `await tab.request({...})` (sends with an id, returns the frame answering it) and
  `await tab.next("end")` (the next frame of a type; frames are kept until read).
* `run(coroutine)`: runs a test's async body, bounded by RUN_TIMEOUT seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Coroutine, Iterator
from typing import Any, Callable, Optional, TypeVar, Union

import pytest

pytest.importorskip("aiohttp", reason='the web extra is not installed: pip install "cogment[web]"')

import aiohttp

import cogment
from cogment.web.server import WebBridge
from tests.e2e.conftest import orchestrator, services, transport  # noqa: F401

T = TypeVar("T")
RUN_TIMEOUT = 60.0
FRAME_TIMEOUT = 15.0


def run(coroutine: Coroutine[Any, Any, T], timeout: float = RUN_TIMEOUT) -> T:
    """Runs a test's async body on a new event loop, failing it after `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


@pytest.fixture
def bridge(cog_settings: Any) -> Iterator[Callable[..., WebBridge]]:
    started: list[WebBridge] = []

    def start(orch: Union[cogment.Orchestrator, str], **kwargs: Any) -> WebBridge:
        kwargs.setdefault("port", 0)
        endpoint = orch.endpoint if isinstance(orch, cogment.Orchestrator) else orch
        web = WebBridge(kwargs.pop("settings", cog_settings), endpoint, **kwargs).start()
        started.append(web)
        return web

    yield start
    for web in started:
        web.stop()


class Tab:
    """A WebSocket client speaking the bridge's protocol (one browser tab)."""

    _ids = itertools.count(1)

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws
        self.frames: list[dict[str, Any]] = []  # received, not read yet
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def open(
        cls,
        web: WebBridge,
        session: Optional[str] = None,
        origin: Optional[str] = None,
        welcome: bool = True,
    ) -> Tab:
        """Connects (with `?session=`, an `Origin` header when given) and reads `welcome`."""
        http = aiohttp.ClientSession()
        url = web.url + "ws" + (f"?session={session}" if session else "")
        headers = {"Origin": origin} if origin else {}
        try:
            ws = await http.ws_connect(url, headers=headers, max_msg_size=0)
        except BaseException:
            await http.close()
            raise
        tab = cls(http, ws)
        if welcome:
            tab.welcome = await tab.next("welcome")
        return tab

    @property
    def session_id(self) -> str:
        return str(self.welcome["session_id"])

    async def send(self, frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self.ws.send_str(text)

    async def _receive(self, timeout: float) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"the socket closed: {message.type.name} {message.data!r}")
        frame = json.loads(message.data)
        assert isinstance(frame, dict), frame
        return frame

    async def next(
        self, kind: Optional[str] = None, timeout: float = FRAME_TIMEOUT
    ) -> dict[str, Any]:
        """The next frame (of type `kind`); frames of other types are kept for later."""
        for i, frame in enumerate(self.frames):
            if kind is None or frame["type"] == kind:
                return self.frames.pop(i)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no {kind or 'frame'} within {timeout} s (kept: {self.frames})")
            frame = await self._receive(left)
            if kind is None or frame["type"] == kind:
                return frame
            self.frames.append(frame)

    async def request(
        self, frame: dict[str, Any], timeout: float = FRAME_TIMEOUT
    ) -> dict[str, Any]:
        """Sends `frame` with a new id; returns the frame answering it."""
        rid = next(self._ids)
        await self.send({**frame, "id": rid})
        return await self.answer(rid, timeout)

    async def answer(self, rid: int, timeout: float = FRAME_TIMEOUT) -> dict[str, Any]:
        """The frame answering request `rid` (other frames are kept)."""
        for i, frame in enumerate(self.frames):
            if frame.get("id") == rid:
                return self.frames.pop(i)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no answer to request {rid} within {timeout} s")
            frame = await self._receive(left)
            if frame.get("id") == rid:
                return frame
            self.frames.append(frame)

    async def closed(self, timeout: float = FRAME_TIMEOUT) -> int:
        """Waits for the bridge to close the socket; returns the close code."""
        while True:
            message = await self.ws.receive(timeout=timeout)
            if message.type is aiohttp.WSMsgType.CLOSE:  # the code the bridge sent
                return int(message.data)
            if message.type is aiohttp.WSMsgType.CLOSED:
                return int(self.ws.close_code or 0)
            if message.type is aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(message.data))

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()

    async def __aenter__(self) -> Tab:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
