"""A Gymnasium env served as a Cogment environment: `GymEnvironment(env_id_or_factory)`.

```python
server = cogment.GrpcServer(GymEnvironment("CartPole-v1"), cogment.gym.settings, port=9002)
server.serve()        # what `cogment gym serve CartPole-v1 --port 9002` does
```

Each trial gets a new env from the factory. Its one `player` acts; every actor (the player and
any number of `observer`s) sees the same `Observation` (sent once): the env's observation,
`terminated`/`truncated`, the env's reward and info, the action mask when info has one, and
the rendered frame when served with `render=True`. The env's reward is the player's feedback
(confidence 1). `reset(seed=..., options=...)` takes them from the trial config; the trial ends
with the episode.
"""

from __future__ import annotations

import json
from typing import Any, Callable, ClassVar, Optional, Union

import gymnasium
import numpy as np

import cogment
from cogment.bridges import envconfig, observation, spaces
from cogment.bridges.settings import OBSERVER, PLAYER
from cogment.errors import ConfigurationError

EnvFactory = Callable[[], gymnasium.Env[Any, Any]]

UNKNOWN_ENV = "unknown Gymnasium environment {env_id!r}: {error}"
NOT_RGB = (
    "{env_id}: render=True needs an env whose render_mode is 'rgb_array' (got {mode!r}); "
    "make it with render_mode='rgb_array'"
)
ONE_PLAYER = "trial {trial_id}: a Gymnasium environment has one player, the trial has {count}"


def make_factory(env: Union[str, EnvFactory], render: bool = False) -> tuple[EnvFactory, str]:
    """(factory, env id) for an env id (made with `gymnasium.make`) or a factory."""
    if isinstance(env, str):
        env_id = env
        render_mode = "rgb_array" if render else None
        return (lambda: gymnasium.make(env_id, render_mode=render_mode)), env_id
    if not callable(env):
        raise ConfigurationError(
            f"expected a Gymnasium env id or a function making an env, got {env!r}"
        )
    return env, getattr(env, "__name__", type(env).__name__)


def probe(factory: EnvFactory, env_id: str) -> gymnasium.Env[Any, Any]:
    """One env from the factory, or a ConfigurationError saying why there is none."""
    try:
        env = factory()
    except gymnasium.error.Error as error:  # unknown id, missing dependency, bad argument
        raise ConfigurationError(UNKNOWN_ENV.format(env_id=env_id, error=error)) from None
    except ImportError as error:
        raise ConfigurationError(f"{env_id}: {error}") from None
    if not isinstance(env, gymnasium.Env):
        raise ConfigurationError(f"{env_id}: the factory made a {type(env).__name__}, not an Env")
    return env


def _check_frames(env: gymnasium.Env[Any, Any], env_id: str) -> None:
    """Renders once, so a missing renderer (e.g. pygame) is told now, not in a trial."""
    if env.render_mode != "rgb_array":
        raise ConfigurationError(NOT_RGB.format(env_id=env_id, mode=env.render_mode))
    try:
        env.reset(seed=0)
        frame: Any = env.render()
    except (gymnasium.error.Error, ImportError) as error:
        raise ConfigurationError(f"{env_id}: cannot render: {error}") from None
    if not isinstance(frame, np.ndarray):
        raise ConfigurationError(f"{env_id}: render() gave {type(frame).__name__}, not an array")


class _GymEnvironment(cogment.Environment):
    """One trial of a served Gymnasium env (subclassed by `GymEnvironment`)."""

    factory: ClassVar[EnvFactory]
    env_id: ClassVar[str]
    render: ClassVar[bool]
    observation_space: ClassVar[gymnasium.Space[Any]]
    action_space: ClassVar[gymnasium.Space[Any]]
    config: ClassVar[Any]  # the EnvConfig describing it

    def start(self, config: Optional[Any]) -> Any:
        trial = self.trial
        problem = envconfig.mismatch(self.config, config)
        if problem:
            raise ConfigurationError(problem)
        counts = dict(zip(trial.settings.actor_classes.ids, trial.actor_counts))
        if counts.get(PLAYER) != 1:
            raise ConfigurationError(
                ONE_PLAYER.format(trial_id=trial.id, count=counts.get(PLAYER, 0))
            )
        self._observation_type = getattr(trial.settings.actor_classes, PLAYER).observation_space
        self._player = getattr(trial.actors, PLAYER)[0]
        self._info = observation.InfoEncoder(f"{self.env_id} (trial {trial.id})")
        seed, options = None, None
        trial_config = trial.trial_config
        if trial_config is not None:
            if trial_config.HasField("seed"):
                seed = trial_config.seed
            if trial_config.options_json:
                options = json.loads(trial_config.options_json)
        self._env = type(self).factory()
        value, info = self._env.reset(seed=seed, options=options)
        return self._observe(value, info, 0.0, False, False)

    def update(self, actions: Any) -> Any:
        action = spaces.decode(
            self.action_space, actions.all[self._player.actor_id].value, "action"
        )
        value, reward, terminated, truncated, info = self._env.step(action)
        self._player.add_feedback(value=float(reward), confidence=1.0)
        if terminated or truncated:
            self.end_trial = True
        return self._observe(value, info, reward, bool(terminated), bool(truncated))

    def _observe(
        self, value: Any, info: Any, reward: Any, terminated: bool, truncated: bool
    ) -> Any:
        return observation.fill(
            self._observation_type(),
            self.observation_space,
            value,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            info=info,
            info_encoder=self._info,
            frame=self._env.render() if self.render else None,
        )

    def end(self) -> None:
        env = getattr(self, "_env", None)
        if env is not None:
            env.close()


def GymEnvironment(
    env: Union[str, EnvFactory], *, render: bool = False, env_id: Optional[str] = None
) -> type[_GymEnvironment]:
    """A `cogment.Environment` class serving a Gymnasium env (serve it with `GrpcServer`).

    Args:
        env: an env id (`gymnasium.make(env)` for each trial) or a function making an env.
        render: send `env.render()` (an RGB array) in every observation's `frame`; an env id
            is then made with `render_mode="rgb_array"`.
        env_id: the name the env goes by in the project (default: the id, or the factory's
            name).

    Raises:
        ConfigurationError: the env cannot be made (unknown id, missing dependency), it does
            not render RGB arrays when asked to, or one of its spaces cannot travel
            (`UnsupportedSpaceError`: Text, Graph, Sequence...).
    """
    factory, default_id = make_factory(env, render)
    name = env_id or default_id
    sample = probe(factory, name)
    try:
        if render:
            _check_frames(sample, name)
        config = envconfig.env_config(
            name, [(PLAYER, sample.observation_space, sample.action_space)]
        )
        observation_space, action_space = sample.observation_space, sample.action_space
    finally:
        sample.close()
    attributes = {
        "factory": staticmethod(factory),
        "env_id": name,
        "render": render,
        "observation_space": observation_space,
        "action_space": action_space,
        "config": config,
        "VERSIONS": {"gymnasium": gymnasium.__version__, "env": name},
        "__doc__": f"The Gymnasium env {name!r} served as a Cogment environment.",
    }
    return type(f"GymEnvironment[{name}]", (_GymEnvironment,), attributes)


__all__ = ["OBSERVER", "PLAYER", "GymEnvironment"]
