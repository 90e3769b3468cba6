"""The floor's middle: what an orchestrator tick costs with nothing but gRPC and bytes.

The middle runs a tick the way the best orchestrator could. As soon as it has an
observation it sends it to every agent (`Decide`, concurrently, not waited for) and to the
client (the reply to its `Action`); when the client's next action comes it collects the
agents' actions, calls `Environment.Update` with all of them, and starts over with the new
observation. So a tick costs the client's round trip plus `Update`, with the agents'
`Decide` overlapping the client hop. In `--drive` mode there is no client: the middle runs
agent-only trials itself, `Decide` then `Update` (nothing to overlap with).

Observation bytes are never decoded: the env's `Update` reply arrives as raw bytes, the
`ObservationData` inside it is found by reading three protobuf tags, and every `Decide`
request and client reply is one `b"".join` of a small header and that slice (the exact
bytes the generated classes would produce). Sync (thread pool, futures) or asyncio flavour.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import threading
import time
from concurrent import futures
from typing import Any, Optional, Union

import grpc

from benchmarks.floor import OPTIONS
from benchmarks.worker import Control, wait_for
from cogment.api import agent_pb2, environment_pb2, orchestrator_pb2

CALL_TIMEOUT = 30.0
Bytes = Union[bytes, memoryview]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _read_varint(data: Bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _field(data: Bytes, number: int) -> memoryview:
    """The first length-delimited field `number` of a serialized message, without copying."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        key, pos = _read_varint(view, pos)
        wire_type = key & 7
        if wire_type == 0:
            _, pos = _read_varint(view, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            size, pos = _read_varint(view, pos)
            if key >> 3 == number:
                return view[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"unexpected wire type {wire_type}")
    raise ValueError(f"no field {number}")


def _observation(tick: int, data: Bytes) -> list[Bytes]:
    """The parts of a serialized `cogment.Observation` (tick, timestamp, data)."""
    head = b"\x11" + struct.pack("<Q", time.time_ns()) + b"\x1a" + _varint(len(data))
    if tick:
        head = b"\x08" + _varint(tick) + head
    return [head, data]


def _embed(tag: bytes, parts: list[Bytes]) -> list[Bytes]:
    return [tag, _varint(sum(len(p) for p in parts)), *parts]


def decide_request(trial_field: bytes, actor_id: int, observation: list[Bytes]) -> bytes:
    actor = b"\x10" + _varint(actor_id) if actor_id else b""
    return b"".join([trial_field, actor, *_embed(b"\x1a", observation)])


def action_reply(observation: list[Bytes]) -> bytes:
    return b"".join(_embed(b"\x0a", observation))


def _trial_field(trial_id: str) -> bytes:
    data = trial_id.encode()
    return b"\x0a" + _varint(len(data)) + data


class _TrialState:
    def __init__(self, trial_id: str, data: Bytes) -> None:
        self.trial_field = _trial_field(trial_id)
        self.tick = 0
        self.data = data  # the current tick's serialized ObservationData
        self.pending: list[Any] = []  # the agents' Decide calls on it


def _observation_data(env_reply: bytes) -> memoryview:
    """EnvUpdateReply/EnvStartReply .observation_set.observations[0], as raw bytes."""
    return _field(_field(env_reply, 1), 3)


def _update_request(trial_id: str, human: Optional[bytes], agent_actions: list[bytes]) -> Any:
    actions = ([human] if human is not None else []) + agent_actions
    return environment_pb2.EnvUpdateRequest(
        trial_id=trial_id, action_set=environment_pb2.ActionSet(actions=actions)
    )


def _start_requests(trial_id: str, n_actors: int, first_agent: int) -> Any:
    env = environment_pb2.EnvStartRequest(trial_id=trial_id, actor_counts=[n_actors])
    agents = [
        agent_pb2.AgentStartRequest(trial_id=trial_id, actor_id=i, actor_counts=[n_actors])
        for i in range(first_agent, n_actors)
    ]
    return env, agents


class _Calls:
    """The downstream methods, with raw bytes where observations pass."""

    def __init__(self, agent: Any, env: Any) -> None:
        self.decide = agent.unary_unary(
            "/cogment.Agent/Decide",
            request_serializer=None,
            response_deserializer=agent_pb2.AgentDecideReply.FromString,
        )
        self.agent_start = agent.unary_unary(
            "/cogment.Agent/Start",
            request_serializer=agent_pb2.AgentStartRequest.SerializeToString,
            response_deserializer=agent_pb2.AgentStartReply.FromString,
        )
        self.update = env.unary_unary(
            "/cogment.Environment/Update",
            request_serializer=environment_pb2.EnvUpdateRequest.SerializeToString,
            response_deserializer=None,
        )
        self.env_start = env.unary_unary(
            "/cogment.Environment/Start",
            request_serializer=environment_pb2.EnvStartRequest.SerializeToString,
            response_deserializer=None,
        )


class SyncMiddle:
    """The sync middle: a pool thread per client call, futures for the downstream calls."""

    def __init__(self, agent_target: str, env_target: str, n_agents: int, human: bool) -> None:
        self.calls = _Calls(
            grpc.insecure_channel(agent_target, options=OPTIONS),
            grpc.insecure_channel(env_target, options=OPTIONS),
        )
        self.n_agents = n_agents
        self.first_agent = int(human)
        self.trials: dict[str, _TrialState] = {}

    def _decide(self, state: _TrialState) -> None:
        observation = _observation(state.tick, state.data)
        state.pending = [
            self.calls.decide.future(
                decide_request(state.trial_field, self.first_agent + i, observation),
                timeout=CALL_TIMEOUT,
            )
            for i in range(self.n_agents)
        ]

    def start(self, trial_id: str) -> _TrialState:
        env_req, agent_reqs = _start_requests(
            trial_id, self.n_agents + self.first_agent, self.first_agent
        )
        calls = [self.calls.agent_start.future(r, timeout=CALL_TIMEOUT) for r in agent_reqs]
        reply = self.calls.env_start(env_req, timeout=CALL_TIMEOUT)
        for call in calls:
            call.result()
        state = _TrialState(trial_id, _observation_data(reply))
        self._decide(state)
        self.trials[trial_id] = state
        return state

    def tick(self, trial_id: str, human: Optional[bytes]) -> _TrialState:
        state = self.trials.get(trial_id) or self.start(trial_id)
        agent_actions = [call.result().action.content for call in state.pending]
        reply = self.calls.update(
            _update_request(trial_id, human, agent_actions), timeout=CALL_TIMEOUT
        )
        state.tick += 1
        state.data = _observation_data(reply)
        self._decide(state)
        return state

    def action(self, request: Any, context: Any) -> bytes:
        state = self.tick(request.trial_id, request.action.content)
        return action_reply(_observation(state.tick, state.data))


class AioMiddle:
    """The asyncio middle: one event loop; a grpc.aio call starts when it is made."""

    def __init__(self, agent_target: str, env_target: str, n_agents: int, human: bool) -> None:
        self.calls = _Calls(
            grpc.aio.insecure_channel(agent_target, options=OPTIONS),
            grpc.aio.insecure_channel(env_target, options=OPTIONS),
        )
        self.n_agents = n_agents
        self.first_agent = int(human)
        self.trials: dict[str, _TrialState] = {}

    def _decide(self, state: _TrialState) -> None:
        observation = _observation(state.tick, state.data)
        state.pending = [
            self.calls.decide(
                decide_request(state.trial_field, self.first_agent + i, observation),
                timeout=CALL_TIMEOUT,
            )
            for i in range(self.n_agents)
        ]

    async def start(self, trial_id: str) -> _TrialState:
        env_req, agent_reqs = _start_requests(
            trial_id, self.n_agents + self.first_agent, self.first_agent
        )
        replies = await asyncio.gather(
            self.calls.env_start(env_req, timeout=CALL_TIMEOUT),
            *(self.calls.agent_start(r, timeout=CALL_TIMEOUT) for r in agent_reqs),
        )
        state = _TrialState(trial_id, _observation_data(replies[0]))
        self._decide(state)
        self.trials[trial_id] = state
        return state

    async def tick(self, trial_id: str, human: Optional[bytes]) -> _TrialState:
        state = self.trials.get(trial_id) or await self.start(trial_id)
        agent_actions = [(await call).action.content for call in state.pending]
        reply = await self.calls.update(
            _update_request(trial_id, human, agent_actions), timeout=CALL_TIMEOUT
        )
        state.tick += 1
        state.data = _observation_data(reply)
        self._decide(state)
        return state

    async def action(self, request: Any, context: Any) -> bytes:
        state = await self.tick(request.trial_id, request.action.content)
        return action_reply(_observation(state.tick, state.data))


def _handler(action: Any) -> Any:
    """`cogment.Trial/Action` served by `action`, whose bytes are sent as they are."""
    method = grpc.unary_unary_rpc_method_handler(
        action,
        request_deserializer=orchestrator_pb2.TrialActionRequest.FromString,
        response_serializer=None,
    )
    return grpc.method_handlers_generic_handler("cogment.Trial", {"Action": method})


def role_middle(ctl: Control, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="floor-middle")
    parser.add_argument("--wait-for", action="append", default=[], help="host:port to wait for")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=["sync", "aio"], default="sync")
    parser.add_argument("--agent", required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("--agents", type=int, default=1, help="agents per trial")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--drive", type=int, default=0, help="run N agent-only trials itself")
    args = parser.parse_args(argv)
    wait_for(args.wait_for)
    human = args.drive == 0
    errors: list[str] = []
    if args.mode == "sync":
        _run_sync(ctl, args, human, errors)
    else:
        asyncio.run(_run_aio(ctl, args, human, errors))
    return {"errors": errors}


def _run_sync(ctl: Control, args: argparse.Namespace, human: bool, errors: list[str]) -> None:
    middle = SyncMiddle(args.agent, args.env, args.agents, human)
    if human:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers), options=OPTIONS)
        server.add_generic_rpc_handlers((_handler(middle.action),))
        bound = server.add_insecure_port(f"127.0.0.1:{args.port}")
        server.start()
        ctl.ready(port=bound)
        ctl.stop.wait()
        server.stop(0.5).wait(2.0)
        return

    def loop(i: int) -> None:
        try:
            while not ctl.stop.is_set():
                middle.tick(f"t{i}", None)
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(args.drive)]
    for thread in threads:
        thread.start()
    ctl.ready()
    ctl.stop.wait()
    for thread in threads:
        thread.join(5.0)


async def _run_aio(ctl: Control, args: argparse.Namespace, human: bool, errors: list[str]) -> None:
    middle = AioMiddle(args.agent, args.env, args.agents, human)
    if human:
        server = grpc.aio.server(options=OPTIONS)
        server.add_generic_rpc_handlers((_handler(middle.action),))
        bound = server.add_insecure_port(f"127.0.0.1:{args.port}")
        await server.start()
        ctl.ready(port=bound)
        await ctl.wait_stop()
        await server.stop(0.5)
        return

    async def loop(i: int) -> None:
        try:
            while not ctl.stop.is_set():
                await middle.tick(f"t{i}", None)
        except Exception as error:
            errors.append(repr(error))

    tasks = [asyncio.ensure_future(loop(i)) for i in range(args.drive)]
    ctl.ready()
    await ctl.wait_stop()
    await asyncio.wait(tasks, timeout=5.0)
