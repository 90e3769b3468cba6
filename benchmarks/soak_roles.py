"""The processes of a soak run (`benchmarks.soak`), as `benchmarks.worker` roles.

Roles:
  soak-env, soak-agent, soak-hook   the soak project's Environment, Agent and TrialHooks
                                    served by `cogment.GrpcServer`; stats: `sessions`, `calls`
  soak-orchestrator                 `cogment.Orchestrator` on the soak's cogment.yaml; stats:
                                    `trials` (live trials)
  soak-client                       threads that start and end trials without pause, each
                                    with one of the endings of `ENDINGS`; commands `prime`
                                    (see `_prime`), `pause` (start no more trials) and
                                    `resume` (it starts paused); its result tells every
                                    outcome

The client checks each trial's outcome against its ending; anything else is `unexpected`
(the soak fails on it).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import math
import random
import re
import sys
import threading
import time
from typing import Any, Callable, Optional

from benchmarks.services import _settings
from benchmarks.worker import Control, wait_for

ENDINGS = ("end", "env", "max_steps", "vanish", "victim")
"""How a soak trial ends:
  end        the client calls `end()` after some ticks
  env        the environment ends it (`end_trial`) after some ticks
  max_steps  the trial's `max_steps` ends it
  vanish     the client closes its Connection without ending it: `max_inactivity` reaps it
  victim     its agent is the service the soak kills and restarts: it ends by the client's
             `end()`, or fails with TrialError when the agent is killed under it, or its
             start is refused while the agent is down
"""
DECK = ("end", "env", "max_steps", "vanish", "end", "env", "max_steps", "end", "env", "max_steps")
"""The endings a thread's trials go through, in turn (each thread starts elsewhere in the
deck). The first `--victim-threads` threads of a client run only victim trials, so that a
victim trial is under way at nearly every kill."""
SLOW_EVERY = 10  # one trial in ten (each thread's 2nd, 12th, ...) waits on a slow hook
LONG_INACTIVITY = 120  # max_inactivity of the trials that are not meant to be reaped
CALL_TIMEOUT = 30.0  # every client call is bounded
MAX_EVENTS = 100_000  # victim events kept for the soak's checks (newest dropped after that)
MAX_UNEXPECTED = 50
REFUSED_PAUSE = 0.1  # s a victim thread waits after a refused start (while the agent is down)


class _Calls:
    n = 0


def _service_classes(cog_settings: Any, victim: str) -> dict[str, type]:
    """The soak project's services, defined against its generated settings."""
    import cogment

    player = cog_settings.actor_classes.player
    act = player.action_space(x=1)
    obs_type = player.observation_space
    env_config_type = cog_settings.environment.config_type

    class SoakAgent(cogment.Agent):  # type: ignore[misc,name-defined,unused-ignore]
        actor_class = player

        def __init__(self, trial: Any, actor: Any, config: Any) -> None:
            super().__init__(trial, actor, config)
            _delay(trial.trial_config)

        def decide(self, observation: Any) -> Any:
            _Calls.n += 1
            self.trial.actors.player[0].add_feedback(value=1.0, confidence=1.0)
            return act

    class SoakEnv(cogment.Environment):  # type: ignore[misc,name-defined,unused-ignore]
        def start(self, config: Any) -> Any:
            _Calls.n += 1
            _delay(self.trial.trial_config)
            self.end_after = config.end_after if config is not None else 0
            self.n = 0
            return obs_type(tick=0)

        def update(self, actions: Any) -> Any:
            _Calls.n += 1
            self.n += 1
            if self.end_after and self.n >= self.end_after:
                self.end_trial = True
            return obs_type(tick=self.n)

    class SoakHooks(cogment.TrialHooks):  # type: ignore[misc,name-defined,unused-ignore]
        def pre_trial(self, trial_id: str, user_id: str, trial_params: Any) -> Any:
            _Calls.n += 1
            config = trial_params.trial_config
            if config is None:
                return trial_params
            if config.hook_delay > 0:
                time.sleep(min(config.hook_delay, 30.0))
            trial_params.max_steps = config.max_steps
            trial_params.max_inactivity = config.max_inactivity
            trial_params.environment.config = env_config_type(end_after=config.end_after)
            if config.victim:
                for actor in trial_params.actors:
                    if actor.endpoint != "human":
                        actor.endpoint = victim
            return trial_params

    return {"agent": SoakAgent, "env": SoakEnv, "hook": SoakHooks}


