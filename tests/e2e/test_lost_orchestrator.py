"""A client idle between unary actions when its orchestrator goes away: it learns it from
its heartbeats, within a bounded time, and not from one failed heartbeat."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import types
from typing import Any, Callable

import grpc
import pytest

from cogment.client import Connection
from cogment.client.heartbeat import LOST_AFTER_SECONDS
from cogment.errors import TrialEndedError, TrialError
from tests.e2e.conftest import LOCALHOST
from tests.listeners import Ends, settle
from tests.waiting import TrialLookups

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
