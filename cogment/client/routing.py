"""Where a Connection's calls go: the orchestrators it was given, and each trial's owner.

One orchestrator (one `host:port` whose name has one address): every call goes there, as
in Cogment 0.5; an orchestrator asked about a trial another one owns forwards the call.
Several (a list, or a DNS name with several addresses): new trials are spread over them in
turn, and every later call of a trial goes to its owner, named in the trial's id
(`cogment.ownership`).
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import threading
from collections.abc import Sequence
from typing import Any, Callable, Optional

import grpc

from cogment.api import orchestrator_pb2_grpc
from cogment.endpoint import Endpoint
from cogment.ownership import owner_of

# Calls that start something or ask the orchestrator itself, rather than one trial.
_UNROUTED = ("Start", "GetTrialParams", "Version")


def resolves_to_several(endpoint: Endpoint) -> bool:
    """Whether `endpoint`'s host name has several addresses (all of this machine's loopback
    addresses, e.g. `localhost`'s 127.0.0.1 and ::1, count as one)."""
    host = endpoint.host.strip("[]")
    try:
        ipaddress.ip_address(host)
        return False  # a literal address
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, endpoint.port, type=socket.SOCK_STREAM)
    except OSError:
        return False  # gRPC says it better when the calls fail
    addresses = {info[4][0] for info in infos}
    distinct = {"loopback" if ipaddress.ip_address(a).is_loopback else a for a in addresses}
    return len(distinct) > 1


class Routes:
    """The stubs a Connection calls through, chosen per call (thread-safe).

    Args:
        endpoints: the orchestrators given (one or more).
        open_channel: opens a channel to a `host:port` (with the Connection's TLS and
            options); `dns:///host:port` with several addresses for a DNS name.
    """

    def __init__(
        self, endpoints: Sequence[Endpoint], open_channel: Callable[[str, bool], grpc.Channel]
    ) -> None:
        self._open = open_channel
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, Any] = {}
        self._started_on: dict[str, Any] = {}  # trial id -> stub, for ids naming no owner
        if len(endpoints) == 1 and resolves_to_several(endpoints[0]):
            # gRPC resolves the name and spreads calls over its addresses (round robin)
            self._start = [self._stub(f"dns:///{endpoints[0].address}", balanced=True)]
            self.routing = True
        else:
            self._start = [self._stub(e.address) for e in endpoints]
            self.routing = len(endpoints) > 1
        self._next = itertools.cycle(range(len(self._start)))

    @classmethod
    def through(cls, stub: Any) -> Routes:
        """Routes sending every call through `stub` (a channel or a service passed in: the
        Connection owns no channel)."""
        routes = cls.__new__(cls)
        routes._open = lambda target, balanced: None  # type: ignore[assignment,return-value]
        routes._lock = threading.Lock()
        routes._channels = {}
        routes._stubs = {}
        routes._started_on = {}
        routes._start = [stub]
        routes._next = itertools.cycle([0])
        routes.routing = False
        return routes

    def _stub(self, target: str, balanced: bool = False) -> Any:
        with self._lock:
            stub = self._stubs.get(target)
            if stub is None:
                channel = self._open(target, balanced)
                self._channels[target] = channel
                stub = self._stubs[target] = orchestrator_pb2_grpc.TrialStub(channel)
        return stub

    def for_call(self, method: str, request: Any) -> Any:
        """The stub for `method(request)`: the next orchestrator for a new trial, the
        trial's owner for a call about it."""
        if method in _UNROUTED or not self.routing:
            if len(self._start) == 1:
                return self._start[0]
            with self._lock:
                return self._start[next(self._next)]
        return self.for_trial(request.trial_id)

    def for_trial(self, trial_id: str) -> Any:
        """The stub that reaches the owner of `trial_id`."""
        if not self.routing:
            return self._start[0]
        owner = owner_of(trial_id)
        if owner is not None:
            return self._stub(owner)
        with self._lock:
            stub = self._started_on.get(trial_id)
        return stub if stub is not None else self._start[0]

    def started(self, trial_id: str, stub: Any) -> None:
        """Records where a trial whose id names no owner was started (a 0.5 orchestrator)."""
        if self.routing and owner_of(trial_id) is None:
            with self._lock:
                self._started_on[trial_id] = stub

    def forget(self, trial_id: str) -> None:
        with self._lock:
            self._started_on.pop(trial_id, None)

    def close(self) -> None:
        """Closes every channel opened here."""
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
            self._stubs.clear()
        for channel in channels:
            channel.close()

    @property
    def one_channel(self) -> Optional[grpc.Channel]:
        """The only channel, when there is one (a single orchestrator)."""
        with self._lock:
            return next(iter(self._channels.values())) if len(self._channels) == 1 else None
