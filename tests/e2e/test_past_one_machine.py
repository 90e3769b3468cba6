"""Past one machine, on one machine: 3 orchestrators, 2 environment replicas (each with a
pre-trial hook) and 2 agent replicas, each a process on its own loopback address
(127.0.0.1-7), and client processes (tests/e2e/replica_roles.py). Which replica served which
trial comes from the services' own records."""

from __future__ import annotations

import collections
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import grpc
import pytest

from cogment.api import orchestrator_pb2, orchestrator_pb2_grpc
from cogment.client import Connection
from cogment.errors import TrialError
from cogment.ownership import owner_of
from tests.waiting import wait_until

HERE = Path(__file__).resolve().parent
TIMEOUT = 30.0
ORCH_HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
ENV_HOSTS = ("127.0.0.4", "127.0.0.5")
AGENT_HOSTS = ("127.0.0.6", "127.0.0.7")


class Process:
    """A role of replica_roles.py; its stdout lines read by a thread (every wait bounded)."""

    def __init__(self, generated_dir: Path, log: Path, *args: str) -> None:
        self.args = [sys.executable, str(HERE / "replica_roles.py"), str(generated_dir), *args]
        self._log = open(log, "w")  # noqa: SIM115 (closed in stop)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env
        )
        self.lines: queue.SimpleQueue[Optional[str]] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """The next stdout line matching `pattern` (fails at EOF or after `timeout` s)."""
        seen: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"{self.args[3:5]}: no line matching {pattern!r}: {seen[-5:]}")
            if line is None:
                pytest.fail(f"{self.args[3:5]} exited ({self.popen.poll()}): {seen[-5:]}")
            match = re.search(pattern, line)
            if match:
                return match
            seen.append(line)

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait(TIMEOUT)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(TIMEOUT)
        self._log.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


