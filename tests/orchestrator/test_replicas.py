"""Service replicas behind one endpoint (orchestrator/replicas.py): real services on separate
loopback addresses, an in-process orchestrator, and `Replicas` itself for what depends on
DNS (a resolver given to it: the names and their addresses are the test's)."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import types
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import grpc
import pytest

import cogment
from cogment.api import common_pb2
from cogment.client import Connection
from cogment.errors import TrialError
from cogment.orchestrator.endpoints import Endpoints
from cogment.orchestrator.replicas import Replicas
from tests.certificates import make_certificate
from tests.conftest import LOCALHOST
from tests.orchestrator.conftest import TIMEOUT

T = TypeVar("T")
ENV_HOSTS = ("127.0.0.2", "127.0.0.3")
AGENT_HOSTS = ("127.0.0.4", "127.0.0.5")


class Served:
    """What each replica served, from the services' own records: trial id -> the
    (who, replica host) pairs seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, set[tuple[str, str]]] = {}

    def record(self, trial_id: str, who: str, where: str) -> None:
        with self._lock:
            self._seen.setdefault(trial_id, set()).add((who, where))

    def of(self, trial_id: str) -> dict[str, set[str]]:
        """who -> the replica hosts that served it in the trial."""
        with self._lock:
            seen = set(self._seen.get(trial_id, ()))
        found: dict[str, set[str]] = {}
        for who, where in seen:
            found.setdefault(who, set()).add(where)
        return found


SERVED = Served()


def _at(base: Any, where: str) -> type:
    """A subclass of the project's `base` service recording every call it serves."""

    if issubclass(base, cogment.Environment):

        def start(self: Any, config: Any) -> Any:
            SERVED.record(self.trial.id, "env", where)
            return base.start(self, config)

        def update(self: Any, actions: Any) -> Any:
            SERVED.record(self.trial.id, "env", where)
            return base.update(self, actions)

        return type(base.__name__, (base,), {"start": start, "update": update})

    def decide(self: Any, observation: Any) -> Any:
        SERVED.record(self.trial.id, f"actor {self.actor.actor_id}", where)
        return base.decide(self, observation)

    return type(base.__name__, (base,), {"decide": decide})


@pytest.fixture
def replicated(
    project_services: types.ModuleType, start_server: Callable[..., Any]
) -> types.SimpleNamespace:
    envs = [start_server(_at(project_services.BoardEnv, h), host=h) for h in ENV_HOSTS]
    players = [start_server(_at(project_services.PlayerAgent, h), host=h) for h in AGENT_HOSTS]
    watcher = start_server(project_services.WatcherAgent)
    return types.SimpleNamespace(
        envs=envs,
        players=players,
        env_endpoint="grpc://" + ",".join(f"{h}:{s.port}" for h, s in zip(ENV_HOSTS, envs)),
        player_endpoint=",".join(f"grpc://{h}:{s.port}" for h, s in zip(AGENT_HOSTS, players)),
        watcher_endpoint=f"grpc://{LOCALHOST}:{watcher.port}",
    )


def _params(where: types.SimpleNamespace) -> common_pb2.TrialParams:
    import data_pb2

    params = common_pb2.TrialParams(max_inactivity=0)
    params.environment.endpoint = where.env_endpoint
    params.actors.add(actor_class="player", endpoint="human")
    params.actors.add(actor_class="player", endpoint=where.player_endpoint)
    params.actors.add(actor_class="watcher", endpoint=where.watcher_endpoint)
    params.trial_config.content = data_pb2.TrialConfig(rounds=0).SerializeToString()
    return params


def _play(trial: Any, ticks: int) -> None:
    from data_pb2 import Move

    for t in range(ticks):
        trial.do_action(Move(cell=t))