def _delay(trial_config: Any) -> None:
    """The `start_delay` a trial config asks for (to fill the services' call pools)."""
    if trial_config is not None and trial_config.start_delay > 0:
        time.sleep(min(trial_config.start_delay, 30.0))


def _serve(ctl: Control, argv: list[str], which: str) -> None:
    parser = argparse.ArgumentParser(prog=f"soak-{which}")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--victim", default="", help="hook: the victim agent's endpoint")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    import cogment

    service = _service_classes(_settings(args.settings), args.victim)[which]
    server = cogment.GrpcServer(service, _settings(args.settings), port=args.port, host="127.0.0.1")
    ctl.stats = lambda: {
        "sessions": server.session_count,
        "calls": _Calls.n,
        "py_threads": _thread_groups(),
    }
    server.start()
    ctl.ready(port=server.port)
    ctl.stop.wait()
    server.stop()


_THREAD_ID = re.compile(r"[-_](?:[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|[0-9a-f]{6,}|\d+)$")


def _thread_groups() -> dict[str, int]:
    """Python threads by name, without their number or id (`cogment-SoakEnv_3` ->
    `cogment-SoakEnv`, `cogment-heartbeat-1e3aec` -> `cogment-heartbeat`)."""
    groups: collections.Counter[str] = collections.Counter()
    for thread in threading.enumerate():
        groups[_THREAD_ID.sub("", thread.name)] += 1
    return dict(groups)


def role_env(ctl: Control, argv: list[str]) -> None:
    _serve(ctl, argv, "env")


def role_agent(ctl: Control, argv: list[str]) -> None:
    _serve(ctl, argv, "agent")


def role_hook(ctl: Control, argv: list[str]) -> None:
    _serve(ctl, argv, "hook")


