"""The Gymnasium and PettingZoo bridges (optional extras; the public names are in
`cogment.gym` and `cogment.pettingzoo`).

* `spaces`: Gymnasium spaces and their values as `cogment_bridges` messages, both ways.
* `settings`: the built-in settings of a bridge project (what `cogment gym init` writes).
* `gym_env`, `pettingzoo_env`: Gymnasium / PettingZoo envs served as Cogment environments.
* `trial_env`, `parallel_env`: Cogment trials seen as a `gymnasium.Env` / a `ParallelEnv`.
* `policy_agent`: a numpy policy served as a Cogment agent.
* `project`, `gym_cli`, `pettingzoo_cli`: `cogment gym ...`, `cogment pettingzoo ...`.

Nothing here is imported by `import cogment`; only these modules import gymnasium, numpy and
pettingzoo.
"""
