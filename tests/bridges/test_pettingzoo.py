"""The PettingZoo bridge end to end: a served ParallelEnv, a real orchestrator, per-agent
observations and rewards, agents leaving, TrialParallelEnv under PettingZoo's API test."""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest

pytest.importorskip("pettingzoo")
np = pytest.importorskip("numpy")

from pettingzoo.test import parallel_api_test  # noqa: E402

import cogment  # noqa: E402
from cogment.bridges import settings as builtin  # noqa: E402
from cogment.pettingzoo import PettingZooEnvironment, PolicyAgent, TrialParallelEnv  # noqa: E402
from tests.bridges.conftest import TIMEOUT  # noqa: E402
from tests.bridges.pz_envs import Relay  # noqa: E402
from tests.bridges.test_spaces import same  # noqa: E402

RELAY = "tests.bridges.pz_envs:make_relay"
HUMANS = ("human", "human", "human")


def parallel_env(orchestrator: cogment.Orchestrator) -> TrialParallelEnv:
    return TrialParallelEnv(builtin, orchestrator.endpoint, timeout=TIMEOUT)


def test_the_served_env_passes_pettingzoos_parallel_api_test(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    env_class = PettingZooEnvironment(RELAY)
    orchestrator = orchestrate(serve(env_class), env_class.config, players=HUMANS)
    env = parallel_env(orchestrator)
    try:
        assert env.possible_agents == ["runner_0", "runner_1", "runner_2"]
        parallel_api_test(env, num_cycles=60)
    finally:
        env.close()


def test_per_agent_observations_rewards_and_agents_leaving(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    env_class = PettingZooEnvironment(RELAY)
    orchestrator = orchestrate(serve(env_class), env_class.config, players=HUMANS)
    reference = Relay()
    env = parallel_env(orchestrator)
    try:
        observations, infos = env.reset(seed=1)
        expected, expected_infos = reference.reset(seed=1)
        assert same(observations, expected) and infos == expected_infos
        left_at = {}
        tick = 0
        while env.agents:
            tick += 1
            actions = {agent: 2 for agent in env.agents}
            observations, rewards, terminations, _truncations, infos = env.step(actions)
            expected, expected_rewards, expected_terms, _, _ = reference.step(actions)
            assert same(observations, expected)
            assert set(rewards) == set(actions)  # only the agents that acted
            for agent, reward in rewards.items():  # each its own (a 32-bit float on the wire)
                assert reward == pytest.approx(expected_rewards[agent], rel=1e-6)
                assert infos[agent]["ran"] == 2
            assert terminations == expected_terms
            for agent, terminated in terminations.items():
                if terminated:
                    left_at[agent] = tick
            assert env.agents == reference.agents
        assert left_at == {"runner_0": 2, "runner_1": 3, "runner_2": 4}
        assert infos["runner_2"]["end_reason"] == "the environment ended the trial"
    finally:
        env.close()


def test_agents_and_humans_share_a_trial_and_observers_see_the_state(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    decisions: list[Any] = []

    def run_one(observation: Any) -> int:
        decisions.append(observation)
        return 1

    watched: list[Any] = []
    ended = threading.Event()

    class Watcher(cogment.Agent):  # type: ignore[type-arg]
        actor_class = builtin.actor_classes.observer

        def decide(self, observation: Any) -> Any:
            watched.append(observation)
            return self.actor_class.action_space()

        def end(self) -> None:
            ended.set()

    env_class = PettingZooEnvironment(RELAY)
    orchestrator = orchestrate(
        serve(env_class),
        env_class.config,
        players=[serve(PolicyAgent(run_one)), "human", "human"],
        observers=[serve(Watcher)],
    )
    env = parallel_env(orchestrator)
    try:
        assert env.possible_agents == ["runner_1", "runner_2"]  # the human slots
        env.reset(seed=0)
        ticks = 0
        while env.agents:
            env.step(dict.fromkeys(env.agents, 2))
            ticks += 1
        assert ticks == 4
    finally:
        env.close()
    assert ended.wait(TIMEOUT)
    # runner_0 ran 1 per tick: it reached 4 after 4 ticks, as runner_2 left; its policy saw
    # plain observations [position, tick] (decoded as they travel)
    assert [list(d) for d in decisions] == [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    # the observer saw the env's state (every position) at each tick it was asked to act
    assert [list(w.value.array.shape) for w in watched] == [[3]] * len(watched)
    assert not watched[0].HasField("frame")


def test_agents_that_left_are_flagged_and_not_asked_again(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    seen: dict[int, list[Any]] = {0: [], 1: [], 2: []}
    calls: list[int] = []
    done = threading.Event()

    class Runner(PolicyAgent(lambda observation: calls.append(1) or 2)):  # type: ignore[misc]
        def decide(self, observation: Any) -> Any:
            seen[self.id_in_class].append(observation)
            return super().decide(observation)

        def end(self) -> None:
            if self.id_in_class == 2:
                done.set()

    env_class = PettingZooEnvironment(RELAY)
    runner = serve(Runner)
    orchestrator = orchestrate(serve(env_class), env_class.config, players=[runner] * 3)
    with cogment.client.Connection(builtin, orchestrator.endpoint, timeout=TIMEOUT) as connection:
        trial = connection.start_trial(builtin.actor_classes.player)
        assert trial.wait_for_end(TIMEOUT)
    assert done.wait(TIMEOUT)
    # runner_0 left after tick 2: its observation of tick 2 says so, then only the flag
    first = seen[0]
    assert [o.terminated for o in first] == [False, False, True, True]
    assert first[2].HasField("value") and not first[3].HasField("value")
    assert first[3].agent == "runner_0"
    assert [len(seen[i]) for i in range(3)] == [4, 4, 4]
    assert len(calls) == 2 + 3 + 4  # the policy is asked only while its agent is in


def test_a_trial_needs_one_player_per_agent(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    env_class = PettingZooEnvironment(RELAY)
    orchestrator = orchestrate(serve(env_class), env_class.config, players=["human", "human"])
    env = parallel_env(orchestrator)
    try:
        with pytest.raises(cogment.TrialError, match=r"the env has 3 agents .* the trial has 2"):
            env.reset()
    finally:
        env.close()


@pytest.mark.parametrize(
    "target, message",
    [
        ("no_such_module_here:make", "cannot import 'no_such_module_here'"),
        ("tests.bridges.pz_envs:nope", "has no 'nope'"),
        ("tests.bridges.pz_envs", "not of the form module:function"),
        ("tests.bridges.gym_envs:Corridor", "not a pettingzoo ParallelEnv"),
    ],
)
def test_bad_factories_are_refused_clearly(target: str, message: str) -> None:
    with pytest.raises(cogment.ConfigurationError, match=message):
        PettingZooEnvironment(target)