def role_orchestrator(ctl: Control, argv: list[str]) -> None:
    """`cogment.Orchestrator` on the soak's cogment.yaml, in this process."""
    parser = argparse.ArgumentParser(prog="soak-orchestrator")
    parser.add_argument("--file", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    import cogment

    orchestrator = cogment.Orchestrator(args.file, port=args.port)
    orchestrator.start()
    ctl.stats = lambda: {"trials": orchestrator.trial_count, "py_threads": _thread_groups()}
    ctl.ready(port=orchestrator.port)
    ctl.stop.wait()
    orchestrator.stop()


class _Tally:
    """What a client process saw, for its stats and its result (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.unexpected: list[str] = []
        self.unexpected_count = 0
        self.victim_events: list[tuple[float, str]] = []  # (time.time(), what): see victim()
        self.start_latency = _Histogram()  # trials without a slow hook
        self.slow_start_latency = _Histogram()
        self.reap_lag = _Histogram()  # s from max_inactivity to a vanished trial seen ended
        self.ticks = 0
        self.busy = 0
        self.attempts: collections.Counter[str] = collections.Counter()  # trials tried, by kind

    def outcome(self, kind: str, what: str) -> None:
        with self.lock:
            self.outcomes[kind][what] += 1

    def victim(self, what: str) -> None:
        """Counts a victim trial's outcome; keeps the time of its failures and refusals, and
        of the first start after them (what the soak checks against its kills)."""
        with self.lock:
            self.outcomes["victim"][what] += 1
            last = self.victim_events[-1][1] if self.victim_events else "started"
            kept = what in ("failed", "refused") or (what == "started" and last != "started")
            if kept and len(self.victim_events) < MAX_EVENTS:
                self.victim_events.append((time.time(), what))

    def wrong(self, kind: str, text: str) -> None:
        with self.lock:
            self.outcomes[kind]["unexpected"] += 1
            self.unexpected_count += 1
            if len(self.unexpected) < MAX_UNEXPECTED:
                self.unexpected.append(f"{time.strftime('%H:%M:%S')} {kind}: {text}")


class _Histogram:
    """Durations in log-spaced bins (5 % wide, 1 ms to ~2 h): quantiles in constant memory,
    so that a long soak does not grow the client processes it samples."""

    STEP = 1.05
    FLOOR = 0.001

    def __init__(self) -> None:
        self._bins: collections.Counter[int] = collections.Counter()
        self.n = 0
        self.max = 0.0

    def append(self, value: float) -> None:
        index = 0 if value <= self.FLOOR else 1 + int(math.log(value / self.FLOOR, self.STEP))
        self._bins[min(index, 320)] += 1
        self.n += 1
        self.max = max(self.max, value)

    def quantiles(self) -> dict[str, Any]:
        """n, p50, p95 (each the upper edge of its bin) and max."""
        if not self.n:
            return {"n": 0}

        def at(q: float) -> float:
            seen, wanted = 0, q * self.n
            for index in sorted(self._bins):
                seen += self._bins[index]
                if seen >= wanted:
                    return round(min(self.max, self.FLOOR * self.STEP**index), 4)
            return round(self.max, 4)

        return {"n": self.n, "p50": at(0.5), "p95": at(0.95), "max": round(self.max, 4)}


class _Vanished:
    """Checks that each trial whose client vanished is reaped by its max_inactivity: once it
    is due, Join must answer NOT_FOUND naming max_inactivity (a live trial answers that its
    slot is taken; Join does not count as activity)."""

    def __init__(self, connection: Any, player: Any, tally: _Tally, stop: threading.Event) -> None:
        self._connection = connection
        self._player = player
        self._tally = tally
        self._stop = stop
        self._lock = threading.Lock()
        self._due: collections.deque[tuple[float, float, str]] = collections.deque()
        self._thread = threading.Thread(target=self._run, name="soak-vanished", daemon=True)
        self._thread.start()

    def add(self, trial_id: str, inactivity: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._due.append((now + inactivity, now + inactivity + CALL_TIMEOUT, trial_id))

    def __len__(self) -> int:
        with self._lock:
            return len(self._due)

    def _run(self) -> None:
        from cogment.errors import CogmentError, CogmentRpcError

        while not self._stop.wait(0.25):
            with self._lock:
                due = self._due[0] if self._due and self._due[0][0] <= time.monotonic() else None
            if due is None:
                continue
            when, deadline, trial_id = due
            verdict: Optional[str] = None  # None: ask again later
            try:
                trial = self._connection.join_trial(self._player, trial_id, 0)
                trial.end()
                verdict = "the trial could be joined: its slot was free"
            except CogmentRpcError as error:
                if error.code.name == "NOT_FOUND" and "max_inactivity" in error.message:
                    verdict = ""
                elif error.code.name != "FAILED_PRECONDITION":  # (live: its slot is taken)
                    verdict = f"Join answered {error}"
            except CogmentError as error:
                verdict = f"Join raised {error!r}"
            if verdict is None and time.monotonic() > deadline:
                verdict = f"not reaped {CALL_TIMEOUT:g} s after its max_inactivity"
            with self._lock:
                if verdict is None:  # retry later, after the others due
                    self._due.rotate(-1)
                    continue
                self._due.popleft()
            if verdict:
                self._tally.wrong("vanish", f"trial {trial_id}: {verdict}")
            else:
                self._tally.outcome("vanish", "reaped")
                with self._tally.lock:  # (checked every 0.25 s: an upper bound)
                    self._tally.reap_lag.append(time.monotonic() - when)


def role_client(ctl: Control, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="soak-client")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--victim", required=True, help="host:port of the victim agent")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pace", type=float, default=0.01, help="seconds between actions")
    parser.add_argument("--index", type=int, default=0, help="this client's index")
    parser.add_argument("--victim-threads", type=int, default=1, help="threads on the victim")
    parser.add_argument("--hook-delay", type=float, default=1.5)
    parser.add_argument("--vanish-inactivity", type=int, default=3)
    parser.add_argument("--prime-trials", type=int, default=0, help="trials the `prime` starts")
    parser.add_argument("--prime-delay", type=float, default=1.5)
    args = parser.parse_args(argv)
    wait_for([args.target])
    from cogment.client import Connection

    cog_settings = _settings(args.settings)
    tally = _Tally()
    running = threading.Event()  # the threads start trials while it is set (not at first)
    ctl.commands["pause"] = running.clear
    ctl.commands["resume"] = running.set

    def connect() -> Any:
        return Connection(cog_settings, args.target, timeout=CALL_TIMEOUT)

    checker_connection = connect()
    player = cog_settings.actor_classes.player
    vanished = _Vanished(checker_connection, player, tally, ctl.stop)
    runner = _TrialRunner(cog_settings, args, tally, vanished, connect)
    ctl.commands["prime"] = lambda: _prime(runner, checker_connection, args, tally)

    def loop(i: int) -> None:
        rng = random.Random(args.seed * 1000 + i)
        victim_thread = i < args.victim_threads
        offset = args.index * args.threads + i  # the threads start at different endings
        connection = connect()
        n = 0
        try:
            while not ctl.stop.is_set():
                if not running.wait(0.2):
                    continue
                kind = "victim" if victim_thread else DECK[(offset + n) % len(DECK)]
                slow = n % SLOW_EVERY == 1
                n += 1
                with tally.lock:
                    tally.busy += 1
                    tally.attempts[kind] += 1
                try:
                    runner.run(kind, rng, connection, slow)
                except Exception as error:  # a bug of the soak itself: counted, never silent
                    tally.wrong(kind, f"soak client error {error!r}")
                finally:
                    with tally.lock:
                        tally.busy -= 1
        finally:
            connection.close()

    def stats() -> dict[str, Any]:
        with tally.lock:
            return {
                "busy": tally.busy,
                "checks": len(vanished),
                "trials": sum(tally.attempts.values()),
                "unexpected": tally.unexpected_count,
                "py_threads": _thread_groups(),
            }

    ctl.stats = stats
    threads = [
        threading.Thread(target=loop, args=(i,), name=f"soak-client-{i}", daemon=True)
        for i in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    ctl.ready(threads=args.threads)
    ctl.stop.wait()
    for thread in threads:
        thread.join(CALL_TIMEOUT * 2)
    checker_connection.close()
    with tally.lock:
        return {
            "attempts": dict(tally.attempts),
            "outcomes": {k: dict(v) for k, v in tally.outcomes.items()},
            "unexpected": list(tally.unexpected),
            "unexpected_count": tally.unexpected_count,
            "victim_events": list(tally.victim_events),
            "start_latency": tally.start_latency.quantiles(),
            "slow_start_latency": tally.slow_start_latency.quantiles(),
            "reap_lag": tally.reap_lag.quantiles(),
            "ticks": tally.ticks,
            "pending_checks": len(vanished),
            "stuck_threads": sum(t.is_alive() for t in threads),
        }


def _prime(runner: _TrialRunner, connection: Any, args: argparse.Namespace, tally: _Tally) -> None:
    """Starts `--prime-trials` trials at once whose hook, environment start and agent set-up
    each take `--prime-delay` s, and ends them: with as many trials from every client as the
    services' call pools have threads, the pools reach their full size (they grow on demand
    and never shrink), so that later a service's thread count can only grow by a leak."""
    threads = [
        threading.Thread(
            target=runner.prime, args=(connection,), name=f"soak-prime-{i}", daemon=True
        )
        for i in range(args.prime_trials)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CALL_TIMEOUT * 2)
    if any(thread.is_alive() for thread in threads):
        tally.wrong("prime", "a priming trial did not end in time")


