"""CartPole through Cogment: a linear policy trained with the cross-entropy method (numpy
only) on a `TrialEnv`, then served as a `PolicyAgent` and checked in trials.

    python train.py [--orchestrator localhost:9000] [--target 195] [--quick]

Every episode is a Cogment trial: the env runs in its own process (`cogment gym serve`), the
orchestrator in another, and this client holds the trial's player slot. Training stops once
the mean policy averages `--target` over 20 episodes. Then the policy plays as an agent
(`cogment.gym.PolicyAgent`, served here by a `GrpcServer`) in trials run by an orchestrator
started here (its player slot points at the agent), and its returns are printed.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

import cog_settings
import numpy as np

import cogment
from cogment.client import Connection
from cogment.gym import PolicyAgent, TrialEnv

EVALUATION_EPISODES = 20


def act(weights: np.ndarray, observation: np.ndarray) -> int:
    """The linear policy: push right when w·observation + b > 0."""
    return int(observation @ weights[:4] + weights[4] > 0)


def play(env: TrialEnv, weights: np.ndarray, seed: Any = None) -> float:
    """One episode (one trial); returns its return."""
    observation, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        observation, reward, terminated, truncated, _ = env.step(act(weights, observation))
        total += float(reward)
        done = terminated or truncated
    return total


def train(env: TrialEnv, args: argparse.Namespace) -> tuple[np.ndarray, int, float]:
    """The cross-entropy method: sample weights, keep the elite, refit; returns the mean
    weights, the number of episodes played and their evaluated average return."""
    rng = np.random.default_rng(args.seed)
    env.reset(seed=args.seed)  # later resets without a seed draw theirs from this one
    mean, std = np.zeros(5), np.ones(5)
    episodes, average = 0, 0.0
    n_elite = max(2, args.population // 4)
    for iteration in range(1, args.iterations + 1):
        candidates = mean + std * rng.standard_normal((args.population, 5))
        seed = int(rng.integers(2**31))  # every candidate starts alike: a fair comparison
        returns = np.array([play(env, w, seed) for w in candidates])
        episodes += len(candidates)
        elite = candidates[np.argsort(returns)[-n_elite:]]
        mean, std = elite.mean(axis=0), elite.std(axis=0) + 0.02
        print(
            f"iteration {iteration}: {episodes} episodes, mean return {returns.mean():.1f}, "
            f"best {returns.max():.0f}",
            flush=True,
        )
        if returns[np.argsort(returns)[-n_elite:]].mean() >= args.target or args.quick:
            evaluation = [play(env, mean) for _ in range(args.evaluation_episodes)]
            episodes += len(evaluation)
            average = float(np.mean(evaluation))
            print(f"evaluation: average return {average:.1f} over {len(evaluation)} episodes")
            if average >= args.target:
                break
    return mean, episodes, average


def check_as_agent(weights: np.ndarray, orchestrator: str, trials: int) -> list[float]:
    """Serves the policy with PolicyAgent and lets it play `trials` trials; their returns."""
    returns: list[float] = []
    done = threading.Semaphore(0)

    class Player(PolicyAgent(lambda observation: act(weights, observation))):  # type: ignore[misc]
        """The policy as an agent, adding up the rewards it gets."""

        total = 0.0

        def reward(self, reward: Any) -> None:
            self.total += reward.value

        def end(self) -> None:
            returns.append(self.total)
            done.release()

    with Connection(cog_settings, orchestrator) as connection:
        params = connection.get_trial_params()  # the launched env's endpoint
    with cogment.GrpcServer(Player, cog_settings, port=0, host="127.0.0.1") as agent:
        params.actors[0].endpoint = f"grpc://127.0.0.1:{agent.port}"
        with cogment.Orchestrator(cog_settings, default_trial_params=params) as local:  # noqa: SIM117
            with Connection(cog_settings, local.endpoint, timeout=60) as connection:
                for seed in range(trials):
                    config = cog_settings.trial.config_type(seed=1000 + seed)
                    trial = connection.start_trial("player", config)  # no slot: it watches
                    if not trial.wait_for_end(120) or not done.acquire(timeout=30):
                        raise RuntimeError(f"trial {trial.id} did not end in time")
    return returns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orchestrator", default="localhost:9000")
    parser.add_argument("--target", type=float, default=195.0)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--evaluation-episodes", type=int, default=EVALUATION_EPISODES)
    parser.add_argument("--check-trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (tests)")
    args = parser.parse_args()
    if args.quick:
        args.population, args.iterations = 5, 1
        args.evaluation_episodes, args.check_trials = 2, 1

    started = time.monotonic()
    env = TrialEnv(cog_settings, args.orchestrator)
    try:
        weights, episodes, average = train(env, args)
    finally:
        env.close()
    seconds = time.monotonic() - started
    print(
        f"trained: average return {average:.1f} over {args.evaluation_episodes} episodes "
        f"after {episodes} episodes in {seconds:.1f} s; weights {np.round(weights, 3).tolist()}"
    )
    returns = check_as_agent(weights, args.orchestrator, args.check_trials)
    print(
        f"as a PolicyAgent: returns {[round(r) for r in returns]} (average {np.mean(returns):.1f})"
    )
    if not args.quick and (average < args.target or np.mean(returns) < args.target):
        print(f"below the target of {args.target:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