def test_each_trial_stays_on_one_replica_and_trials_spread(
    cog_settings: types.ModuleType,
    replicated: types.SimpleNamespace,
    orchestrator: Callable[..., cogment.Orchestrator],
) -> None:
    orch = orchestrator(_params(replicated))
    with Connection(cog_settings, orch.endpoint, timeout=TIMEOUT) as conn:
        trials = [conn.start_trial("player") for _ in range(4)]
        for trial in trials:
            _play(trial, 3)
        served = [SERVED.of(trial.id) for trial in trials]
        for trial in trials:
            trial.end()
    for seen in served:  # one replica each, for the whole trial
        assert len(seen["env"]) == 1 and len(seen["actor 1"]) == 1, seen
    # four trials live at once: two on each replica (the fewest live trials first)
    assert sorted(next(iter(s["env"])) for s in served) == sorted(ENV_HOSTS * 2)
    assert sorted(next(iter(s["actor 1"])) for s in served) == sorted(AGENT_HOSTS * 2)


def test_a_failed_replica_fails_its_trials_and_gets_no_new_ones(
    cog_settings: types.ModuleType,
    replicated: types.SimpleNamespace,
    orchestrator: Callable[..., cogment.Orchestrator],
) -> None:
    orch = orchestrator(_params(replicated))
    with Connection(cog_settings, orch.endpoint, timeout=TIMEOUT) as conn:
        trials = [conn.start_trial("player") for _ in range(2)]
        for trial in trials:
            _play(trial, 1)
        on = {next(iter(SERVED.of(t.id)["actor 1"])): t for t in trials}
        assert set(on) == set(AGENT_HOSTS)
        dead, alive = replicated.players[0], replicated.players[1]
        dead.stop()
        with pytest.raises(TrialError) as info:
            _play(on[AGENT_HOSTS[0]], 3)  # its next Decide fails
        assert f"agent actor 1 (class 'player') at grpc://{AGENT_HOSTS[0]}:{dead.port}" in str(
            info.value
        )
        _play(on[AGENT_HOSTS[1]], 3)  # the other trial goes on
        later = [conn.start_trial("player") for _ in range(3)]
        for trial in later:
            _play(trial, 1)
            assert SERVED.of(trial.id)["actor 1"] == {AGENT_HOSTS[1]}
        for trial in [*later, on[AGENT_HOSTS[1]]]:
            trial.end()
    assert alive.port  # still serving


def _run(coroutine: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, TIMEOUT)

    return asyncio.run(bounded())


