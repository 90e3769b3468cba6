"""A client idle between unary actions when its orchestrator goes away: it learns it from
its heartbeats, within a bounded time, and not from one failed heartbeat."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
import types
from typing import Any, Callable, Optional

import grpc
import pytest

from cogment.client import ClientTrial, Connection
from cogment.client.heartbeat import LOST_AFTER_SECONDS
from cogment.errors import CogmentRpcError, TrialEndedError, TrialError
from tests.e2e.conftest import LOCALHOST
from tests.listeners import Ends, settle
from tests.waiting import TrialLookups, wait_until

Start = Callable[..., Any]
Connect = Callable[..., Connection]
BOUND = LOST_AFTER_SECONDS + 10.0  # seconds the client may take to notice


class Relay:
    """A TCP relay to a local port. `cut()` closes it and every connection through it: what
    is behind it then looks dead to the clients (connections refused)."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._listener = socket.create_server((LOCALHOST, 0))
        self._listener.settimeout(0.05)
        self.endpoint = f"{LOCALHOST}:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._cut = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        self._cut.set()
        self._acceptor.join(5)
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._cut.is_set():
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            upstream = socket.create_connection((LOCALHOST, self._target), timeout=5)
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_an_idle_client_learns_that_its_orchestrator_is_gone(
    orchestrator: Start, connect: Connect, cog_settings: types.ModuleType
) -> None:
    from data_pb2 import Move

    orch = orchestrator()
    relay = Relay(orch.port)
    # through the relay: the orchestrator dies at once for it (no word of its trials' end)
    far = Connection(cog_settings, relay.endpoint, timeout=30, heartbeat_interval=0.2)
    # direct: sees the orchestrator's orderly shutdown
    near = connect(orch, heartbeat_interval=0.2)
    lookups = TrialLookups(orch)
    try:
        trials = [conn.start_trial("player") for conn in (far, near)]
        ends = [Ends(), Ends()]
        for trial, listener in zip(trials, ends):
            assert trial.do_action(Move(cell=1)).observation.turn == 1
            trial.set_on_trial_end_event_listener(listener)
        for trial in trials:  # idle, heartbeats going: the first one's answer was handled
            seen = lookups.count(trial.id)  # (the action)
            lookups.wait(trial.id, seen + 2, 5, "2 heartbeats reached the orchestrator")
        assert not any(trial.is_over for trial in trials)

        gone = time.monotonic()
        relay.cut()
        orch.stop()
        assert ends[0].called.wait(BOUND) and ends[1].called.wait(BOUND)

        lost, stopped = trials
        # not on the first failed heartbeat: only after LOST_AFTER_SECONDS of them
        assert ends[0].calls[0].at - gone >= LOST_AFTER_SECONDS
        assert lost.is_over and isinstance(lost.error, TrialError)
        assert lost.error.code is grpc.StatusCode.UNAVAILABLE
        reason = f"lost the orchestrator at {relay.endpoint}: "
        assert lost.end_reason.startswith(reason)
        with pytest.raises(TrialError, match=f"trial {lost.id} ended: {re.escape(reason)}"):
            lost.do_action(Move(cell=2))

        # the direct client's heartbeats may have caught the trial's end before the server
        # stopped ("orchestrator shutdown"), else they lost the orchestrator too
        assert stopped.is_over
        if stopped.error is None:
            assert stopped.end_reason == "orchestrator shutdown"
            with pytest.raises(TrialEndedError, match="orchestrator shutdown"):
                stopped.do_action(Move(cell=2))
        else:
            assert stopped.end_reason.startswith(f"lost the orchestrator at {orch.endpoint}: ")
            with pytest.raises(TrialError, match="lost the orchestrator"):
                stopped.do_action(Move(cell=2))
        assert far.trials == near.trials == []
        for conn in (far, near):
            conn.close()  # joins its heartbeat thread: nothing more can come from it
        for trial in trials:
            settle(trial)
        assert [len(listener.calls) for listener in ends] == [1, 1]
    finally:
        relay.cut()
        far.close()


ORCHESTRATOR = r"""
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import cog_settings
import cogment
from cogment.api import common_pb2
params = common_pb2.TrialParams.FromString(bytes.fromhex(sys.argv[4]))
orch = cogment.Orchestrator(
    cog_settings, port=int(sys.argv[3]), default_trial_params=params, pre_hooks=[],
    datalog_endpoint="",
).start()
print(orch.port, flush=True)
sys.stdin.read()  # until killed
"""


class OrchestratorProcess:
    """`cogment.Orchestrator` in a process of its own, on a given port, to kill."""

    def __init__(self, port: int, params: Any, generated_dir: Any, project_dir: Any) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                ORCHESTRATOR,
                str(generated_dir),
                str(project_dir),
                str(port),
                params.SerializeToString().hex(),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert int(self.process.stdout.readline()) == port  # it serves

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


def test_a_restarted_orchestrator_is_usable_at_once_and_its_lost_trials_fail(
    cog_settings: types.ModuleType, services: Any, generated_dir: Any, project_dir: Any
) -> None:
    from tests.e2e.conftest import free_port, trial_params

    params = trial_params(cog_settings, services)
    port = free_port()
    first = OrchestratorProcess(port, params, generated_dir, project_dir)
    conn = Connection(cog_settings, f"{LOCALHOST}:{port}", timeout=10, heartbeat_interval=0.2)
    second = None
    try:
        idle = conn.start_trial("player")
        ends = Ends()
        idle.set_on_trial_end_event_listener(ends)
        first.kill()  # no word to anyone: its trials are gone with it
        second = OrchestratorProcess(port, params, generated_dir, project_dir)

        def start() -> Optional[ClientTrial]:
            with contextlib.suppress(CogmentRpcError):
                return conn.start_trial("player")
            return None

        # the connection reconnects within ~1 s
        started = wait_until(start, 4.0, "the restarted orchestrator is usable")
        started.end()
        # the idle trial's heartbeats reach the new orchestrator, which does not know it
        assert ends.called.wait(BOUND)
        assert isinstance(idle.error, TrialError)
        assert idle.end_reason == (
            f"the orchestrator at {LOCALHOST}:{port} does not know the trial "
            "(it restarted, or another orchestrator answers there)"
        )
    finally:
        conn.close()
        first.kill()
        if second is not None:
            second.kill()
