"""`TrialParallelEnv`: a Cogment trial seen as a PettingZoo `ParallelEnv`.

It holds every human `player` slot of the trial (the first by starting the trial, the others
by joining it), so a multi-agent learner drives them all; the other seats may be agents.

```python
env = TrialParallelEnv(cog_settings, "127.0.0.1:9000")
observations, infos = env.reset(seed=0)
while env.agents:
    actions = {agent: env.action_space(agent).sample() for agent in env.agents}
    observations, rewards, terminations, truncations, infos = env.step(actions)
env.close()
```
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional, Union

import grpc
from gymnasium import spaces as gs
from gymnasium.utils import seeding
from pettingzoo.utils.env import ParallelEnv

from cogment.bridges import envconfig, observation, spaces
from cogment.bridges.settings import PLAYER
from cogment.client import ClientTrial, Connection
from cogment.constants import HUMAN_ENDPOINT
from cogment.errors import CogmentError, ConfigurationError, TrialEndedError

log = logging.getLogger("cogment.bridges")

NO_HUMANS = (
    "the orchestrator's default trial parameters have no human player slot for a "
    "TrialParallelEnv (trial_params.actors: give the players the endpoint 'human')"
)


class TrialParallelEnv(ParallelEnv):  # type: ignore[type-arg]
    """A Cogment trial as a PettingZoo ParallelEnv: each episode a trial, each step one
    `do_action` per live agent (sent concurrently).

    `possible_agents` are the agents of the human player slots (named as the env's config
    says). An agent is live until its observation says it terminated or was truncated; the
    slot of an agent that left keeps acting (an empty action) until the trial ends, as the
    orchestrator waits for every human slot. Rewards are each agent's combined feedback.
    `reset(seed=..., options=...)` starts a trial (seed and options in its config); a
    trial still running is ended by the next `reset()` and by `close()`.

    Args:
        cog_settings: the project's cog_settings (or `cogment.gym.settings`).
        endpoint: the orchestrator, `host:port` or `grpc://host:port`.
        timeout: deadline of each call to the orchestrator, in seconds (None: none).
        tls_ca: for a `grpcs://` endpoint, the CA file that checks the orchestrator's
            certificate (None: the system's roots).

    Raises:
        ConfigurationError: no human player slot, or no spaces in the project.
    """

    metadata: dict[str, Any] = {"render_modes": [], "name": "cogment_trial"}

    def __init__(
        self,
        cog_settings: Any,
        endpoint: Union[str, grpc.Channel],
        *,
        timeout: Optional[float] = None,
        tls_ca: Optional[str] = None,
    ) -> None:
        self.render_mode = None
        self._connection = Connection(cog_settings, endpoint, timeout=timeout, tls_ca=tls_ca)
        self._trials: list[ClientTrial] = []
        self._pool: Optional[ThreadPoolExecutor] = None
        try:
            self._setup(cog_settings)
        except BaseException:
            self._connection.close()
            raise

    def _setup(self, cog_settings: Any) -> None:
        params = self._connection.get_trial_params()
        self._player_class = cog_settings.actor_classes.get(PLAYER)
        if self._player_class is None:
            raise ConfigurationError(f"the project has no {PLAYER!r} actor class")
        seats: list[int] = []  # the seat (index among players) of each human player slot
        index = 0
        for actor in params.actors:
            if actor.actor_class == PLAYER:
                if actor.endpoint == HUMAN_ENDPOINT:
                    seats.append(index)
                index += 1
        if not seats:
            raise ConfigurationError(NO_HUMANS)
        config_type = cog_settings.environment.config_type
        if config_type is None or not params.environment.HasField("config"):
            raise ConfigurationError(envconfig.NO_SPACES)
        config = config_type.FromString(params.environment.config.content)
        self._seats = seats
        self.possible_agents: list[str] = []
        self.observation_spaces: dict[str, gs.Space[Any]] = {}
        self.action_spaces: dict[str, gs.Space[Any]] = {}
        for seat in seats:
            observation_space, action_space = envconfig.seat_spaces(config, seat)
            name = config.agents[seat].name or f"player_{seat}"
            self.possible_agents.append(name)
            self.observation_spaces[name] = observation_space
            self.action_spaces[name] = action_space
        self.agents: list[str] = []
        self._trial_config_type = cog_settings.trial.config_type
        self._np_random: Any = None

    def observation_space(self, agent: Any) -> gs.Space[Any]:
        return self.observation_spaces[agent]

    def action_space(self, agent: Any) -> gs.Space[Any]:
        return self.action_spaces[agent]

    def reset(
        self, seed: Optional[int] = None, options: Optional[dict[str, Any]] = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if seed is not None or self._np_random is None:
            self._np_random, _ = seeding.np_random(seed)
        self._end_trials()
        config = None
        if self._trial_config_type is not None:
            config = self._trial_config_type()
            config.seed = seed if seed is not None else int(self._np_random.integers(2**63 - 1))
            if options:
                config.options_json = json.dumps(options)
        first = self._connection.start_trial(self._player_class, config)
        trials = [first]
        try:
            players = getattr(first.actors, PLAYER)
            for seat in self._seats:
                actor_id = players[seat].actor_id
                if actor_id != first.actor_id:
                    trials.append(
                        self._connection.join_trial(self._player_class, first.id, actor_id)
                    )
        except BaseException:
            self._trials = trials
            self._end_trials()
            raise
        trials.sort(key=lambda t: t.actor_id)
        self._trials = trials
        if self._pool is None and len(trials) > 1:
            self._pool = ThreadPoolExecutor(len(trials), thread_name_prefix="cogment-parallel")
        observations, infos = {}, {}
        self.agents = []
        for name, trial in zip(self.possible_agents, trials):
            message = trial.observation
            if message.HasField("value") and not (message.terminated or message.truncated):
                observations[name] = spaces.decode(
                    self.observation_spaces[name], message.value, f"observation of {name!r}"
                )
                infos[name] = observation.read_info(message)
                self.agents.append(name)
        return observations, infos

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        if not self._trials:
            raise CogmentError("call reset() first: there is no episode under way")
        messages = []
        for name in self.possible_agents:
            message: Any = self._player_class.action_space()
            if name in self.agents and name in actions:
                spaces.encode(
                    self.action_spaces[name], actions[name], message.value, f"action of {name!r}"
                )
            messages.append(message)
        if self._pool is not None:
            futures = [
                self._pool.submit(_act, trial, message)
                for trial, message in zip(self._trials, messages)
            ]
            results = [future.result() for future in futures]
        else:
            results = [_act(self._trials[0], messages[0])]
        observations: dict[str, Any] = {}
        rewards: dict[str, float] = {}
        terminations: dict[str, bool] = {}
        truncations: dict[str, bool] = {}
        infos: dict[str, Any] = {}
        live = []
        for name, trial, result in zip(self.possible_agents, self._trials, results):
            if name not in self.agents:
                continue
            message, reward = result if result is not None else (trial.observation, 0.0)
            if message.HasField("value"):
                observations[name] = spaces.decode(
                    self.observation_spaces[name], message.value, f"observation of {name!r}"
                )
            rewards[name] = reward
            terminations[name] = bool(message.terminated)
            truncations[name] = bool(message.truncated) or (
                trial.is_over and not message.terminated
            )
            infos[name] = observation.read_info(message)
            if trial.is_over:
                infos[name]["end_reason"] = trial.end_reason
            if not (terminations[name] or truncations[name]):
                live.append(name)
        self.agents = live
        return observations, rewards, terminations, truncations, infos

    def state(self) -> Any:
        raise NotImplementedError("a trial's state is what its observers see")

    def close(self) -> None:
        self._end_trials()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        self._connection.close()

    @property
    def trial_id(self) -> Optional[str]:
        """The id of the current (or last) episode's trial."""
        return self._trials[0].id if self._trials else None

    def _end_trials(self) -> None:
        trials, self._trials = self._trials, []
        self.agents = []
        if trials and not trials[0].is_over and not self._connection.is_closed:
            try:
                trials[0].end()  # ends the trial for every slot
            except CogmentError as error:
                log.debug("trial %s: end(): %s", trials[0].id, error)


def _act(trial: ClientTrial, message: Any) -> Optional[tuple[Any, float]]:
    """One slot's do_action: (observation, reward), or None when the trial had ended."""
    if trial.is_over:
        return None
    try:
        result = trial.do_action(message)
    except TrialEndedError:
        return None
    return result.observation, float(result.reward.value)
