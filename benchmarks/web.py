"""The `cogment web` side of the benchmarks: the bridge, and a scripted WebSocket client.

Roles (run by `benchmarks.worker`):
  web-bridge   `cogment.web.WebBridge` in front of the orchestrator (`--target`)
  web-client   a tab as a script: start a trial through the bridge, then `act` / wait for the
               `tick`, in a loop (the same loop as `cogment-client --stream`, over JSON)
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from benchmarks.services import _settings
from benchmarks.worker import Control, wait_for


def role_web_bridge(ctl: Control, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="web-bridge")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    wait_for([args.target])
    from cogment.web import WebBridge

    bridge = WebBridge(_settings(args.settings), args.target, port=args.port).start()
    ctl.ready(port=bridge.port)
    ctl.stop.wait()
    bridge.stop()


def role_web_client(ctl: Control, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="web-client")
    parser.add_argument("--url", required=True, help="the bridge's ws:// address")
    args = parser.parse_args(argv)
    return asyncio.run(_play(ctl, args.url))


async def _connect(url: str, session: Any, timeout: float = 60.0) -> Any:
    """The WebSocket, once the bridge (started alongside) accepts it."""
    import aiohttp

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await session.ws_connect(url)
        except aiohttp.ClientConnectionError:
            if loop.time() > deadline:
                raise RuntimeError(f"nothing answers at {url} after {timeout:.0f} s") from None
            await asyncio.sleep(0.05)


async def _play(ctl: Control, url: str) -> dict[str, Any]:
    import aiohttp

    ticks = 0
    errors: list[str] = []
    async with aiohttp.ClientSession() as session:
        ws = await _connect(url, session)

        async def ask(frame: dict[str, Any]) -> dict[str, Any]:
            await ws.send_str(json.dumps(frame))
            while True:
                reply = json.loads(await ws.receive_str())
                if reply.get("id") == frame["id"]:
                    if reply["type"] == "error":
                        raise RuntimeError(f"{reply['code']}: {reply['message']}")
                    return dict(reply)

        json.loads(await ws.receive_str())  # welcome
        await ask({"type": "start", "id": 0})
        act = {"type": "act", "id": 1, "action": {"x": 1}}
        await ask(act)
        ctl.ready()
        try:
            while not ctl.stop.is_set():
                act["id"] = ticks = ticks + 1
                await ask(act)
            await ask({"type": "end", "id": -1})
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")
        await ws.close()
    return {"ticks": ticks, "errors": errors}


ROLES = {"web-bridge": role_web_bridge, "web-client": role_web_client}
