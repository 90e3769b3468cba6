"""Services end the sessions of a crashed orchestrator: a session nobody called for
`idle_session_timeout` seconds gets `end()` and is dropped."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import cogment
from cogment.api import agent_pb2, agent_pb2_grpc, orchestrator_pb2, orchestrator_pb2_grpc
from tests.waiting import wait_until

TIMEOUT = 10.0

ORCHESTRATOR = r"""
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import cog_settings
import cogment
from cogment.api import common_pb2
params = common_pb2.TrialParams.FromString(bytes.fromhex(sys.argv[3]))
orch = cogment.Orchestrator(
    cog_settings, port=0, default_trial_params=params, pre_hooks=[], datalog_endpoint=""
).start()
print(orch.port, flush=True)
sys.stdin.read()  # until killed
"""


def test_an_idle_session_is_ended(cog_settings: Any, start_server: Any, grpc_channel: Any) -> None:
    ended = threading.Event()

    class Player(cogment.Agent):
        actor_class = cog_settings.actor_classes.player

        def decide(self, observation: Any) -> Any:
            return self.actor_class.action_space()

        def end(self) -> None:
            ended.set()

    server = start_server(Player, idle_session_timeout=0.2)
    stub = agent_pb2_grpc.AgentStub(grpc_channel(server))
    stub.Start(
        agent_pb2.AgentStartRequest(trial_id="t", actor_id=0, actor_counts=[1, 0]),
        timeout=TIMEOUT,
    )
    assert ended.wait(TIMEOUT), "the idle session was not ended"
    assert server.session_count == 0
    with pytest.raises(Exception, match="no actor 0 on this agent service"):
        stub.End(agent_pb2.AgentEndRequest(trial_id="t", actor_id=0), timeout=TIMEOUT)


def test_the_sessions_of_a_killed_orchestrator_are_ended(
    cog_settings: Any,
    project_services: Any,
    project_dir: Path,
    generated_dir: Path,
    start_server: Any,
    grpc_channel: Any,
) -> None:
    from tests.orchestrator.conftest import Project

    project = Project(
        cog_settings,
        project_services,
        lambda service, **kwargs: start_server(service, idle_session_timeout=3.0, **kwargs),
    )
    params = project.params()
    orchestrator = subprocess.Popen(
        [
            sys.executable,
            "-c",
            ORCHESTRATOR,
            str(generated_dir),
            str(project_dir),
            params.SerializeToString().hex(),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert orchestrator.stdout is not None
        port = int(orchestrator.stdout.readline())
        trials = orchestrator_pb2_grpc.TrialStub(grpc_channel(port))
        started = trials.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
        assert (project.env.session_count, project.player.session_count) == (1, 1)
    finally:
        orchestrator.kill()
        orchestrator.wait(TIMEOUT)
    journal = project_services.JOURNAL

    def all_ended() -> bool:
        events = journal.events(started.trial_id)
        return {("env", "end"), ("player1", "end"), ("watcher2", "end")} <= {e[:2] for e in events}

    wait_until(all_ended, TIMEOUT, "every service ended its idle session", interval=0.05)
    assert (project.env.session_count, project.player.session_count) == (0, 0)
    assert project.watcher.session_count == 0