class _TrialRunner:
    """Runs one trial of a given ending and checks how it went."""

    def __init__(
        self,
        cog_settings: Any,
        args: argparse.Namespace,
        tally: _Tally,
        vanished: _Vanished,
        connect: Callable[[], Any],
    ) -> None:
        self._settings = cog_settings
        self._args = args
        self._tally = tally
        self._vanished = vanished
        self._connect = connect
        self._player = cog_settings.actor_classes.player
        self._act = self._player.action_space(x=1)
        self._config_type = cog_settings.trial.config_type
        self._note_type = _note_type(cog_settings)

    def prime(self, connection: Any) -> None:
        """One priming trial (see `_prime`): slow to start, then ended."""
        from cogment.errors import CogmentError

        delay = self._args.prime_delay
        with self._tally.lock:
            self._tally.attempts["prime"] += 1
        config = self._config_type(
            max_inactivity=LONG_INACTIVITY, hook_delay=delay, start_delay=delay
        )
        try:
            trial = connection.start_trial(self._player, trial_cfg=config)
            trial.end()
            self._tally.outcome("prime", "ended")
        except CogmentError as error:
            self._tally.wrong("prime", f"{error!r}")

    def run(self, kind: str, rng: random.Random, connection: Any, slow: bool) -> None:
        from cogment.errors import CogmentError, TrialError

        args = self._args
        config = self._config_type(max_inactivity=LONG_INACTIVITY)
        ticks = rng.randint(2, 20)
        if kind == "env":
            config.end_after = ticks
        elif kind == "max_steps":
            config.max_steps = ticks
        elif kind == "vanish":
            config.max_inactivity = args.vanish_inactivity
            connection = self._connect()
        elif kind == "victim":
            config.victim = True
            ticks = rng.randint(20, 100)
        if slow:
            config.hook_delay = args.hook_delay
        tally = self._tally
        started = time.monotonic()
        try:
            trial = connection.start_trial(self._player, trial_cfg=config)
        except CogmentError as error:
            if kind == "victim" and isinstance(error, TrialError) and args.victim in str(error):
                tally.victim("refused")
                time.sleep(REFUSED_PAUSE)
            else:
                tally.wrong(kind, f"start_trial raised {error!r}")
            if kind == "vanish":
                connection.close()
            return
        latency = time.monotonic() - started
        with tally.lock:
            (tally.slow_start_latency if slow else tally.start_latency).append(latency)
        if kind == "victim":
            tally.victim("started")
        try:
            self._play(kind, trial, ticks, connection)
        except TrialError as error:
            if kind == "victim" and args.victim in str(error):
                tally.victim("failed")
            else:
                tally.wrong(kind, f"TrialError {error}")
        except CogmentError as error:
            tally.wrong(kind, f"{error!r}")
        except _Wrong as error:
            tally.wrong(kind, f"trial {trial.id}: {error}")
        finally:
            if kind == "vanish":
                connection.close()
            elif not trial.is_over:
                with contextlib.suppress(CogmentError):
                    trial.end()

    def _play(self, kind: str, trial: Any, ticks: int, connection: Any) -> None:
        tally = self._tally
        pace = self._args.pace
        for tick in range(ticks):
            if tick % 5 == 4:  # a message to the environment, feedback to the agent
                trial.multi_cast(self._note_type(text="hello"), send_list=[-1])
                trial.actors.player[1].add_feedback(value=1.0, confidence=1.0)
            trial.do_action(self._act)
            with tally.lock:
                tally.ticks += 1
            if trial.is_over and tick < ticks - 1:
                raise _Wrong(f"over after {tick + 1} of {ticks} ticks: {trial.end_reason}")
            if pace:
                time.sleep(pace)
        if kind in ("env", "max_steps"):
            expected = "environment ended" if kind == "env" else f"max_steps ({ticks})"
            if not trial.is_over or trial.error is not None or expected not in trial.end_reason:
                raise _Wrong(f"after {ticks} ticks: over={trial.is_over} {trial.end_reason!r}")
            tally.outcome(kind, "ended")
        elif kind == "vanish":
            self._vanished.add(trial.id, self._args.vanish_inactivity)
            tally.outcome(kind, "vanished")
        else:
            trial.end()
            if trial.error is not None or trial.end_reason != "ended by this client":
                raise _Wrong(f"end(): {trial.end_reason!r} {trial.error!r}")
            if kind == "victim":
                tally.victim("ended")
            else:
                tally.outcome(kind, "ended")


def _note_type(cog_settings: Any) -> Any:
    """The project's `soak.Note` message class."""
    module = sys.modules[cog_settings.actor_classes.player.action_space.__module__]
    return module.Note


class _Wrong(Exception):
    """A trial that did not go as its ending says."""


ROLES: dict[str, Callable[[Control, list[str]], Optional[dict[str, Any]]]] = {
    "soak-env": role_env,
    "soak-agent": role_agent,
    "soak-hook": role_hook,
    "soak-orchestrator": role_orchestrator,
    "soak-client": role_client,
}
