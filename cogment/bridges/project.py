"""Writes a bridge project: what `cogment gym init` and `cogment pettingzoo init` make.

DIR/cogment.yaml          the project: actor classes `player` and `observer`, the env's
                          spaces in trial_params.environment.config, human player slots
DIR/cogment_bridges.proto the bridge's messages (a copy of the installed one, unchanged)
DIR/launch.yaml           `cogment launch launch.yaml`: serves the env, runs an orchestrator
                          and play.py
DIR/play.py               a client: episodes with a random policy through TrialEnv
DIR/README.md             how to run it, part by part

`cogment generate --file cogment.yaml --python_dir=.` and `cogment orchestrator` run it
unchanged.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import yaml

from cogment.bridges import envconfig
from cogment.bridges.messages import PROTO_NAME
from cogment.bridges.proto_build import PROTO_PATH
from cogment.bridges.settings import OBSERVER, PLAYER
from cogment.errors import ConfigurationError

FILES = ("cogment.yaml", PROTO_NAME, "launch.yaml", "play.py", "README.md")
EXISTS = "{path} already exists (pass --force to overwrite the project's files)"

_HEADER = """\
# Written by `cogment {kind} init {target}`: {what}.
# Serve the env with `cogment {kind} serve {target} --port {env_port}`, then
# `cogment generate --file cogment.yaml --python_dir=.` and `cogment orchestrator`.
# The environment config describes the env's spaces (a TrialEnv reads them from it; the
# served env checks them): write the project again if the env changes.
"""

_GYM_PLAY = '''\
"""Plays episodes of {target} through Cogment with a random policy (replace it with yours).

    python play.py [--orchestrator localhost:{orchestrator_port}] [--episodes 3]
"""

import argparse

import cog_settings
from cogment.gym import TrialEnv


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orchestrator", default="localhost:{orchestrator_port}")
    parser.add_argument("--episodes", type=int, default=3)
    args = parser.parse_args()
    env = TrialEnv(cog_settings, args.orchestrator)
    try:
        for episode in range(args.episodes):
            observation, info = env.reset(seed=episode)
            total, steps, done = 0.0, 0, False
            while not done:
                action = env.action_space.sample()  # your policy(observation) here
                observation, reward, terminated, truncated, info = env.step(action)
                total += reward
                steps += 1
                done = terminated or truncated
            print(f"episode {{episode}}: return {{total:g}} in {{steps}} steps ({{info['end_reason']}})")
    finally:
        env.close()


if __name__ == "__main__":
    main()
'''

_PETTINGZOO_PLAY = '''\
"""Plays episodes of {target} through Cogment, every agent with a random policy.

    python play.py [--orchestrator localhost:{orchestrator_port}] [--episodes 3]
"""

import argparse

import cog_settings
from cogment.pettingzoo import TrialParallelEnv


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orchestrator", default="localhost:{orchestrator_port}")
    parser.add_argument("--episodes", type=int, default=3)
    args = parser.parse_args()
    env = TrialParallelEnv(cog_settings, args.orchestrator)
    try:
        for episode in range(args.episodes):
            observations, infos = env.reset(seed=episode)
            totals = dict.fromkeys(env.possible_agents, 0.0)
            steps = 0
            while env.agents:
                actions = {{agent: env.action_space(agent).sample() for agent in env.agents}}
                observations, rewards, terminations, truncations, infos = env.step(actions)
                for agent, reward in rewards.items():
                    totals[agent] += reward
                steps += 1
            returns = ", ".join(f"{{agent}} {{total:g}}" for agent, total in totals.items())
            print(f"episode {{episode}}: {{steps}} steps; returns: {{returns}}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
'''

_README = """\
# {target} through Cogment

Written by `cogment {kind} init {target}`. Everything at once:

```sh
cogment launch launch.yaml
```

or part by part, from this folder, in three terminals:

```sh
cogment {kind} serve {target} --port {env_port}                      # the environment
cogment generate --file cogment.yaml --python_dir=. && cogment orchestrator --port {orchestrator_port}
python play.py --orchestrator localhost:{orchestrator_port}                # {client}
```

