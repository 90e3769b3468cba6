"""The Gymnasium bridge end to end: a served env, a real orchestrator, TrialEnv, PolicyAgent."""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest

gymnasium = pytest.importorskip("gymnasium")
np = pytest.importorskip("numpy")

from gymnasium.utils.env_checker import check_env  # noqa: E402

import cogment  # noqa: E402
from cogment.bridges import settings as builtin  # noqa: E402
from cogment.client import Connection  # noqa: E402
from cogment.gym import GymEnvironment, PolicyAgent, TrialEnv, UnsupportedSpaceError, env_config  # noqa: E402
from tests.bridges.conftest import TIMEOUT  # noqa: E402
from tests.bridges.gym_envs import Corridor, TextEnv  # noqa: E402
from tests.bridges.test_spaces import same  # noqa: E402


@pytest.fixture
def cartpole(serve: Callable[..., str], orchestrate: Callable[..., Any]) -> cogment.Orchestrator:
    env_class = GymEnvironment("CartPole-v1")
    return orchestrate(serve(env_class), env_class.config)


def trial_env(orchestrator: cogment.Orchestrator, **kwargs: Any) -> TrialEnv:
    return TrialEnv(builtin, orchestrator.endpoint, timeout=TIMEOUT, **kwargs)


def test_trial_env_passes_gymnasiums_env_checker(cartpole: cogment.Orchestrator) -> None:
    env = trial_env(cartpole)
    try:
        assert env.observation_space == gymnasium.make("CartPole-v1").observation_space
        assert env.action_space == gymnasium.spaces.Discrete(2)
        check_env(env, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_reset_returns_what_gymnasium_returns(
    serve: Callable[..., str], orchestrate: Callable[..., Any], seed: int
) -> None:
    env_class = GymEnvironment("Taxi-v3")  # a Discrete observation, and info with action_mask
    orchestrator = orchestrate(serve(env_class), env_class.config)
    with trial_env(orchestrator) as env:
        observation, info = env.reset(seed=seed)
        expected, expected_info = gymnasium.make("Taxi-v3").reset(seed=seed)
        assert same(observation, expected)
        assert same(info, expected_info)


def test_an_episode_steps_as_the_env_in_process(cartpole: cogment.Orchestrator) -> None:
    reference = gymnasium.make("CartPole-v1")
    expected, _ = reference.reset(seed=5)
    with trial_env(cartpole) as env:
        observation, _ = env.reset(seed=5)
        assert same(observation, expected)
        steps = 0
        while True:
            action = int(observation[2] > 0) if steps % 7 else 0
            observation, reward, terminated, truncated, info = env.step(action)
            expected, expected_reward, expected_term, expected_trunc, _ = reference.step(action)
            steps += 1
            assert same(observation, expected)
            assert (reward, terminated, truncated) == (
                expected_reward,
                expected_term,
                expected_trunc,
            )
            assert info["messages"] == []
            if terminated or truncated:
                break
            assert "trial_id" not in info
        assert info["trial_id"] == env.trial_id
        assert info["end_reason"] == "the environment ended the trial"
        assert env.trial is not None and env.trial.is_over
        with pytest.raises(gymnasium.error.ResetNeeded, match="the episode is over"):
            env.step(0)
        env.reset()  # a new trial
        assert env.trial is not None and not env.trial.is_over


def test_max_steps_truncates_the_episode(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    env_class = GymEnvironment("CartPole-v1")
    orchestrator = orchestrate(serve(env_class), env_class.config, max_steps=3)
    with trial_env(orchestrator) as env:
        with pytest.raises(gymnasium.error.ResetNeeded, match="call reset"):
            env.step(0)
        env.reset(seed=1)
        results = [env.step(1) for _ in range(3)]
        assert [(r[2], r[3]) for r in results] == [(False, False), (False, False), (False, True)]
        assert results[-1][4]["end_reason"] == "max_steps (3) reached"


def test_reset_options_and_info_travel(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    env_class = GymEnvironment(Corridor, env_id="corridor")
    orchestrator = orchestrate(serve(env_class), env_class.config)
    reference = Corridor()
    with trial_env(orchestrator) as env:
        observation, info = env.reset(seed=3, options={"start": 4})
        expected, expected_info = reference.reset(seed=3, options={"start": 4})
        assert same(observation, expected) and same(info, expected_info)
        observation, reward, terminated, truncated, info = env.step(np.int64(1))
        assert same(observation, reference.step(1)[0])
        assert (reward, terminated, truncated) == (1.0, True, False)
        assert same(info["action_mask"], np.array([1, 0], np.int8))
        assert info["distance"] == 0.0 and info["note"] == "corridor"
        with pytest.raises(TypeError, match="JSON-serializable"):
            env.reset(options={"start": object()})
        with pytest.raises(ValueError, match="action: 3 is not in Discrete"):
            env.reset()
            env.step(3)


def test_frames_are_sent_when_rendering(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    env_class = GymEnvironment(lambda: Corridor(render_mode="rgb_array"), render=True)
    orchestrator = orchestrate(serve(env_class), env_class.config)
    with trial_env(orchestrator, render_mode="rgb_array") as env:
        env.reset(options={"start": 2})
        frame = env.render()
        assert frame.dtype == np.uint8 and frame.shape == (2, 6, 3)
        assert frame[0, 2, 0] == 255 and frame[0, 1, 0] == 0
    with pytest.raises(cogment.ConfigurationError, match="render_mode is 'rgb_array'"):
        GymEnvironment(Corridor, render=True)


def test_policy_agent_plays_and_observers_watch(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    seen: list[Any] = []
    ended = threading.Event()

    class Watcher(cogment.Agent):  # type: ignore[type-arg]
        actor_class = builtin.actor_classes.observer

        def decide(self, observation: Any) -> Any:
            seen.append(observation)
            return builtin.actor_classes.observer.action_space()

        def end(self) -> None:
            ended.set()

    decisions: list[Any] = []

    def balance(observation: Any) -> int:
        decisions.append(observation)
        return int(observation[2] > 0)

    env_class = GymEnvironment("CartPole-v1")
    agent = PolicyAgent(balance, action_space=gymnasium.spaces.Discrete(2))
    orchestrator = orchestrate(
        serve(env_class), env_class.config, players=[serve(agent)], observers=[serve(Watcher)] * 2
    )
    with Connection(builtin, orchestrator.endpoint, timeout=TIMEOUT) as connection:
        assert builtin.trial.config_type is not None
        config = builtin.trial.config_type(seed=3)
        trial = connection.start_trial(builtin.actor_classes.player, config)
        assert trial.actor_id == -1  # no human slot: the client only watches
        assert trial.wait_for_end(TIMEOUT)
    assert ended.wait(TIMEOUT)
    reference = gymnasium.make("CartPole-v1")
    expected, _ = reference.reset(seed=3)
    assert same(decisions[0], expected)  # decoded as it travels: a float32 array
    assert len(seen) == 2 * len(decisions)  # both observers, every tick the player decided on
    assert [o.value for o in seen[0::2]] == [o.value for o in seen[1::2]]
    steps = 0
    for observation in decisions:
        expected, _reward, terminated, truncated, _ = reference.step(int(observation[2] > 0))
        steps += 1
    assert terminated or truncated  # the trial lasted as long as the episode
    assert steps == len(decisions)


def test_unsupported_spaces_are_refused_before_any_trial() -> None:
    with pytest.raises(UnsupportedSpaceError, match=r"player: observation_space: Text"):
        GymEnvironment(TextEnv)
    with pytest.raises(cogment.ConfigurationError, match="unknown Gymnasium environment 'No-v0'"):
        GymEnvironment("No-v0")


def test_a_trial_for_another_env_is_refused_at_start(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    taxi = GymEnvironment("Taxi-v3")
    orchestrator = orchestrate(serve(GymEnvironment("CartPole-v1")), taxi.config)
    with trial_env(orchestrator) as env:
        assert env.observation_space == gymnasium.spaces.Discrete(500)
        with pytest.raises(cogment.TrialError, match="this service serves 'CartPole-v1'"):
            env.reset()


def test_trial_env_needs_a_human_slot_and_spaces(
    serve: Callable[..., str], orchestrate: Callable[..., Any]
) -> None:
    env_class = GymEnvironment("CartPole-v1")
    endpoint = serve(env_class)
    no_slot = orchestrate(endpoint, env_class.config, players=[serve(PolicyAgent(lambda o: 0))])
    with pytest.raises(cogment.ConfigurationError, match="no human 'player' slot"):
        trial_env(no_slot)
    no_spaces = orchestrate(endpoint, env_config("CartPole-v1", []))
    with pytest.raises(cogment.ConfigurationError, match="describe no spaces"):
        trial_env(no_spaces)
    with pytest.raises(cogment.ConfigurationError, match="unknown actor class 'pilot'"):
        trial_env(no_spaces, actor_class="pilot")


def test_a_trial_env_over_tls(serve: Callable[..., str], tls_certificate: Any) -> None:
    env_class = GymEnvironment("CartPole-v1")
    params = builtin.trial_params(serve(env_class), env_class.config)
    with cogment.Orchestrator(
        builtin,
        default_trial_params=params,
        pre_hooks=[],
        datalog_endpoint="",
        response_timeout=TIMEOUT,
        tls_cert=str(tls_certificate.cert),
        tls_key=str(tls_certificate.key),
    ) as orchestrator:
        assert orchestrator.endpoint.startswith("grpcs://")
        env = TrialEnv(
            builtin, orchestrator.endpoint, timeout=TIMEOUT, tls_ca=str(tls_certificate.cert)
        )
        try:
            observation, _ = env.reset(seed=3)
            assert same(observation, gymnasium.make("CartPole-v1").reset(seed=3)[0])
            env.step(0)
        finally:
            env.close()
