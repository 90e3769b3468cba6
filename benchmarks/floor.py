"""The floor: a raw gRPC chain with cogment's protobuf messages and no SDK.

client --Trial.Action--> middle --Agent.Decide x K, Environment.Update--> agent, env

Each hop is a separate process. This module has the leaves (bare grpcio Agent and
Environment servicers, which double as the baseline of the SDK-dispatch measurement) and
the raw clients; the middle is in `benchmarks.middle`. Every part comes in a sync (thread
pool, futures) and an asyncio (grpc.aio) flavour; the benchmarks compare a sync and an aio
middle, with sync leaves and a sync client (see `runners.floor_chain`).

The streamed floor (`benchmarks.stream_middle`) is the same chain over bidirectional
streams: the sync leaves also serve cogment-py's stream services (cogment/api/stream.proto,
one stream per agent actor or environment per trial, a pool thread each), and the client
can act on `Trial.ActionStream` (`--mode stream`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import queue
import threading
import time
from concurrent import futures
from typing import Any, Callable, Optional

import grpc

from benchmarks.worker import Control, wait_for
from cogment.api import (
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    environment_pb2,
    environment_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    stream_pb2,
    stream_pb2_grpc,
)

OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
]
CALL_TIMEOUT = 30.0
ACTION = b"\x08\x01"  # what bench.Act(x=1) serializes to


def observation_bytes(payload: int) -> bytes:
    """A serialized bench.Obs carrying `payload` bytes (field 1 `data`, field 2 `n`=1)."""
    blob = b"\x00" * payload
    return b"\x0a" + _varint(len(blob)) + blob + b"\x10\x01"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def stats(self) -> dict[str, Any]:
        return {"count": self.n}


# --------------------------------------------------------------------------- leaf services


class _AgentLogic:
    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.reply = agent_pb2.AgentDecideReply(action=common_pb2.Action(content=ACTION))

    def decide(self) -> agent_pb2.AgentDecideReply:
        self.counter.n += 1
        return self.reply


class _EnvLogic:
    def __init__(self, counter: Counter, payload: int) -> None:
        self.counter = counter
        self.content = observation_bytes(payload)
        self.ticks: dict[str, int] = {}

    def fill(self, obs_set: Any, trial_id: str, n_actors: int) -> None:
        # field by field: building nested messages through constructor keywords copies
        # them again at each level, which costs ~100x more on a 4 MiB payload (upb)
        obs_set.tick_id = self.ticks.get(trial_id, 0)
        obs_set.timestamp = time.time_ns()
        obs_set.observations.add(content=self.content, snapshot=True)
        obs_set.actors_map.extend([0] * n_actors)

    def start(self, request: Any) -> environment_pb2.EnvStartReply:
        self.ticks[request.trial_id] = 0
        reply = environment_pb2.EnvStartReply()
        self.fill(reply.observation_set, request.trial_id, sum(request.actor_counts))
        return reply

    def update(self, request: Any, reply: Optional[Any] = None) -> environment_pb2.EnvUpdateReply:
        """Fills `reply` (a new EnvUpdateReply by default)."""
        self.counter.n += 1
        self.ticks[request.trial_id] = self.ticks.get(request.trial_id, 0) + 1
        if reply is None:
            reply = environment_pb2.EnvUpdateReply()
        self.fill(reply.observation_set, request.trial_id, len(request.action_set.actions))
        return reply


class SyncAgent(agent_pb2_grpc.AgentServicer):
    def __init__(self, logic: _AgentLogic) -> None:
        self.logic = logic

    def Start(self, request: Any, context: Any) -> Any:
        return agent_pb2.AgentStartReply()

    def Decide(self, request: Any, context: Any) -> Any:
        return self.logic.decide()

    def End(self, request: Any, context: Any) -> Any:
        return agent_pb2.AgentEndReply()


class AioAgent(agent_pb2_grpc.AgentServicer):
    def __init__(self, logic: _AgentLogic) -> None:
        self.logic = logic

    async def Start(self, request: Any, context: Any) -> Any:
        return agent_pb2.AgentStartReply()

    async def Decide(self, request: Any, context: Any) -> Any:
        return self.logic.decide()

    async def End(self, request: Any, context: Any) -> Any:
        return agent_pb2.AgentEndReply()


class SyncEnv(environment_pb2_grpc.EnvironmentServicer):
    def __init__(self, logic: _EnvLogic) -> None:
        self.logic = logic

    def Start(self, request: Any, context: Any) -> Any:
        return self.logic.start(request)

    def Update(self, request: Any, context: Any) -> Any:
        return self.logic.update(request)

    def End(self, request: Any, context: Any) -> Any:
        return environment_pb2.EnvEndReply()


class AioEnv(environment_pb2_grpc.EnvironmentServicer):
    def __init__(self, logic: _EnvLogic) -> None:
        self.logic = logic

    async def Start(self, request: Any, context: Any) -> Any:
        return self.logic.start(request)

    async def Update(self, request: Any, context: Any) -> Any:
        return self.logic.update(request)

    async def End(self, request: Any, context: Any) -> Any:
        return environment_pb2.EnvEndReply()


class StreamAgent(stream_pb2_grpc.AgentStreamServicer):
    """An agent actor per stream: Start, Decides, End (a pool thread per stream)."""

    def __init__(self, logic: _AgentLogic) -> None:
        self.logic = logic

    def Run(self, request_iterator: Any, context: Any) -> Any:
        decided = stream_pb2.AgentStreamReply(decide=self.logic.reply)
        for request in request_iterator:
            kind = request.WhichOneof("request")
            if kind == "decide":
                self.logic.decide()
                yield decided
            elif kind == "start":
                yield stream_pb2.AgentStreamReply(start=agent_pb2.AgentStartReply())
            elif kind == "end":
                yield stream_pb2.AgentStreamReply(end=agent_pb2.AgentEndReply())
                return


class StreamEnv(stream_pb2_grpc.EnvironmentStreamServicer):
    """An environment trial per stream: Start, Updates, End (a pool thread per stream)."""

    def __init__(self, logic: _EnvLogic) -> None:
        self.logic = logic

    def Run(self, request_iterator: Any, context: Any) -> Any:
        for request in request_iterator:
            kind = request.WhichOneof("request")
            reply = stream_pb2.EnvStreamReply()
            if kind == "update":
                self.logic.update(request.update, reply.update)
            elif kind == "start":
                start = request.start
                self.logic.ticks[start.trial_id] = 0
                n_actors = sum(start.actor_counts)
                self.logic.fill(reply.start.observation_set, start.trial_id, n_actors)
            elif kind == "end":
                reply.end.SetInParent()
                yield reply
                return
            yield reply


def _serve(ctl: Control, mode: str, add: Callable[[Any], None], workers: int, port: int) -> None:
    """Serves until stop, in the sync or the aio flavour; reports the port when ready."""
    if mode == "sync":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=OPTIONS)
        add(server)
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        ctl.ready(port=bound)
        ctl.stop.wait()
        server.stop(0.5).wait(2.0)
        return

    async def main() -> None:
        aserver = grpc.aio.server(options=OPTIONS)
        add(aserver)
        bound = aserver.add_insecure_port(f"127.0.0.1:{port}")
        await aserver.start()
        ctl.ready(port=bound)
        await ctl.wait_stop()
        await aserver.stop(0.5)

    asyncio.run(main())


def role_agent(ctl: Control, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="floor-agent")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=["sync", "aio"], default="sync")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args(argv)
    counter = Counter()
    ctl.stats = counter.stats
    logic = _AgentLogic(counter)
    servicer = SyncAgent(logic) if args.mode == "sync" else AioAgent(logic)

    def add(server: Any) -> None:
        agent_pb2_grpc.add_AgentServicer_to_server(servicer, server)
        if args.mode == "sync":
            stream_pb2_grpc.add_AgentStreamServicer_to_server(StreamAgent(logic), server)

    _serve(ctl, args.mode, add, args.workers, args.port)


def role_env(ctl: Control, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="floor-env")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=["sync", "aio"], default="sync")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--payload", type=int, default=16)
    args = parser.parse_args(argv)
    counter = Counter()
    ctl.stats = counter.stats
    logic = _EnvLogic(counter, args.payload)
    servicer = SyncEnv(logic) if args.mode == "sync" else AioEnv(logic)

    def add(server: Any) -> None:
        environment_pb2_grpc.add_EnvironmentServicer_to_server(servicer, server)
        if args.mode == "sync":
            stream_pb2_grpc.add_EnvironmentStreamServicer_to_server(StreamEnv(logic), server)

    _serve(ctl, args.mode, add, args.workers, args.port)


# --------------------------------------------------------------------------- raw clients


def role_client(ctl: Control, argv: list[str]) -> dict[str, Any]:
    """N trials, each a loop of Trial.Action calls (`--mode stream`: of actions on one
    Trial.ActionStream per trial, sync), until stop."""
    parser = argparse.ArgumentParser(prog="floor-client")
    parser.add_argument("--wait-for", action="append", default=[], help="host:port to wait for")
    parser.add_argument("--mode", choices=["sync", "aio", "stream"], default="sync")
    parser.add_argument("--target", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)
    wait_for(args.wait_for)
    counts = [0] * args.concurrency
    errors: list[str] = []

    def request(i: int) -> Any:
        return orchestrator_pb2.TrialActionRequest(
            trial_id=f"t{i}", actor_id=0, action=common_pb2.Action(content=ACTION)
        )

    if args.mode in ("sync", "stream"):
        channel = grpc.insecure_channel(args.target, options=OPTIONS)
        stub = orchestrator_pb2_grpc.TrialStub(channel)
        started = threading.Barrier(args.concurrency + 1)

        def loop(i: int) -> None:
            req = request(i)
            try:
                requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
                if args.mode == "stream":
                    replies = stub.ActionStream(iter(requests.get, None))

                    def act() -> Any:
                        requests.put(req)
                        return next(replies)

                else:

                    def act() -> Any:
                        return stub.Action(req, timeout=CALL_TIMEOUT)

                act()
                started.wait(60.0)
                while not ctl.stop.is_set():
                    act()
                    counts[i] += 1
                if args.mode == "stream":
                    requests.put(None)
            except Exception as error:
                errors.append(repr(error))
                started.abort()

        threads = [
            threading.Thread(target=loop, args=(i,), daemon=True) for i in range(args.concurrency)
        ]
        for thread in threads:
            thread.start()
        started.wait(60.0)
        ctl.ready()
        ctl.stop.wait()
        for thread in threads:
            thread.join(5.0)
        return {"ticks": sum(counts), "errors": errors}

    async def main() -> None:
        achannel = grpc.aio.insecure_channel(args.target, options=OPTIONS)
        astub = orchestrator_pb2_grpc.TrialStub(achannel)

        async def loop(i: int) -> None:
            req = request(i)
            try:
                while not ctl.stop.is_set():
                    await astub.Action(req, timeout=CALL_TIMEOUT)
                    counts[i] += 1
            except Exception as error:
                errors.append(repr(error))

        await asyncio.gather(
            *(astub.Action(request(i), timeout=CALL_TIMEOUT) for i in range(args.concurrency))
        )
        tasks = [asyncio.ensure_future(loop(i)) for i in range(args.concurrency)]
        ctl.ready()
        await ctl.wait_stop()
        await asyncio.wait(tasks, timeout=5.0)

    asyncio.run(main())
    return {"ticks": sum(counts), "errors": errors}


def role_dispatch_client(ctl: Control, argv: list[str]) -> dict[str, Any]:
    """Calls Agent.Decide in C concurrent loops (asyncio client) on one agent service."""
    parser = argparse.ArgumentParser(prog="dispatch-client")
    parser.add_argument("--wait-for", action="append", default=[], help="host:port to wait for")
    parser.add_argument("--target", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)
    wait_for(args.wait_for)
    counts = [0] * args.concurrency
    errors: list[str] = []
    content = observation_bytes(16)

    async def main() -> None:
        channel = grpc.aio.insecure_channel(args.target, options=OPTIONS)
        stub = agent_pb2_grpc.AgentStub(channel)

        async def loop(i: int) -> None:
            trial_id = f"d{i}"
            request = agent_pb2.AgentDecideRequest(
                trial_id=trial_id,
                actor_id=1,
                observation=common_pb2.Observation(
                    data=common_pb2.ObservationData(content=content, snapshot=True)
                ),
            )
            try:
                while not ctl.stop.is_set():
                    request.observation.tick_id = counts[i]
                    request.observation.timestamp = time.time_ns()
                    await stub.Decide(request, timeout=CALL_TIMEOUT)
                    counts[i] += 1
            except Exception as error:
                errors.append(repr(error))

        await asyncio.gather(
            *(
                stub.Start(
                    agent_pb2.AgentStartRequest(trial_id=f"d{i}", actor_id=1, actor_counts=[2]),
                    timeout=CALL_TIMEOUT,
                )
                for i in range(args.concurrency)
            )
        )
        tasks = [asyncio.ensure_future(loop(i)) for i in range(args.concurrency)]
        ctl.ready()
        await ctl.wait_stop()
        await asyncio.wait(tasks, timeout=5.0)
        for i in range(args.concurrency):
            with contextlib.suppress(grpc.RpcError):
                await stub.End(agent_pb2.AgentEndRequest(trial_id=f"d{i}", actor_id=1), timeout=5.0)
        await channel.close(None)

    asyncio.run(main())
    return {"calls": sum(counts), "errors": errors}


ROLES: dict[str, Callable[[Control, list[str]], Optional[dict[str, Any]]]] = {
    "floor-agent": role_agent,
    "floor-env": role_env,
    "floor-client": role_client,
    "dispatch-client": role_dispatch_client,
}
