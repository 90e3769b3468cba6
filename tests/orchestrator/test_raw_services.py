"""The orchestrator against services written straight on grpcio (another SDK, in effect):
what our SDK never sends, failures, deadlines, big payloads (the datalog: test_recording.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import pytest

from cogment.api import agent_pb2, common_pb2, orchestrator_pb2
from tests.orchestrator.conftest import TIMEOUT, raw_params
from tests.orchestrator.raw import RawAgent, RawEnv, RawHooks, one_observation
from tests.waiting import wait_until

HUMAN_AND_AGENT = [("player", "human")]


def action(stub: Any, trial_id: str, actor_id: int = 0, content: bytes = b"") -> Any:
    request = orchestrator_pb2.TrialActionRequest(trial_id=trial_id, actor_id=actor_id)
    request.action.content = content
    return stub.Action(request, timeout=TIMEOUT)


def test_16_mib_observations(orchestrator, trial_stub, raw_server):
    big = bytes(range(256)) * (16 * 4096) + b"!"  # 16 MiB + 1, never parsed on the way
    env = RawEnv(observation=lambda tick, n: one_observation(big, n, tick))
    agent = RawAgent()
    params = raw_params(raw_server(env), [("player", "human"), ("player", raw_server(agent))], 2)
    stub = trial_stub(orchestrator(params))
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    assert started.observation.data.content == big
    replies = [action(stub, started.trial_id) for _ in range(2)]
    assert [r.trial_is_over for r in replies] == [False, True]
    assert replies[-1].observation.data.content == big
    assert agent.of("Decide")[0].observation.data.content == big


def test_foreign_feedback_and_messages(orchestrator, trial_stub, raw_server):
    """-1 feedback goes to the tick of the call that carried it; sender ids are rewritten."""

    def decide(request: Any) -> Any:
        reply = agent_pb2.AgentDecideReply()
        tick = request.observation.tick_id
        reply.feedbacks.add(actor_id=0, tick_id=-1, value=float(tick), confidence=1.0)
        message = reply.messages.add(sender_id=77, receiver_id=-1)
        message.payload.Pack(common_pb2.TrialConfig(content=b"from agent"))
        return reply

    def update(request: Any, reply: Any) -> None:
        reply.feedbacks.add(actor_id=0, tick_id=-1, value=100.0, confidence=3.0)
        message = reply.messages.add(sender_id=5, receiver_id=0)
        message.payload.Pack(common_pb2.TrialConfig(content=b"from env"))

    env = RawEnv(update_hook=update)
    agent = RawAgent(decide)
    params = raw_params(raw_server(env), [("player", "human"), ("player", raw_server(agent))], 3)
    stub = trial_stub(orchestrator(params))
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    for t in range(3):
        reply = action(stub, started.trial_id)
        assert [f.tick_id for f in reply.reward.feedbacks] == [t, t]
        assert reply.reward.value == pytest.approx((t * 1 + 100 * 3) / 4)
        assert reply.reward.confidence == pytest.approx(4.0)
        assert [(m.sender_id, m.receiver_id) for m in reply.messages.messages] == [(-1, 0)]
    received = [m for r in env.of("OnMessage") for m in r.messages]
    assert received and all(m.sender_id == 1 for m in received)
    assert all(r.actor_id == -1 for r in env.of("OnMessage"))
    updates = env.of("Update")
    assert [len(u.action_set.actions) for u in updates] == [2, 2, 2]


def test_join_turns_a_delta_into_a_snapshot(orchestrator, trial_stub, raw_server):
    import data_pb2

    delta = data_pb2.BoardDelta(cell=2, value=5, turn=0).SerializeToString()

    def observation(tick: int, n: int) -> Any:
        obs = one_observation(delta, n, tick)
        obs.observations[0].snapshot = False
        return obs

    env = RawEnv(observation=observation)
    params = raw_params(raw_server(env), [("player", "human"), ("player", "human")], 1)
    stub = trial_stub(orchestrator(params))
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    assert not started.observation.data.snapshot  # forwarded as the env sent it
    joined = stub.Join(
        orchestrator_pb2.TrialJoinRequest(trial_id=started.trial_id, actor_id=1), timeout=TIMEOUT
    )
    assert joined.observation.data.snapshot
    board = data_pb2.Board.FromString(joined.observation.data.content)
    assert list(board.cells) == [0, 0, 5]


def test_a_slow_agent_ends_its_trial(orchestrator, trial_stub, raw_server):
    env = RawEnv()
    answer = threading.Event()  # the agent's Decide answers only once the test is done
    slow = RawAgent(hold=answer)
    params = raw_params(raw_server(env), [("player", "human"), ("player", raw_server(slow))])
    orch = orchestrator(params, response_timeout=0.5)
    stub = trial_stub(orch)
    try:
        started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
        begun = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            action(stub, started.trial_id)
        assert time.monotonic() - begun < 2.0
        assert caught.value.code() == grpc.StatusCode.ABORTED
        message = caught.value.details() or ""
        assert message.startswith(f"trial {started.trial_id} ended: agent actor 1 (class 'player')")
        assert "Decide failed: DEADLINE_EXCEEDED" in message and "within 0.5 s" in message
        with pytest.raises(grpc.RpcError) as later:
            action(stub, started.trial_id)
        assert later.value.code() == grpc.StatusCode.NOT_FOUND
        assert "failed: agent actor 1" in (later.value.details() or "")
        wait_until(lambda: env.of("End") and slow.of("End"), TIMEOUT, "both services got End")
        orch.stop()  # waits for the trial's task: every End it would call has been called
        assert len(env.of("End")) == 1 and len(slow.of("End")) == 1
    finally:
        answer.set()


def test_a_failing_trial_next_to_a_healthy_one(orchestrator, trial_stub, raw_server, project):
    """One orchestrator, two trials (a hook sends user "doomed" to a failing agent): the
    failure ends that trial only."""
    failing = RawAgent(decide=lambda request: 1 / 0)  # grpcio answers UNKNOWN
    failing_endpoint = raw_server(failing)

    def rewrite(context: Any) -> None:
        if context.user_id == "doomed":
            context.params.actors[1].endpoint = failing_endpoint

    hook = raw_server(RawHooks(rewrite))
    orch = orchestrator(project.params(max_steps=10), pre_hooks=[hook])
    stub = trial_stub(orch)
    healthy = stub.Start(orchestrator_pb2.TrialStartRequest(user_id="fine"), timeout=TIMEOUT)
    doomed = stub.Start(orchestrator_pb2.TrialStartRequest(user_id="doomed"), timeout=TIMEOUT)
    errors: list[grpc.RpcError] = []

    def play_doomed() -> None:
        try:
            action(stub, doomed.trial_id)
        except grpc.RpcError as error:
            errors.append(error)

    thread = threading.Thread(target=play_doomed)
    thread.start()
    for _ in range(10):
        reply = action(stub, healthy.trial_id)
    thread.join(TIMEOUT)
    assert reply.trial_is_over
    assert len(errors) == 1 and errors[0].code() == grpc.StatusCode.ABORTED
    details = errors[0].details() or ""
    assert details.startswith(f"trial {doomed.trial_id} ended: agent actor 1 (class 'player')")
    assert f"at {failing_endpoint}: Decide failed: UNKNOWN" in details
    # a failure tells the clients first, then calls End on the services
    wait_until(lambda: failing.of("End"), TIMEOUT, "the failing agent got End")
    orch.stop()  # waits for the trials' tasks: every End they would call has been called
    assert len(failing.of("End")) == 1


def test_unreachable_environment(orchestrator, trial_stub):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    params = raw_params(f"grpc://127.0.0.1:{port}", [("player", "human")])
    stub = trial_stub(orchestrator(params))
    with pytest.raises(grpc.RpcError) as caught:
        stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert f"environment at grpc://127.0.0.1:{port}: Start failed: UNAVAILABLE" in (
        caught.value.details() or ""
    )


def test_a_bad_observation_set_fails_the_trial(orchestrator, trial_stub, raw_server):
    env = RawEnv(observation=lambda tick, n: one_observation(b"", n + 1 if tick else n, tick))
    orch = orchestrator(raw_params(raw_server(env), [("player", "human")]))
    stub = trial_stub(orch)
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as caught:
        action(stub, started.trial_id)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert "ObservationSet" in (caught.value.details() or "")
    wait_until(lambda: env.of("End"), TIMEOUT, "the environment got End")
    orch.stop()  # waits for the trial's task: every End it would call has been called
    assert len(env.of("End")) == 1


def test_one_channel_per_endpoint_for_all_trials(orchestrator, trial_stub, raw_server):
    env = RawEnv()
    agent = RawAgent()
    agent_endpoint = raw_server(agent)
    params = raw_params(
        raw_server(env),
        [("player", "human"), ("player", agent_endpoint), ("watcher", agent_endpoint)],
    )
    orch = orchestrator(params)
    stub = trial_stub(orch)
    trials = [stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT) for _ in range(5)]
    for started in trials:
        action(stub, started.trial_id)
    assert len(orch._server.endpoints) == 2  # the env's and the agents' (shared by all)
    assert {r.trial_id for r in agent.of("Start")} == {t.trial_id for t in trials}


def _presence(request: Any) -> tuple[bool, ...]:
    """Which config sub-messages a Start request or TrialParams carries."""
    if isinstance(request, common_pb2.TrialParams):
        return (
            request.HasField("trial_config"),
            request.environment.HasField("config"),
            *(actor.HasField("config") for actor in request.actors),
        )
    return (request.HasField("config"), request.HasField("trial_config"))


def test_configs_are_on_the_wire_only_when_given(orchestrator, trial_stub, raw_server):
    """A 0.5 service decodes any config present with its class's config_type (and crashes
    without one): absent configs stay absent everywhere, given ones (even empty) present."""
    env, agent = RawEnv(), RawAgent()
    hooks = RawHooks(lambda context: None)
    params = raw_params(raw_server(env), [("player", "human"), ("watcher", raw_server(agent))])
    stub = trial_stub(orchestrator(params, pre_hooks=[raw_server(hooks)]))
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    assert not started.HasField("human_config")
    assert _presence(hooks.of("PreTrial")[0].params) == (False, False, False, False)
    assert _presence(env.of("Start")[0]) == (False, False)
    assert _presence(agent.of("Start")[0]) == (False, False)
    stub.End(orchestrator_pb2.TrialEndRequest(trial_id=started.trial_id), timeout=TIMEOUT)

    given = raw_params(
        raw_server(RawEnv()), [("player", "human"), ("watcher", raw_server(RawAgent()))]
    )
    for field in (given.trial_config, given.environment.config, *(a.config for a in given.actors)):
        field.SetInParent()  # present, with every field at its default
    env, agent = RawEnv(), RawAgent()
    given.environment.endpoint = raw_server(env)
    given.actors[1].endpoint = raw_server(agent)
    stub = trial_stub(orchestrator(given, pre_hooks=[raw_server(hooks)]))
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    assert started.HasField("human_config")
    assert _presence(hooks.of("PreTrial")[1].params) == (True, True, True, True)
    assert _presence(env.of("Start")[0]) == (True, True)
    assert _presence(agent.of("Start")[0]) == (True, True)
    stub.End(orchestrator_pb2.TrialEndRequest(trial_id=started.trial_id), timeout=TIMEOUT)
