"""The cogment side of the benchmarks: SDK agent and environment, orchestrator, client.

Roles (run by `benchmarks.worker`):
  sdk-agent, sdk-env   the bench project's Agent/Environment served by `cogment.GrpcServer`
  orchestrator         `cogment orchestrator --file <scenario yaml> --port P`
  cogment-client       N trials driven by `cogment.client.Connection` (do_action loops),
                       or N agent-only trials it starts and watches; `--target` may list
                       several orchestrators (comma-separated)
  raw-client           N trials driven by raw `cogment.Trial` stubs, as a 0.5 client: Start on
                       one orchestrator, every Action sent to `--target` (the same, or another
                       one that forwards it)
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from typing import Any, Callable, Optional

import grpc

from benchmarks.worker import Control, wait_for

CALL_TIMEOUT = 30.0


def _settings(folder: str) -> Any:
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("cog_settings")


class _Counter:
    n = 0


def _service_classes(cog_settings: Any) -> tuple[type, type]:
    """The bench project's agent and environment, defined against its settings."""
    import cogment

    player = cog_settings.actor_classes.player
    act = player.action_space(x=1)
    obs_type = player.observation_space
    delta_type = player.observation_delta

    class BenchAgent(cogment.Agent):  # type: ignore[misc,name-defined,unused-ignore]
        actor_class = player

        def decide(self, observation: Any) -> Any:
            _Counter.n += 1
            return act

    class BenchEnv(cogment.Environment):  # type: ignore[misc,name-defined,unused-ignore]
        def start(self, config: Any) -> Any:
            payload = config.payload if config is not None and config.payload else 16
            self.delta = bool(config is not None and config.delta)
            self.blob = b"\x00" * payload
            self.patch = b"\x00" * max(1, payload // 100)
            self.n = 0
            return obs_type(data=self.blob, n=0)

        def update(self, actions: Any) -> Any:
            _Counter.n += 1
            self.n += 1
            if self.delta:
                return delta_type(patch=self.patch, n=self.n)
            return obs_type(data=self.blob, n=self.n)

    return BenchAgent, BenchEnv


def _serve_sdk(ctl: Control, argv: list[str], which: str) -> None:
    parser = argparse.ArgumentParser(prog=f"sdk-{which}")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    import cogment

    cog_settings = _settings(args.settings)
    agent_type, env_type = _service_classes(cog_settings)
    service = agent_type if which == "agent" else env_type
    server = cogment.GrpcServer(service, cog_settings, port=args.port, host="127.0.0.1")
    ctl.stats = lambda: {"count": _Counter.n}
    server.start()
    ctl.ready(port=server.port)
    ctl.stop.wait()
    server.stop()


def role_sdk_agent(ctl: Control, argv: list[str]) -> None:
    _serve_sdk(ctl, argv, "agent")


def role_sdk_env(ctl: Control, argv: list[str]) -> None:
    _serve_sdk(ctl, argv, "env")


def role_orchestrator(ctl: Control, argv: list[str]) -> None:
    """Runs the `cogment orchestrator` command line in this process."""
    parser = argparse.ArgumentParser(prog="orchestrator")
    parser.add_argument("--file", required=True)
    parser.add_argument("--port", type=int, required=True)
    args, extra = parser.parse_known_args(argv)
    from cogment import cli  # type: ignore[attr-defined,unused-ignore]

    def announce() -> None:
        channel = grpc.insecure_channel(f"127.0.0.1:{args.port}")
        try:
            grpc.channel_ready_future(channel).result(timeout=60.0)
        except grpc.FutureTimeoutError:
            return
        finally:
            channel.close()
        ctl.ready(port=args.port)

    threading.Thread(target=announce, daemon=True).start()
    ctl.on_stop.append(lambda: os.kill(os.getpid(), signal.SIGTERM))
    cli.main(["orchestrator", "--file", args.file, "--port", str(args.port), *extra])


def _drive(
    ctl: Control,
    concurrency: int,
    first: Callable[[int], Optional[Callable[[], Any]]],
    trials: list[Any],
    errors: list[str],
) -> int:
    """Plays `concurrency` trials, one thread each: `first(i)` starts trial i and makes its
    first action, and returns the step that makes the next one (None: the trial is only
    held). Once every trial is started, says ready, steps until the stop; returns the steps
    made."""
    counts = [0] * concurrency
    started = threading.Barrier(concurrency + 1)

    def run(i: int) -> None:
        try:
            step = first(i)
            started.wait(120.0)
            if step is None:
                return
            while not ctl.stop.is_set():
                step()
                counts[i] += 1
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")
            started.abort()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        started.wait(120.0)
    except threading.BrokenBarrierError:
        raise RuntimeError(f"starting trials failed: {errors[:3]}") from None
    ctl.ready(trials=len(trials))
    ctl.stop.wait()
    for thread in threads:
        thread.join(10.0)
    return sum(counts)


def role_cogment_client(ctl: Control, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="cogment-client")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--stream", action="store_true", help="use begin_actions_stream()")
    parser.add_argument("--agent-only", action="store_true")
    parser.add_argument("--wait-for", action="append", default=[], help="host:port to wait for")
    args = parser.parse_args(argv)
    targets = args.target.split(",")
    wait_for([*targets, *args.wait_for])
    from cogment.client import Connection  # type: ignore[attr-defined,unused-ignore]

    cog_settings = _settings(args.settings)
    player = cog_settings.actor_classes.player
    act = player.action_space(x=1)
    connection = Connection(cog_settings, targets if len(targets) > 1 else targets[0])
    errors: list[str] = []
    trials: list[Any] = []

    def first(i: int) -> Optional[Callable[[], Any]]:
        trial = connection.start_trial(player)
        trials.append(trial)
        if args.agent_only:
            return None
        if args.stream:
            trial.begin_actions_stream()
        trial.do_action(act)
        return lambda: trial.do_action(act)

    ticks = _drive(ctl, args.concurrency, first, trials, errors)
    enders = [threading.Thread(target=_end, args=(t, errors), daemon=True) for t in trials]
    for thread in enders:
        thread.start()
    for thread in enders:
        thread.join(10.0)
    _close(connection)
    return {"ticks": ticks, "errors": errors[:10]}


def role_raw_client(ctl: Control, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="raw-client")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--start", required=True, help="the orchestrator trials start on")
    parser.add_argument("--target", required=True, help="the orchestrator actions go to")
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)
    wait_for([args.start, args.target])
    from cogment.api import orchestrator_pb2, orchestrator_pb2_grpc

    cog_settings = _settings(args.settings)
    action = cog_settings.actor_classes.player.action_space(x=1).SerializeToString()
    channels = [grpc.insecure_channel(args.start), grpc.insecure_channel(args.target)]
    starter, target = (orchestrator_pb2_grpc.TrialStub(c) for c in channels)
    errors: list[str] = []
    trials: list[str] = []

    def first(i: int) -> Callable[[], Any]:
        metadata = [("session_id", f"raw-client-{i}")]
        reply = starter.Start(
            orchestrator_pb2.TrialStartRequest(user_id="raw"),
            timeout=CALL_TIMEOUT,
            metadata=metadata,
        )
        trials.append(reply.trial_id)
        request = orchestrator_pb2.TrialActionRequest(
            trial_id=reply.trial_id, actor_id=reply.actor_id
        )
        request.action.content = action
        target.Action(request, timeout=CALL_TIMEOUT, metadata=metadata)
        return lambda: target.Action(request, timeout=CALL_TIMEOUT, metadata=metadata)

    ticks = _drive(ctl, args.concurrency, first, trials, errors)
    for trial_id in trials:
        try:
            starter.End(orchestrator_pb2.TrialEndRequest(trial_id=trial_id), timeout=10.0)
        except grpc.RpcError as error:
            errors.append(f"end: {error.code().name}: {error.details()}")
    for channel in channels:
        channel.close()
    return {"ticks": ticks, "errors": errors[:10]}


def _end(trial: Any, errors: list[str]) -> None:
    try:
        trial.end()
    except Exception as error:
        errors.append(f"end: {type(error).__name__}: {error}")


def _close(connection: Any) -> None:
    close: Optional[Callable[[], None]] = getattr(connection, "close", None)
    if close is not None:
        try:
            close()
        except Exception as error:
            print(f"closing the connection failed: {error!r}", file=sys.stderr)


ROLES: dict[str, Callable[[Control, list[str]], Optional[dict[str, Any]]]] = {
    "sdk-agent": role_sdk_agent,
    "sdk-env": role_sdk_env,
    "orchestrator": role_orchestrator,
    "cogment-client": role_cogment_client,
    "raw-client": role_raw_client,
}
