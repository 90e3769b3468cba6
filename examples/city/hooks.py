"""The city's pre-trial hook: turns the client's TrialConfig into the environment's config
and into that many pedestrians.

    python hooks.py [--port 9003]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

import cog_settings

import cogment

log = logging.getLogger("city.hooks")

MAX_PEDESTRIANS = 10  # pedestrians are drawn as one digit
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]


class CityHooks(cogment.TrialHooks):
    VERSIONS = {"city-hooks": "1.0.0"}

    def pre_trial(
        self, trial_id: str, user_id: str, trial_params: cogment.TrialParameters
    ) -> cogment.TrialParameters:
        # what the client asked for (a city.TrialConfig; 0 means "the default") goes into the
        # environment's config; the trial config gets the values in force (agents see it)
        asked = trial_params.trial_config or cog_settings.trial.config_type()
        env_config = trial_params.environment.config or cog_settings.environment.config_type()
        env_config.pedestrians = asked.pedestrians or env_config.pedestrians or 2
        env_config.seed = asked.seed or env_config.seed
        env_config.max_collisions = asked.max_collisions or env_config.max_collisions or 3
        count = env_config.pedestrians = max(1, min(env_config.pedestrians, MAX_PEDESTRIANS))
        asked.pedestrians, asked.seed = count, env_config.seed
        asked.max_collisions = env_config.max_collisions
        trial_params.trial_config, trial_params.environment.config = asked, env_config

        # as many pedestrian actors as asked: reuse the defaults, then copy the last one
        others = [a for a in trial_params.actors if a.actor_class != "pedestrian"]
        pedestrians = [a for a in trial_params.actors if a.actor_class == "pedestrian"][:count]
        if not pedestrians:
            raise ValueError("the default trial params list no pedestrian to copy")
        while len(pedestrians) < count:
            config = type(pedestrians[-1].config)(name=NAMES[len(pedestrians)])
            pedestrians.append(dataclasses.replace(pedestrians[-1], config=config))
        trial_params.actors = others + pedestrians
        log.info(
            f"trial {trial_id[:8]} (user {user_id or '-'}): {count} pedestrians, "
            f"seed {env_config.seed}, at most {env_config.max_collisions} collisions"
        )
        return trial_params


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    parser = argparse.ArgumentParser(description="The city's pre-trial hook service.")
    parser.add_argument("--port", type=int, default=9003)
    port = parser.parse_args().port
    cogment.GrpcServer(CityHooks, cog_settings, port=port).serve()  # until Ctrl-C / SIGTERM


if __name__ == "__main__":
    main()