`cogment.yaml` has {players} human `player` slot(s) (give one an agent's endpoint, e.g. a
`cogment.gym.PolicyAgent` served with `cogment.GrpcServer`, to have it play), and can have
`observer` actors (they see the env; their actions are ignored).
"""


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def project_files(
    kind: str,
    target: str,
    config: Any,
    *,
    env_port: int = 9002,
    orchestrator_port: int = 9000,
) -> dict[str, str]:
    """The text of each file of the project (but the proto), by file name.

    Args:
        kind: "gym" or "pettingzoo".
        target: what `cogment <kind> serve` takes (the env id, or module:function).
        config: the served env's EnvConfig (its spaces).
    """
    players = len(config.agents)
    what = (
        f"the Gymnasium env {target} as a Cogment project"
        if kind == "gym"
        else f"the PettingZoo env {target} ({players} agents) as a Cogment project"
    )
    project = {
        "import": {"proto": [PROTO_NAME]},
        "trial": {"config_type": "cogment_bridges.TrialConfig"},
        "environment": {"config_type": "cogment_bridges.EnvConfig"},
        "actor_classes": [
            {
                "id": actor_class,
                "action": {"space": "cogment_bridges.Action"},
                "observation": {"space": "cogment_bridges.Observation"},
            }
            for actor_class in (PLAYER, OBSERVER)
        ],
        "trial_params": {
            "max_steps": 0,
            "max_inactivity": 30,
            "environment": {
                "endpoint": f"grpc://localhost:{env_port}",
                "config": envconfig.to_yaml_data(config),
            },
            "actors": [{"actor_class": PLAYER, "endpoint": "human"} for _ in range(players)],
        },
    }
    header = _HEADER.format(kind=kind, target=target, what=what, env_port=env_port)
    launch = {
        "project": "cogment.yaml",
        "generate": {"python_dir": "."},
        "orchestrator": {"port": orchestrator_port},
        "services": [
            {
                "name": "environment",
                "command": f"python -m cogment.cli {kind} serve {target} --port {{port}}",
                "port": env_port,
            }
        ],
        "client": {
            "name": "play",
            "command": "python play.py --orchestrator localhost:{orchestrator_port}",
        },
    }
    play = _GYM_PLAY if kind == "gym" else _PETTINGZOO_PLAY
    formats = {
        "kind": kind,
        "target": target,
        "env_port": env_port,
        "orchestrator_port": orchestrator_port,
        "players": players,
        "client": "episodes with a random policy" if kind == "gym" else "every agent at random",
    }
    return {
        "cogment.yaml": header + "\n" + _yaml(project),
        "launch.yaml": f"# `cogment launch launch.yaml`: {target} served, an orchestrator, play.py\n"
        + _yaml(launch),
        "play.py": play.format(**formats),
        "README.md": _README.format(**formats),
    }


def write_project(
    directory: str,
    kind: str,
    target: str,
    config: Any,
    *,
    env_port: int = 9002,
    orchestrator_port: int = 9000,
    force: bool = False,
) -> list[str]:
    """Writes the project into `directory` (created if needed); returns the paths written.

    Raises:
        ConfigurationError: a file exists (without `force`), or the folder is not writable.
    """
    for port, what in ((env_port, "--env-port"), (orchestrator_port, "--orchestrator-port")):
        if not 0 < port < 65536:
            raise ConfigurationError(f"{what} must be a port number from 1 to 65535, got {port}")
    if env_port == orchestrator_port:
        raise ConfigurationError(f"the env and the orchestrator cannot share port {env_port}")
    files = project_files(
        kind, target, config, env_port=env_port, orchestrator_port=orchestrator_port
    )
    paths = [os.path.join(directory, name) for name in FILES]
    if not force:
        for path in paths:
            if os.path.exists(path):
                raise ConfigurationError(EXISTS.format(path=path))
    try:
        os.makedirs(directory, exist_ok=True)
        shutil.copyfile(PROTO_PATH, os.path.join(directory, PROTO_NAME))
        for name, text in files.items():
            with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
                f.write(text)
    except OSError as error:
        raise ConfigurationError(
            f"{directory}: cannot write the project ({error.strerror})"
        ) from None
    return paths