async def _until(predicate: Callable[[], bool], message: str) -> None:
    """Waits (bounded) on the event loop until `predicate()` holds."""
    for _ in range(int(TIMEOUT / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {message}")


class Names:
    """A resolver for `Replicas`: the test's names and their addresses (`later`: what they
    resolve to from the second lookup on); counts lookups."""

    def __init__(
        self, names: dict[str, list[str]], later: Optional[dict[str, list[str]]] = None
    ) -> None:
        self.names = names
        self.later = later or names
        self.lookups = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups += 1
        names = self.names if self.lookups == 1 else self.later
        if host not in names:
            raise OSError(f"unknown host {host}")
        return list(names[host])


def test_a_single_address_endpoint_is_used_as_written() -> None:
    names = Names({})

    async def main() -> None:
        endpoints = Endpoints()
        replicas = Replicas(endpoints, lookup=names)
        params = common_pb2.TrialParams()
        params.environment.endpoint = "grpc://127.0.0.1:9002"
        params.actors.add(actor_class="player", endpoint="grpc://localhost:9001")
        params.actors.add(actor_class="player", endpoint="human")
        assert await replicas.pin("t", params) is params
        assert await replicas.pick("t", "grpc://[::1]:9003", "pre-trial hook 0") == (
            "grpc://[::1]:9003"
        )
        replicas.release("t")
        assert len(replicas) == 0 and len(endpoints) == 0
        await replicas.close()
        await endpoints.close()

    _run(main())
    assert names.lookups == 0  # addresses and this machine: nothing to resolve


async def _resolved_again() -> int:
    """Two replicas of a name where nothing listens: both fail to connect, and the name is
    asked again at once (the interval is 60 s); returns how many lookups were made."""
    names = Names(
        {"agents.test": ["127.0.0.2", "127.0.0.3"]},
        later={"agents.test": ["127.0.0.3", "127.0.0.4"]},
    )
    endpoint = "grpc://agents.test:9"
    endpoints = Endpoints()
    replicas = Replicas(endpoints, resolve_interval=60.0, lookup=names)
    picked = [await replicas.pick(f"t{i}", endpoint, "agent") for i in range(3)]
    assert set(picked) <= {f"grpc://127.0.0.{n}:9" for n in (2, 3, 4)}
    # both fail to connect: marked down, and the name asked again at once (not in 60 s)
    await _until(
        lambda: (
            [s.endpoint for s in replicas.state(endpoint)]
            == ["grpc://127.0.0.3:9", "grpc://127.0.0.4:9"]
        ),
        "the new addresses",
    )
    await _until(lambda: all(s.down for s in replicas.state(endpoint)), "both down")
    # every replica down: trials still go to one of them (and fail as with one endpoint)
    assert await replicas.pick("t3", endpoint, "agent") in {
        "grpc://127.0.0.3:9",
        "grpc://127.0.0.4:9",
    }
    replicas.release("t3")
    for i in range(3):
        replicas.release(f"t{i}")
    assert [s.live for s in replicas.state(endpoint)] == [0, 0]
    # the replica gone from the name, used by no trial any more: its channel is closed
    await _until(lambda: len(endpoints) == 2, "the channel of 127.0.0.2 closed")
    await replicas.close()
    await endpoints.close()
    return names.lookups


async def _tls_checked(ca: str, port: int) -> Optional[str]:
    """Calls both replicas of `grpcs://agents.test:<port>` (their certificate names
    agents.test only), then one of their addresses without the name: its status."""
    names = Names({"agents.test": list(ENV_HOSTS)})
    endpoint = f"grpcs://agents.test:{port}"
    endpoints = Endpoints(tls_ca=ca)
    replicas = Replicas(endpoints, lookup=names)
    plain = Endpoints(tls_ca=ca)
    try:
        picked = {await replicas.pick(f"t{i}", endpoint, "agent") for i in range(2)}
        assert picked == {f"grpcs://{h}:{port}" for h in ENV_HOSTS}
        for replica in picked:
            try:
                await endpoints.agent(replica).Version(common_pb2.VersionRequest(), timeout=TIMEOUT)
            except grpc.aio.AioRpcError as error:
                raise AssertionError(f"{replica}: {error.code().name}: {error.details()}") from None
        try:
            await plain.agent(f"grpcs://{ENV_HOSTS[0]}:{port}").Version(
                common_pb2.VersionRequest(), timeout=TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            return error.code().name
    finally:
        await replicas.close()
        await endpoints.close()
        await plain.close()
    return None


def _call(scenario: Callable[..., Awaitable[T]], *args: Any) -> T:
    return _run(scenario(*args))


def _in_fresh_process(scenario: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Runs `scenario(*args)` on the event loop of a new process: grpc.aio serves one event
    loop at a time per process, and this one has run the orchestrators of other tests."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply_async(_call, (scenario, *args)).get(TIMEOUT * 3)  # type: ignore[no-any-return]


def test_a_name_is_resolved_again_and_at_once_after_a_failure() -> None:
    assert _in_fresh_process(_resolved_again) >= 2


def test_grpcs_replicas_of_a_name_check_the_certificate_against_the_name(
    tmp_path: Path, cog_settings: types.ModuleType, project_services: types.ModuleType
) -> None:
    cert = make_certificate(tmp_path, "replicas", hosts="DNS:agents.test")
    servers: list[cogment.GrpcServer] = []
    port = 0
    try:
        for host in ENV_HOSTS:  # one port on every address, as a name's replicas have
            server = cogment.GrpcServer(
                project_services.PlayerAgent, cog_settings, port=port, host=host,
                tls_cert=cert.cert, tls_key=cert.key,
            )  # fmt: skip
            servers.append(server.start())
            port = server.port
        # both replicas answer (checked against the name); the bare address is refused
        assert _in_fresh_process(_tls_checked, str(cert.cert), port) == "UNAVAILABLE"
    finally:
        for server in servers:
            server.stop()