class Records:
    """What each replica served, read from the files the services write."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def served(self) -> dict[str, dict[str, set[str]]]:
        """trial id -> {"env" | "hook" | "agent": the replica hosts that served it}."""
        found: dict[str, dict[str, set[str]]] = collections.defaultdict(
            lambda: collections.defaultdict(set)
        )
        for path in self.folder.glob("*.record"):
            host = path.stem
            for line in path.read_text().splitlines():
                trial_id, what = line.split(" ", 1)
                kind = "agent" if what.startswith("decide") else what.split()[0]
                found[trial_id][kind].add(host)
        return found

    def agent_of(self, trial_id: str) -> str:
        def one() -> Optional[str]:
            hosts = self.served().get(trial_id, {}).get("agent", set())
            return next(iter(hosts)) if len(hosts) == 1 else None

        return wait_until(one, TIMEOUT, f"an agent replica's record of {trial_id}")


def _play(trial: object, ticks: int) -> None:
    from data_pb2 import Move

    for t in range(ticks):
        trial.do_action(Move(cell=t))  # type: ignore[attr-defined]


def test_three_orchestrators_and_replicas(
    tmp_path: Path,
    generated_dir: Path,
    cog_settings: types.ModuleType,
    processes: list[Process],
) -> None:
    from data_pb2 import Move

    def start(name: str, *args: str) -> Process:
        process = Process(generated_dir, tmp_path / f"{name}.log", *args)
        processes.append(process)
        return process

    records = Records(tmp_path)
    envs = [start(f"env-{h}", "env", h, str(tmp_path / f"{h}.record")) for h in ENV_HOSTS]
    agents = [start(f"agent-{h}", "agent", h, str(tmp_path / f"{h}.record")) for h in AGENT_HOSTS]
    env_ports = [env.expect(r"^ports (\d+) (\d+)$").groups() for env in envs]
    agent_ports = [agent.expect(r"^ports (\d+)$").group(1) for agent in agents]
    env_list = "grpc://" + ",".join(f"{h}:{p[0]}" for h, p in zip(ENV_HOSTS, env_ports))
    hook_list = "grpc://" + ",".join(f"{h}:{p[1]}" for h, p in zip(ENV_HOSTS, env_ports))
    agent_list = ",".join(f"grpc://{h}:{p}" for h, p in zip(AGENT_HOSTS, agent_ports))
    orchs = [
        start(f"orch-{h}", "orchestrator", h, env_list, agent_list, hook_list) for h in ORCH_HOSTS
    ]
    endpoints = [orch.expect(r"^endpoint (\S+)$").group(1) for orch in orchs]
    assert [e.split(":")[0] for e in endpoints] == list(ORCH_HOSTS)

    # 60 trials from two client processes, spread over the three orchestrators
    clients = [start(f"client-{i}", "client", ",".join(endpoints), "30", "5") for i in range(2)]
    ids = []
    for client in clients:
        while (line := client.expect(r"^(done|\{.*\})$").group(1)) != "done":
            ids.append(json.loads(line)["id"])
    assert len(set(ids)) == 60
    owners = collections.Counter(owner_of(trial_id) for trial_id in ids)
    assert set(owners) == set(endpoints) and min(owners.values()) >= 10, owners
    served = records.served()
    for trial_id in ids:  # each trial stayed on one replica of each service
        assert {kind: len(hosts) for kind, hosts in served[trial_id].items()} == {
            "env": 1, "hook": 1, "agent": 1
        }, (trial_id, served[trial_id])  # fmt: skip
    for kind, hosts in (("env", ENV_HOSTS), ("hook", ENV_HOSTS), ("agent", AGENT_HOSTS)):
        used = collections.Counter(next(iter(served[t][kind])) for t in ids)
        assert set(used) == set(hosts) and min(used.values()) >= 15, (kind, used)

    # a 0.5-style client that only calls the first orchestrator plays a trial of the second
    with Connection(cog_settings, endpoints[1], timeout=TIMEOUT) as owner_side:
        trial = owner_side.start_trial("player", user_id="two-humans")
        assert owner_of(trial.id) == endpoints[1]
        channel = grpc.insecure_channel(endpoints[0])
        stub = orchestrator_pb2_grpc.TrialStub(channel)
        metadata = [("session_id", "a-0.5-client")]
        joined = stub.Join(
            orchestrator_pb2.TrialJoinRequest(trial_id=trial.id, actor_id=1),
            timeout=TIMEOUT,
            metadata=metadata,
        )
        assert (joined.trial_id, joined.actor_id) == (trial.id, 1)
        with ThreadPoolExecutor(1) as pool:
            for t in range(3):
                request = orchestrator_pb2.TrialActionRequest(trial_id=trial.id, actor_id=1)
                request.action.content = Move(cell=t).SerializeToString()
                theirs = pool.submit(stub.Action, request, timeout=TIMEOUT, metadata=metadata)
                trial.do_action(Move(cell=t))
                assert theirs.result(TIMEOUT).observation.tick_id == t + 1
        stub.End(orchestrator_pb2.TrialEndRequest(trial_id=trial.id), timeout=TIMEOUT)
        channel.close()

    with Connection(cog_settings, endpoints, timeout=TIMEOUT) as conn:
        # an orchestrator killed: its trials fail, the others' go on, new trials avoid it
        trials = [conn.start_trial("player") for _ in range(6)]
        for trial in trials:
            _play(trial, 1)
        orchs[2].kill()
        lost = [t for t in trials if owner_of(t.id) == endpoints[2]]
        kept = [t for t in trials if t not in lost]
        assert len(lost) == 2 and len(kept) == 4
        for trial in lost:
            with pytest.raises(TrialError):
                _play(trial, 1)
        for trial in kept:
            _play(trial, 2)
            trial.end()
        survivors = endpoints[:2]
        later = [conn.start_trial("player") for _ in range(4)]
        assert sorted(str(owner_of(t.id)) for t in later) == sorted(survivors * 2)

        # an agent replica killed: its trials fail naming it, the others go on, new trials
        # avoid it
        for trial in later:
            _play(trial, 1)
        on = collections.defaultdict(list)
        for trial in later:
            on[records.agent_of(trial.id)].append(trial)
        assert sorted(on) == sorted(AGENT_HOSTS), dict(on)
        dead = f"{AGENT_HOSTS[0]}:{agent_ports[0]}"
        agents[0].kill()
        for trial in on[AGENT_HOSTS[0]]:
            with pytest.raises(TrialError) as info:
                _play(trial, 3)  # the 1st or 2nd action after the kill fails
            named = f"agent actor 1 \\(class 'player'\\) at grpc://{re.escape(dead)}: "
            assert re.search(named + r"\w+ failed: UNAVAILABLE", str(info.value)), info.value
        for trial in on[AGENT_HOSTS[1]]:
            _play(trial, 2)
            trial.end()
        marked_down = f"replica grpc://{re.escape(dead)} .*: no new trials go there"
        for host in ORCH_HOSTS[:2]:  # each surviving orchestrator saw the replica go
            log = tmp_path / f"orch-{host}.log"
            wait_until(
                lambda: re.search(marked_down, log.read_text()),  # noqa: B023 (called now)
                TIMEOUT,
                f"orchestrator {host} marking {dead} down",
            )
        newest = [conn.start_trial("player") for _ in range(4)]
        for trial in newest:
            _play(trial, 1)
            assert records.agent_of(trial.id) == AGENT_HOSTS[1]
            trial.end()
