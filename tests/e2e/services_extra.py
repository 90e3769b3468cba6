"""Extra services for the end-to-end tests, on top of tests/project/services.py.

* `FailingEnv`: a BoardEnv whose `update` raises at tick N when the trial's user id (which
  the hooks copy into `EnvConfig.label` as "hooked:<user_id>") is "fail-env:<N>".
* `FailingPlayer`: a PlayerAgent whose `decide` raises on the observation of tick 2.
* `RoutingHooks`: the project's Hooks, then picks the services by user id: the endpoints of
  `routes[<prefix>]` (keys "environment", "player", "watcher") for the first prefix the
  user id starts with, else those of `routes[""]`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from services import BoardEnv, Hooks, PlayerAgent

FAILURE = "board on fire at tick {tick}"
AGENT_FAILURE = "player lost its marbles at turn {turn}"


class FailingEnv(BoardEnv):
    def start(self, config: Any) -> Any:
        label = config.label if config is not None else ""
        _, _, rest = label.partition("fail-env:")
        self.fail_at = int(rest) if rest.isdigit() else -1
        return super().start(config)

    def update(self, actions: Any) -> Any:
        if self.trial.tick_id == self.fail_at:
            raise RuntimeError(FAILURE.format(tick=self.trial.tick_id))
        return super().update(actions)


class FailingPlayer(PlayerAgent):
    def decide(self, observation: Any) -> Any:
        if observation.turn == 2:
            raise RuntimeError(AGENT_FAILURE.format(turn=observation.turn))
        return super().decide(observation)


class RoutingHooks(Hooks):
    routes: ClassVar[dict[str, dict[str, str]]] = {}

    @classmethod
    def with_routes(cls, routes: dict[str, dict[str, str]]) -> type[RoutingHooks]:
        return type("RoutingHooks", (cls,), {"routes": routes})

    def pre_trial(self, trial_id: str, user_id: str, trial_params: Any) -> Any:
        trial_params = super().pre_trial(trial_id, user_id, trial_params)
        prefix = next((p for p in self.routes if p and user_id.startswith(p)), "")
        route = self.routes.get(prefix, {})
        if "environment" in route:
            trial_params.environment.endpoint = route["environment"]
        for actor in trial_params.actors:
            if actor.endpoint != "human" and actor.actor_class in route:
                actor.endpoint = route[actor.actor_class]
        return trial_params
