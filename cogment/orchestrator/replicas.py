"""Service replicas behind one endpoint: each trial pinned to one replica of each service.

An environment's, agent's or pre-trial hook's endpoint may name several replicas of one
service: a host name with several addresses (a Kubernetes headless Service), or an explicit
list (`grpc://10.0.0.1:9001,10.0.0.2:9001`, see `cogment.endpoint`). A trial's environment
and agents live in the memory of the replica that got their `Start`, so every call of the
trial must go there. `Replicas`:

- resolves each endpoint once, at its first trial (off the event loop; that trial waits,
  at most `FIRST_CONTACT_TIMEOUT` s, for the replicas to be connected), then every
  `RESOLVE_INTERVAL` seconds in the background, and at once after a replica failed;
- pins the environment and each agent actor of a trial to one replica for the trial's whole
  life (`pin`, called with the trial's parameters, rewrites their endpoints to the replicas'
  addresses: the datalog records where each one ran), and each pre-trial
  hook call (`pick`); new trials go to the replica with the fewest live trials (in turn
  among equals);
- watches each replica's channel: a replica whose connection is lost, or that cannot be
  reached, gets no new trial until it is reachable again (its running trials fail as
  today, their reason naming the replica's address). When every replica is down, new
  trials are spread over all of them (and fail as with one endpoint).

An endpoint naming one address (an IP address, `localhost`, a name with one address) is
used as written: a trial costs one dict lookup more than without replicas. A name that
resolves to several addresses is dialed address by address; over TLS (`grpcs://`), the
certificate is still checked against the name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Coroutine
from typing import Any, Callable, NamedTuple, Optional, Protocol

import grpc

from cogment.api import common_pb2
from cogment.constants import HUMAN_ENDPOINT
from cogment.endpoint import GRPC_SCHEME, GRPCS_SCHEME, Endpoint, host_port, parse_service_endpoint

log = logging.getLogger("cogment.orchestrator")

RESOLVE_INTERVAL = 5.0
"""Seconds between two resolutions of the host names of replicated endpoints."""

RESOLVE_TIMEOUT = 5.0
"""Seconds a resolution may take (a name not resolved in time keeps its replicas)."""


Lookup = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host name (and port) into its addresses; raises OSError when it cannot."""


async def lookup_addresses(host: str, port: int) -> list[str]:
    """The addresses of `host` (getaddrinfo, in the event loop's executor)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


FIRST_CONTACT_TIMEOUT = 2.0
"""Seconds the first trial of a replicated endpoint waits, at most, for its replicas to be
connected (once per endpoint; a replica not connected by then gets trials once it is)."""


class Channels(Protocol):
    """What `Replicas` needs of the orchestrator's channels (`Endpoints`)."""

    def channel(self, endpoint: str) -> grpc.aio.Channel:
        """The shared channel to `grpc(s)://host:port`."""

    def verify_as(self, endpoint: str, name: str) -> None:
        """TLS calls to `endpoint` (an address) check the certificate against `name`."""

    async def forget(self, endpoint: str) -> None:
        """Closes the channel to `endpoint` (no trial uses it any more)."""


class ReplicaState(NamedTuple):
    """A replica as `Replicas.state` tells it: its address, its live trials (or hook calls),
    and whether it is down (no new trial goes there)."""

    endpoint: str
    live: int
    down: bool


class _Replica:
    __slots__ = ("down", "endpoint", "gone", "live", "watcher")

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.live = 0
        self.down = False
        self.watcher: Optional[asyncio.Task[None]] = None
        self.gone = False  # no longer a replica of its endpoint (its channel closes once unused)


