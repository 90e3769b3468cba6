"""The processes of tests/e2e/test_past_one_machine.py: service replicas, orchestrators and
clients of the test project, each on its own loopback address.

python tests/e2e/replica_roles.py GENERATED_DIR ROLE ARGS...

* `env HOST RECORD`: a BoardEnv and a pre-trial hook on HOST (free ports); prints
  `ports <env port> <hook port>`. The hook gives trials of the user "two-humans" a second
  human player slot.
* `agent HOST RECORD`: a PlayerAgent on HOST; prints `ports <port>`.
* `orchestrator HOST ENV AGENT HOOKS`: a `cogment.Orchestrator` on HOST (a free port) whose
  trials are a human player and an agent player, calling ENV, AGENT and the pre-trial hook
  HOOKS (endpoints, lists of replicas); prints `endpoint <host:port>`.
* `client ORCHESTRATORS TRIALS THREADS`: plays TRIALS trials (3 ticks each, then `end()`)
  from THREADS threads through one Connection to the comma-separated ORCHESTRATORS; prints
  one JSON line per trial (`{"id": ...}`), then `done`.

Services append one line per call they serve to RECORD: `<trial id> <what>` (their own
record of the trials they served). Every role runs until SIGTERM (or SIGKILL).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [sys.argv[1], os.path.join(os.path.dirname(HERE), "project")]

import cog_settings  # noqa: E402
from data_pb2 import EnvConfig, Move, TrialConfig  # noqa: E402
from services import BoardEnv, Hooks, PlayerAgent  # noqa: E402

import cogment  # noqa: E402
from cogment.api import common_pb2  # noqa: E402
from cogment.client import Connection  # noqa: E402

TIMEOUT = 20.0
TWO_HUMANS = "two-humans"


class Record:
    """Lines `<trial id> <what>` appended to a file, one write each (several threads)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()

    def __call__(self, trial_id: str, what: str) -> None:
        with self._lock:
            self._file.write(f"{trial_id} {what}\n")


def _wait_for_sigterm() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


def serve_env(host: str, record: Record) -> None:
    class Env(BoardEnv):
        def start(self, config: Any) -> Any:
            record(self.trial.id, "env start")
            return super().start(config)

        def update(self, actions: Any) -> Any:
            record(self.trial.id, "env update")
            return super().update(actions)

    class TwoHumans(Hooks):
        def pre_trial(self, trial_id: str, user_id: str, trial_params: Any) -> Any:
            record(trial_id, "hook")
            trial_params = super().pre_trial(trial_id, user_id, trial_params)
            if user_id == TWO_HUMANS:
                trial_params.actors.insert(0, cogment.ActorParameters("player", "human"))
            return trial_params

    env = cogment.GrpcServer(Env, cog_settings, port=0, host=host).start()
    hooks = cogment.GrpcServer(TwoHumans, cog_settings, port=0, host=host).start()
    print(f"ports {env.port} {hooks.port}", flush=True)
    _wait_for_sigterm()
    hooks.stop()
    env.stop()


def serve_agent(host: str, record: Record) -> None:
    class Agent(PlayerAgent):
        def decide(self, observation: Any) -> Any:
            record(self.trial.id, f"decide {self.actor.actor_id}")
            return super().decide(observation)

    agent = cogment.GrpcServer(Agent, cog_settings, port=0, host=host).start()
    print(f"ports {agent.port}", flush=True)
    _wait_for_sigterm()
    agent.stop()


def run_orchestrator(host: str, env: str, agent: str, hooks: str) -> None:
    params = common_pb2.TrialParams(max_inactivity=30)
    params.environment.endpoint = env
    params.environment.config.content = EnvConfig(size=4).SerializeToString()
    params.actors.add(actor_class="player", endpoint="human")
    params.actors.add(actor_class="player", endpoint=agent)
    params.trial_config.content = TrialConfig(rounds=0).SerializeToString()
    orch = cogment.Orchestrator(
        cog_settings, port=0, host=host, response_timeout=TIMEOUT, default_trial_params=params,
        pre_hooks=[hooks], datalog_endpoint="",
    ).start()  # fmt: skip
    print(f"endpoint {orch.endpoint}", flush=True)
    _wait_for_sigterm()
    orch.stop()


def run_client(orchestrators: str, trials: int, threads: int) -> int:
    lock = threading.Lock()

    def play(conn: Connection) -> None:
        trial = conn.start_trial("player")
        for t in range(3):
            trial.do_action(Move(cell=t))
        trial.end()
        with lock:
            print(json.dumps({"id": trial.id}), flush=True)

    connection = Connection(cog_settings, orchestrators.split(","), timeout=TIMEOUT)
    with connection as conn, ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(play, conn) for _ in range(trials)]:
            done.result(TIMEOUT * 3)
    print("done", flush=True)
    return 0


def main() -> int:
    role, args = sys.argv[2], sys.argv[3:]
    if role == "env":
        serve_env(args[0], Record(args[1]))
    elif role == "agent":
        serve_agent(args[0], Record(args[1]))
    elif role == "orchestrator":
        run_orchestrator(*args)
    elif role == "client":
        return run_client(args[0], int(args[1]), int(args[2]))
    else:
        raise SystemExit(f"unknown role {role!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
