"""Inactivity reaping, shutdown, construction from cogment.yaml, and the CLI."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment.errors import ConfigurationError, LifecycleError
from cogment.orchestrator import Orchestrator
from tests.orchestrator.conftest import TIMEOUT, act, start_trial
from tests.orchestrator.raw import RawHooks
from tests.waiting import TrialLookups, wait_until

PROJECT_YAML = Path(__file__).resolve().parents[1] / "project" / "cogment.yaml"
TWO_HUMANS = [("player", "human"), ("player", "human"), ("watcher", "")]


def is_live(stub: Any, trial_id: str) -> bool:
    """Probes a trial without counting as activity (a Join on an actor that does not exist)."""
    try:
        stub.Join(
            orchestrator_pb2.TrialJoinRequest(trial_id=trial_id, actor_id=99), timeout=TIMEOUT
        )
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        return "has ended" not in (error.details() or "")
    raise AssertionError("joined actor 99?")


def test_inactivity_reaps_within_one_and_a_half_times_the_limit(project, orchestrator, trial_stub):
    orch = orchestrator(project.params(actors=TWO_HUMANS, max_inactivity=1))
    stub = trial_stub(orch)
    started = start_trial(stub)
    begun = time.monotonic()
    # actor 0 acts (and waits for actor 1, who never comes)
    pending = stub.Action.future(
        orchestrator_pb2.TrialActionRequest(trial_id=started.trial_id, actor_id=0), timeout=TIMEOUT
    )
    wait_until(
        lambda: not is_live(stub, started.trial_id),
        TIMEOUT,
        "the trial is reaped",
        interval=0.02,
    )
    assert 0.9 <= time.monotonic() - begun < 1.5
    reply = pending.result(timeout=TIMEOUT)
    assert reply.trial_is_over
    journal = project.services.JOURNAL.events(started.trial_id)
    assert [e for e in journal if e[1] == "end"]  # the services were told
    with pytest.raises(grpc.RpcError) as caught:
        stub.Heartbeat(orchestrator_pb2.TrialHeartbeatRequest(trial_id=started.trial_id))
    assert "no activity from any human for 1 s (max_inactivity)" in (caught.value.details() or "")


def test_heartbeats_and_actions_keep_a_trial_alive(project, orchestrator, trial_stub):
    orch = orchestrator(project.params(max_inactivity=1))
    stub = trial_stub(orch)
    started = start_trial(stub, rounds=0)
    # each phase lasts until a trial started after the last activity before it, and left
    # idle, is reaped: without that phase's activity, `started` would be reaped by then
    idle = start_trial(stub, rounds=0)
    while is_live(stub, idle.trial_id):
        stub.Heartbeat(
            orchestrator_pb2.TrialHeartbeatRequest(trial_id=started.trial_id), timeout=TIMEOUT
        )
        time.sleep(0.3)  # the client's pace between two heartbeats: well within the 1 s limit
    assert is_live(stub, started.trial_id)
    idle = start_trial(stub, rounds=0)
    while is_live(stub, idle.trial_id):
        act(stub, started.trial_id, 0)
        time.sleep(0.3)  # the client's pace between two actions: well within the 1 s limit
    assert is_live(stub, started.trial_id)
    wait_until(
        lambda: not is_live(stub, started.trial_id),
        TIMEOUT,
        "the trial, idle now, is reaped",
        interval=0.02,
    )


def test_agent_only_trials_are_not_reaped(project, orchestrator, trial_stub, raw_server):
    def rewrite(context: Any) -> None:  # user "agents" gets an agent-only trial
        if context.user_id == "agents":
            del context.params.actors[:1]

    hook = raw_server(RawHooks(rewrite))
    actors = [("player", "human"), ("watcher", "")]
    orch = orchestrator(project.params(actors=actors, max_inactivity=1), pre_hooks=[hook])
    stub = trial_stub(orch)
    started = start_trial(stub, user_id="agents")
    assert started.actor_id == -1
    # a trial started later, with a human who never acts: once the orchestrator reaped it,
    # the moment it would have reaped the agent-only trial has passed
    later = start_trial(stub)
    assert later.actor_id == 0
    wait_until(
        lambda: not is_live(stub, later.trial_id),
        TIMEOUT,
        "the trial with an idle human is reaped",
        interval=0.02,
    )
    assert is_live(stub, started.trial_id)
    stub.End(orchestrator_pb2.TrialEndRequest(trial_id=started.trial_id), timeout=TIMEOUT)


def test_shutdown_ends_every_trial(project, orchestrator, trial_stub, raw_server):
    def rewrite(context: Any) -> None:  # user "agents" gets an agent-only trial
        if context.user_id == "agents":
            del context.params.actors[:2]

    hook = raw_server(RawHooks(rewrite))
    orch = orchestrator(project.params(actors=TWO_HUMANS), pre_hooks=[hook])
    stub = trial_stub(orch)
    lookups = TrialLookups(orch)
    human = start_trial(stub)
    pending = stub.Action.future(
        orchestrator_pb2.TrialActionRequest(trial_id=human.trial_id, actor_id=0), timeout=TIMEOUT
    )
    agents_only = start_trial(stub, user_id="agents")
    assert agents_only.actor_id == -1
    watch = stub.ActionStream(
        iter([orchestrator_pb2.TrialActionRequest(trial_id=agents_only.trial_id, actor_id=-1)]),
        timeout=TIMEOUT,
    )
    lookups.wait(human.trial_id, 1, TIMEOUT, "the action reached the orchestrator")
    lookups.wait(agents_only.trial_id, 1, TIMEOUT, "the watch request reached the orchestrator")
    assert orch.trial_count == 2
    orch.stop()
    assert pending.result(timeout=TIMEOUT).trial_is_over
    assert [r.trial_is_over for r in watch] == [True]
    for trial_id, services in (
        (human.trial_id, ("env", "watcher2")),
        (agents_only.trial_id, ("env", "watcher0")),
    ):
        journal = project.services.JOURNAL.events(trial_id)
        for who in services:
            assert (who, "end", None) in journal


def test_from_a_yaml_path_and_port_in_use(cog_settings):
    with Orchestrator(str(PROJECT_YAML), pre_hooks=[]) as orch:
        channel = grpc.insecure_channel(orch.endpoint)
        stub = orchestrator_pb2_grpc.TrialStub(channel)
        params = stub.GetTrialParams(orchestrator_pb2.GetTrialParamsRequest(), timeout=TIMEOUT)
        assert params.params == cog_settings.default_trial_params
        channel.close()
        with pytest.raises(ConfigurationError, match=r"cannot listen on 127\.0\.0\.1:"):
            Orchestrator(cog_settings, port=orch.port).start()


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cogment.orchestrator", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_cli_serves_until_sigint(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cogment.orchestrator",
            "--file",
            str(PROJECT_YAML),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert (
            line.strip() == f"orchestrator listening on 127.0.0.1:{port} (project: {PROJECT_YAML})"
        )
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            versions = orchestrator_pb2_grpc.TrialStub(channel).Version(
                common_pb2.VersionRequest(), timeout=TIMEOUT
            )
        assert versions.versions[0].name == "cogment-api"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "cogment.yaml"
    bad.write_text("actor_classes: [\n")
    result = run_cli("--file", str(bad))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "invalid YAML" in result.stderr

    missing = run_cli("--file", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "Traceback" not in missing.stderr

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        in_use = run_cli("--file", str(PROJECT_YAML), "--port", str(port))
    assert in_use.returncode == 1
    assert in_use.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert in_use.stderr.count("\n") == 1


def test_two_orchestrators_in_one_process(project, orchestrator, trial_stub):
    first, second = (
        orchestrator(project.params(max_steps=5)),
        orchestrator(project.params(max_steps=5)),
    )
    assert first.port != second.port
    stubs = [trial_stub(first), trial_stub(second)]
    trials = [start_trial(stub, rounds=0) for stub in stubs]
    for _ in range(5):
        replies = [act(stub, trial.trial_id, 0) for stub, trial in zip(stubs, trials)]
    assert all(reply.trial_is_over for reply in replies)


def test_an_orchestrator_starts_once(cog_settings):
    orch = Orchestrator(cog_settings, port=0)
    orch.start()
    with pytest.raises(LifecycleError, match=r"Orchestrator\.start\(\): .* already started$"):
        orch.start()
    orch.stop()
    orch.stop()  # idempotent
    with pytest.raises(LifecycleError, match="already stopped; make a new Orchestrator"):
        orch.start()