class _Group:
    """One endpoint as written, and its replicas (none: it names one address, used as is)."""

    __slots__ = ("endpoint", "entries", "refreshing", "replicas", "static", "turn")

    def __init__(self, endpoint: str, entries: list[Endpoint]) -> None:
        self.endpoint = endpoint
        self.entries = entries
        self.replicas: list[_Replica] = []
        # only IP addresses and this machine: resolving again cannot change anything
        self.static = all(_is_address(e.host) or e.is_local for e in entries)
        self.turn = 0  # where the next search for the least busy replica starts
        self.refreshing = False


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _machines(addresses: list[str]) -> list[str]:
    """`addresses` without this machine's IPv6 loopback when it has an IPv4 one too
    (`localhost` is 127.0.0.1 and ::1: one machine)."""
    try:
        parsed = [ipaddress.ip_address(a) for a in addresses]
    except ValueError:  # an address Python does not read: counted as is
        return addresses
    if any(a.is_loopback and a.version == 4 for a in parsed):
        return [str(a) for a in parsed if not (a.is_loopback and a.version == 6)]
    return addresses


class Replicas:
    """The replicas of every endpoint trials call, and which trial uses which (event loop
    only; owned by the orchestrator's `Runtime`).

    Args:
        channels: the orchestrator's channels (`Endpoints`).
        resolve_interval: seconds between two resolutions of host names.
        lookup: how a host name is resolved (default: getaddrinfo, off the event loop).
    """

    def __init__(
        self,
        channels: Channels,
        resolve_interval: float = RESOLVE_INTERVAL,
        lookup: Lookup = lookup_addresses,
    ) -> None:
        self._channels = channels
        self._interval = resolve_interval
        self._resolve_host = lookup
        self._groups: dict[str, _Group] = {}
        self._learning: dict[str, asyncio.Future[_Group]] = {}
        self._pins: dict[str, list[_Replica]] = {}  # trial id -> the replicas it counts in
        self._refresher: Optional[asyncio.Task[None]] = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # ------------------------------------------------------------------ trials

    async def pin(self, trial_id: str, params: common_pb2.TrialParams) -> common_pb2.TrialParams:
        """`params` with the environment's and each agent's endpoint replaced by the replica
        the trial uses (a copy; `params` itself when no endpoint names several replicas).
        The trial counts on those replicas until `release`."""
        pinned: Optional[common_pb2.TrialParams] = None
        endpoint = params.environment.endpoint
        group = self._groups.get(endpoint) or await self._group(endpoint)
        if group.replicas:
            pinned = common_pb2.TrialParams()
            pinned.CopyFrom(params)
            pinned.environment.endpoint = self._choose(trial_id, group, "environment")
        for i, actor in enumerate(params.actors):
            endpoint = actor.endpoint
            if endpoint == HUMAN_ENDPOINT:
                continue
            group = self._groups.get(endpoint) or await self._group(endpoint)
            if group.replicas:
                if pinned is None:
                    pinned = common_pb2.TrialParams()
                    pinned.CopyFrom(params)
                who = f"actor {i} ({actor.actor_class})"
                pinned.actors[i].endpoint = self._choose(trial_id, group, who)
        return params if pinned is None else pinned

    async def pick(self, trial_id: str, endpoint: str, who: str) -> str:
        """The replica of `endpoint` that `who` (e.g. a pre-trial hook) of the trial calls
        (`endpoint` itself when it names one address), counted until `release`."""
        group = self._groups.get(endpoint) or await self._group(endpoint)
        if not group.replicas:
            return endpoint
        return self._choose(trial_id, group, who)

    def release(self, trial_id: str) -> None:
        """The trial is over: it no longer counts on its replicas."""
        for replica in self._pins.pop(trial_id, ()):
            replica.live -= 1
            if replica.gone and not replica.live:
                self._forget(replica)

    def state(self, endpoint: str) -> list[ReplicaState]:
        """The replicas of `endpoint` as known now (empty: it names one address, or no trial
        used it yet)."""
        group = self._groups.get(endpoint)
        if group is None:
            return []
        return [ReplicaState(r.endpoint, r.live, r.down) for r in group.replicas]

    def _choose(self, trial_id: str, group: _Group, who: str) -> str:
        """The least busy replica that is up (in turn among equals), now counting the trial."""
        replicas = group.replicas
        count = len(replicas)
        every = all(r.down for r in replicas)  # all down: spread anyway, fail as today
        best: Optional[_Replica] = None
        best_at = 0
        for k in range(count):
            at = (group.turn + k) % count
            replica = replicas[at]
            if replica.down and not every:
                continue
            if best is None or replica.live < best.live:
                best, best_at = replica, at
        assert best is not None
        group.turn = (best_at + 1) % count
        best.live += 1
        self._pins.setdefault(trial_id, []).append(best)
        log.debug(
            "trial %s: %s at %s (a replica of %s; %d live trials there)",
            trial_id,
            who,
            best.endpoint,
            group.endpoint,
            best.live,
        )
        return best.endpoint

    # ------------------------------------------------------------------ resolution

    async def _group(self, endpoint: str) -> _Group:
        """The group of `endpoint`, resolved at its first use (once, whoever asks)."""
        group = self._groups.get(endpoint)
        if group is not None:
            return group
        learning = self._learning.get(endpoint)
        if learning is None:
            learning = asyncio.ensure_future(self._learn(endpoint))
            self._learning[endpoint] = learning
            learning.add_done_callback(lambda _: self._learning.pop(endpoint, None))
        return await asyncio.shield(learning)

    async def _learn(self, endpoint: str) -> _Group:
        entries = parse_service_endpoint(endpoint) or []  # not one: used as is, grpc says why
        group = _Group(endpoint, entries)
        if len(entries) > 1 or not group.static:
            found = await self._resolve(group)
            self._update(group, found if found is not None else [(e.url, None) for e in entries])
            if group.replicas:
                await self._first_contact(group)
        self._groups[endpoint] = group
        if not group.static and self._refresher is None and not self._closed:
            self._refresher = asyncio.ensure_future(self._refresh_periodically())
        return group

    async def _first_contact(self, group: _Group) -> None:
        """Waits (at most FIRST_CONTACT_TIMEOUT s) until every replica is connected, so that
        the endpoint's first trials go to replicas known to answer."""
        waits = [
            asyncio.ensure_future(self._channels.channel(r.endpoint).channel_ready())
            for r in group.replicas
        ]
        _, pending = await asyncio.wait(waits, timeout=FIRST_CONTACT_TIMEOUT)
        for wait in pending:
            wait.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _resolve(self, group: _Group) -> Optional[list[tuple[str, Optional[str]]]]:
        """Every replica of the group: (endpoint, the name its certificate must show); None
        when a name could not be resolved."""
        found: list[tuple[str, Optional[str]]] = []
        for entry in group.entries:
            if _is_address(entry.host) or entry.is_local:
                found.append((entry.url, None))
                continue
            addresses = await self._lookup(entry)
            if addresses is None:
                return None
            if len(_machines(addresses)) == 1:
                found.append((entry.url, None))  # one address: dialed by name
                continue
            scheme = GRPCS_SCHEME if entry.secure else GRPC_SCHEME
            for address in addresses:
                url = scheme + host_port(address, entry.port)
                found.append((url, entry.host if entry.secure else None))
        return found

    async def _lookup(self, entry: Endpoint) -> Optional[list[str]]:
        """The addresses of `entry`'s host name (sorted), None when it does not resolve."""
        try:
            addresses = await asyncio.wait_for(
                self._resolve_host(entry.host, entry.port), RESOLVE_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError) as error:
            log.debug("%s: %s does not resolve (%s)", entry.url, entry.host, error)
            return None
        return sorted(set(addresses)) or None

    def _update(self, group: _Group, found: list[tuple[str, Optional[str]]]) -> None:
        """Sets the group's replicas to `found`; those kept keep their counts."""
        if len(found) == 1 and found[0][0] == group.endpoint:
            found = []  # one address: the endpoint as written
        known = {r.endpoint: r for r in group.replicas}
        replicas = []
        for url, name in found:
            replica = known.pop(url, None)
            if replica is None:
                replica = _Replica(url)
                if name is not None:
                    self._channels.verify_as(url, name)
            replicas.append(replica)
        if [r.endpoint for r in replicas] == [r.endpoint for r in group.replicas]:
            return
        for gone in known.values():  # its trials go on; it gets no new ones
            self._stop_watching(gone)
            gone.gone = True
            if not gone.live:
                self._forget(gone)
        group.replicas = replicas
        group.turn = 0
        if replicas:
            log.info(
                "%s: %d replicas (%s)",
                group.endpoint,
                len(replicas),
                ", ".join(r.endpoint for r in replicas),
            )
        for replica in replicas:
            if replica.watcher is None and not self._closed:
                replica.watcher = asyncio.ensure_future(self._watch(group, replica))

    async def _refresh(self, group: _Group) -> None:
        if group.refreshing or self._closed:
            return
        group.refreshing = True
        try:
            found = await self._resolve(group)
        finally:
            group.refreshing = False
        if found is not None and not self._closed:
            self._update(group, found)

    async def _refresh_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for group in list(self._groups.values()):
                if not group.static:
                    await self._refresh(group)

    # ------------------------------------------------------------------ health

    async def _watch(self, group: _Group, replica: _Replica) -> None:
        """Follows the replica's channel: down when it cannot connect or lost its
        connection, up again once connected."""
        State = grpc.ChannelConnectivity
        try:
            channel = self._channels.channel(replica.endpoint)
            state = channel.get_state(try_to_connect=True)
            connected = False
            while state is not State.SHUTDOWN:
                if state is State.READY:
                    connected = True
                    if replica.down:
                        replica.down = False
                        log.info("%s: replica %s is back", group.endpoint, replica.endpoint)
                elif state is State.TRANSIENT_FAILURE:
                    self._failed(group, replica, "cannot be reached")
                elif state is State.IDLE:
                    if connected:
                        connected = False
                        self._failed(group, replica, "lost its connection")
                    state = channel.get_state(try_to_connect=True)
                await channel.wait_for_state_change(state)
                state = channel.get_state()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the channels are closing
            log.debug("%s: stopped watching %s (%r)", group.endpoint, replica.endpoint, error)

    def _failed(self, group: _Group, replica: _Replica, why: str) -> None:
        if replica.down:
            return
        replica.down = True
        log.warning(
            "%s: replica %s %s: no new trials go there until it is reachable again",
            group.endpoint,
            replica.endpoint,
            why,
        )
        if not group.static:  # it may be gone for good: ask the name again now
            self._spawn(self._refresh(group))

    def _forget(self, replica: _Replica) -> None:
        """Closes the channel of a replica gone from its endpoint, once no trial uses it
        (unless another endpoint names the same address)."""
        url = replica.endpoint
        if url in self._groups or any(
            r.endpoint == url for g in self._groups.values() for r in g.replicas
        ):
            return
        self._spawn(self._channels.forget(url))

    def _stop_watching(self, replica: _Replica) -> None:
        if replica.watcher is not None:
            replica.watcher.cancel()
            replica.watcher = None

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stops resolving and watching (before the channels close)."""
        self._closed = True
        tasks: list[asyncio.Future[Any]] = [*self._tasks, *self._learning.values()]
        if self._refresher is not None:
            tasks.append(self._refresher)
        for group in self._groups.values():
            tasks.extend(r.watcher for r in group.replicas if r.watcher is not None)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __len__(self) -> int:
        return sum(1 for group in self._groups.values() if group.replicas)


__all__ = ["RESOLVE_INTERVAL", "Channels", "Lookup", "ReplicaState", "Replicas", "lookup_addresses"]
