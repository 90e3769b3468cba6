"""The streamed floor's middle: the floor's tick (see `benchmarks.middle`) over streams.

Each trial opens one bidirectional stream per agent actor and one to the environment
(cogment/api/stream.proto, served by the sync leaves of `benchmarks.floor`), and the client
acts on `Trial.ActionStream`. A tick writes every agent's Decide request as soon as the
observation is known and reads the replies when the actions are needed (the stream keeps
them in order: no task per call), answers the client, then one Update request on the
environment's stream. Requests are encoded by hand around the observation bytes, replies
are sliced, never decoded; asyncio (grpc.aio) only: a sync middle would need a thread per
stream to feed its requests.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc

from benchmarks.floor import OPTIONS
from benchmarks.middle import (
    Bytes,
    _field,
    _observation,
    _trial_field,
    _update_request,
    _varint,
    action_reply,
    decide_request,
)
from benchmarks.worker import Control, wait_for
from cogment.api import agent_pb2, environment_pb2, orchestrator_pb2


def _as_is(data: bytes) -> bytes:
    return data


def _embed(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


class _Trial:
    def __init__(self, trial_id: str, env: Any, agents: list[Any]) -> None:
        self.trial_id = trial_id
        self.trial_field = _trial_field(trial_id)
        self.env = env
        self.agents = agents
        self.tick = 0
        self.data: Bytes = b""


async def _exchange(call: Any, request: bytes) -> Any:
    await call.write(request)
    return await call.read()


class StreamMiddle:
    """One stream per agent actor and per environment, per trial."""

    def __init__(self, agent_target: str, env_target: str, n_agents: int, human: bool) -> None:
        self.agent_run = grpc.aio.insecure_channel(agent_target, options=OPTIONS).stream_stream(
            "/cogment.ext.AgentStream/Run", request_serializer=_as_is, response_deserializer=_as_is
        )
        self.env_run = grpc.aio.insecure_channel(env_target, options=OPTIONS).stream_stream(
            "/cogment.ext.EnvironmentStream/Run",
            request_serializer=_as_is,
            response_deserializer=_as_is,
        )
        self.n_agents = n_agents
        self.first_agent = int(human)
        self.trials: dict[str, _Trial] = {}

    async def _decide(self, trial: _Trial) -> None:
        """Writes every agent's Decide on the current observation (read in `tick`)."""
        observation = _observation(trial.tick, trial.data)
        for i, call in enumerate(trial.agents):
            request = decide_request(trial.trial_field, self.first_agent + i, observation)
            await call.write(_embed(2, request))

    async def start(self, trial_id: str) -> _Trial:
        n_actors = self.n_agents + self.first_agent
        agents = [self.agent_run() for _ in range(self.n_agents)]  # type: ignore[call-arg]
        trial = _Trial(trial_id, self.env_run(), agents)  # type: ignore[call-arg]
        env_start = environment_pb2.EnvStartRequest(trial_id=trial_id, actor_counts=[n_actors])
        starts = [
            agent_pb2.AgentStartRequest(trial_id=trial_id, actor_id=i, actor_counts=[n_actors])
            for i in range(self.first_agent, n_actors)
        ]
        replies = await asyncio.gather(
            _exchange(trial.env, _embed(1, env_start.SerializeToString())),
            *(_exchange(c, _embed(1, r.SerializeToString())) for c, r in zip(trial.agents, starts)),
        )
        trial.data = _field(_field(_field(replies[0], 1), 1), 3)
        await self._decide(trial)
        self.trials[trial_id] = trial
        return trial

    async def tick(self, trial_id: str, human: Any) -> _Trial:
        trial = self.trials.get(trial_id) or await self.start(trial_id)
        agent_actions = []
        for call in trial.agents:
            reply = agent_pb2.AgentDecideReply.FromString(bytes(_field(await call.read(), 2)))
            agent_actions.append(reply.action.content)
        update = _update_request(trial_id, human, agent_actions).SerializeToString()
        reply = await _exchange(trial.env, _embed(2, update))
        trial.tick += 1
        trial.data = _field(_field(_field(reply, 2), 1), 3)
        await self._decide(trial)
        return trial

    async def action_stream(self, requests: Any, context: Any) -> Any:
        async for request in requests:
            trial = await self.tick(request.trial_id, request.action.content)
            yield action_reply(_observation(trial.tick, trial.data))


def _handler(middle: StreamMiddle) -> Any:
    """`cogment.Trial/ActionStream` served by `middle`, whose bytes are sent as they are."""
    method = grpc.stream_stream_rpc_method_handler(
        middle.action_stream,
        request_deserializer=orchestrator_pb2.TrialActionRequest.FromString,
        response_serializer=None,
    )
    return grpc.method_handlers_generic_handler("cogment.Trial", {"ActionStream": method})


def role_stream_middle(ctl: Control, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="floor-stream-middle")
    parser.add_argument("--wait-for", action="append", default=[], help="host:port to wait for")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("--agents", type=int, default=1, help="agents per trial")
    parser.add_argument("--drive", type=int, default=0, help="run N agent-only trials itself")
    args = parser.parse_args(argv)
    wait_for(args.wait_for)
    errors: list[str] = []
    asyncio.run(_run(ctl, args, errors))
    return {"errors": errors}


async def _run(ctl: Control, args: argparse.Namespace, errors: list[str]) -> None:
    human = args.drive == 0
    middle = StreamMiddle(args.agent, args.env, args.agents, human)
    if human:
        server = grpc.aio.server(options=OPTIONS)
        server.add_generic_rpc_handlers((_handler(middle),))
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
