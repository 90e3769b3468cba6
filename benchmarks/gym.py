"""The Gymnasium bridge's benchmark: CartPole steps per second, three ways.

* cogment: `cogment gym serve CartPole-v1` (GymEnvironment in a GrpcServer), `cogment
  orchestrator` on the project `cogment gym init` writes, and a `TrialEnv` client;
* the floor, the same shape with nothing but gRPC: a raw client sending `Trial.Action`, the
  floor's middle (benchmarks.middle, no agents), and a bare grpcio environment stepping
  CartPole and answering the same `cogment_bridges.Observation` bytes;
* in-process: `gymnasium.make("CartPole-v1")` stepped in a loop (what the network costs).

Every client plays the same policy (push toward the pole's lean: episodes run to CartPole's
500-step limit or close) and starts a new episode when one ends (cogment: a new trial; the
floor's env: a reset in place). Roles are run by `benchmarks.worker`; gymnasium is imported
only by them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from typing import Any, Callable, Optional

import grpc

from benchmarks.floor import OPTIONS, Counter, _serve
from benchmarks.worker import Control, wait_for

CALL_TIMEOUT = 30.0
ENV_ID = "CartPole-v1"


def policy(observation: Any) -> int:
    """Leans with the pole: keeps CartPole up for hundreds of steps."""
    return int(observation[2] + 0.5 * observation[3] > 0)


# --------------------------------------------------------------------------- floor


class _FloorEnvLogic:
    """CartPole behind a bare Environment servicer: decode the action, step, encode."""

    def __init__(self, counter: Counter) -> None:
        import gymnasium

        from cogment.bridges.messages import module

        self.pb = module()
        self.counter = counter
        self.make = lambda: gymnasium.make(ENV_ID).unwrapped  # no checkers, as a floor would
        self.envs: dict[str, Any] = {}
        self.steps: dict[str, int] = {}

    def _reply(self, reply: Any, observation: Any, reward: float, over: bool, tick: int) -> Any:
        pb = self.pb
        message = pb.Observation(reward=reward, terminated=over)
        array = message.value.array
        array.dtype = "float32"
        array.shape.append(4)
        array.data = observation.tobytes()
        obs_set = reply.observation_set
        obs_set.tick_id = tick
        obs_set.timestamp = time.time_ns()
        obs_set.observations.add(content=message.SerializeToString(), snapshot=True)
        obs_set.actors_map.append(0)
        return reply

    def start(self, request: Any) -> Any:
        from cogment.api import environment_pb2

        env = self.envs.get(request.trial_id) or self.make()
        self.envs[request.trial_id] = env
        self.steps[request.trial_id] = 0
        observation, _ = env.reset(seed=0)
        return self._reply(environment_pb2.EnvStartReply(), observation, 0.0, False, 0)

    def update(self, request: Any) -> Any:
        from cogment.api import environment_pb2

        self.counter.n += 1
        env = self.envs[request.trial_id]
        action = self.pb.Action.FromString(request.action_set.actions[0]).value.integer
        observation, reward, terminated, _truncated, _ = env.step(action)
        tick = self.steps[request.trial_id] = self.steps[request.trial_id] + 1
        if terminated or tick >= 500:
            observation, _ = env.reset()  # a new episode in place: the floor never ends trials
            self.steps[request.trial_id] = 0
        reply = environment_pb2.EnvUpdateReply()
        reply.feedbacks.add(actor_id=0, tick_id=-1, value=float(reward), confidence=1.0)
        return self._reply(reply, observation, float(reward), bool(terminated), tick)


def role_floor_env(ctl: Control, argv: list[str]) -> None:
    from cogment.api import environment_pb2, environment_pb2_grpc

    parser = argparse.ArgumentParser(prog="floor-gym-env")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    counter = Counter()
    ctl.stats = counter.stats
    logic = _FloorEnvLogic(counter)

    class Env(environment_pb2_grpc.EnvironmentServicer):
        def Start(self, request: Any, context: Any) -> Any:
            return logic.start(request)

        def Update(self, request: Any, context: Any) -> Any:
            return logic.update(request)

        def End(self, request: Any, context: Any) -> Any:
            return environment_pb2.EnvEndReply()

    servicer = Env()
    _serve(
        ctl,
        "sync",
        lambda s: environment_pb2_grpc.add_EnvironmentServicer_to_server(servicer, s),
        16,
        args.port,
    )


def role_floor_client(ctl: Control, argv: list[str]) -> dict[str, Any]:
    """One raw trial: Trial.Action with a cogment_bridges.Action, the observation decoded
    with numpy, the policy applied."""
    import numpy as np

    from cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
    from cogment.bridges.messages import module

    parser = argparse.ArgumentParser(prog="floor-gym-client")
    parser.add_argument("--wait-for", action="append", default=[])
    parser.add_argument("--target", required=True)
    args = parser.parse_args(argv)
    wait_for(args.wait_for)
    pb = module()
    actions = [pb.Action(value=pb.Value(integer=i)).SerializeToString() for i in (0, 1)]
    stub = orchestrator_pb2_grpc.TrialStub(grpc.insecure_channel(args.target, options=OPTIONS))
    errors: list[str] = []
    ready = threading.Event()

    def loop() -> None:
        action = 0
        request = orchestrator_pb2.TrialActionRequest(trial_id="g0", actor_id=0)
        try:
            while not ctl.stop.is_set():
                request.action.CopyFrom(common_pb2.Action(content=actions[action]))
                reply = stub.Action(request, timeout=CALL_TIMEOUT)
                message = pb.Observation.FromString(reply.observation.data.content)
                observation = np.frombuffer(message.value.array.data, np.float32).copy()
                action = policy(observation)
                ready.set()
        except Exception as error:
            errors.append(repr(error))
            ready.set()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    ready.wait(60.0)
    if errors:
        raise RuntimeError(errors[0])
    ctl.ready()
    ctl.stop.wait()
    thread.join(5.0)
    return {"errors": errors}


# --------------------------------------------------------------------------- cogment


class _Counted:
    n = 0


def role_env(ctl: Control, argv: list[str]) -> None:
    """`cogment gym serve CartPole-v1`, counting Updates."""
    parser = argparse.ArgumentParser(prog="gym-env")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    import cogment
    from cogment.bridges import settings
    from cogment.gym import GymEnvironment

    served = GymEnvironment(ENV_ID)

    class Counted(served):  # type: ignore[misc,valid-type]
        def update(self, actions: Any) -> Any:
            _Counted.n += 1
            return super().update(actions)

    server = cogment.GrpcServer(Counted, settings, port=args.port, host="127.0.0.1").start()
    ctl.stats = lambda: {"count": _Counted.n}
    ctl.ready(port=server.port)
    ctl.stop.wait()
    server.stop()


def role_client(ctl: Control, argv: list[str]) -> dict[str, Any]:
    """A TrialEnv playing the policy, episode after episode (each a trial)."""
    parser = argparse.ArgumentParser(prog="gym-client")
    parser.add_argument("--wait-for", action="append", default=[])
    parser.add_argument("--target", required=True)
    args = parser.parse_args(argv)
    wait_for([args.target, *args.wait_for])
    from cogment.bridges import settings
    from cogment.gym import TrialEnv

    env = TrialEnv(settings, args.target, timeout=CALL_TIMEOUT)
    errors: list[str] = []
    ready = threading.Event()
    episodes = [0]

    def loop() -> None:
        try:
            observation, _ = env.reset(seed=0)
            while not ctl.stop.is_set():
                observation, _, terminated, truncated, _ = env.step(policy(observation))
                ready.set()
                if terminated or truncated:
                    episodes[0] += 1
                    observation, _ = env.reset()
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")
            ready.set()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    ready.wait(60.0)
    if errors:
        raise RuntimeError(errors[0])
    ctl.ready()
    ctl.stop.wait()
    thread.join(5.0)
    env.close()
    return {"episodes": episodes[0], "errors": errors}


def role_inprocess(ctl: Control, argv: list[str]) -> dict[str, Any]:
    """CartPole stepped in this process, with the same policy."""
    import gymnasium

    env = gymnasium.make(ENV_ID)
    count = [0]
    ctl.stats = lambda: {"count": count[0]}

    def loop() -> None:
        observation, _ = env.reset(seed=0)
        while not ctl.stop.is_set():
            observation, _, terminated, truncated, _ = env.step(policy(observation))
            count[0] += 1
            if terminated or truncated:
                observation, _ = env.reset()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    ctl.ready()
    ctl.stop.wait()
    thread.join(5.0)
    return {}


def write_project(folder: str, env_port: int) -> str:
    """The project `cogment gym init CartPole-v1` writes, pointed at `env_port`; its yaml."""
    from cogment.bridges.gym_env import GymEnvironment
    from cogment.bridges.project import write_project as write

    write(folder, "gym", ENV_ID, GymEnvironment(ENV_ID).config, env_port=env_port, force=True)
    return f"{folder}/cogment.yaml"


def available() -> Optional[str]:
    """None when the gym extra is installed, else why the gym measurements cannot run."""
    for name in ("gymnasium", "numpy"):
        try:
            importlib.import_module(name)
        except ImportError:
            return f'{name} is not installed (pip install "cogment[gym]")'
    return None


ROLES: dict[str, Callable[[Control, list[str]], Optional[dict[str, Any]]]] = {
    "floor-gym-env": role_floor_env,
    "floor-gym-client": role_floor_client,
    "gym-env": role_env,
    "gym-client": role_client,
    "gym-inprocess": role_inprocess,
}

if __name__ == "__main__":
    sys.exit("run through python -m benchmarks")
