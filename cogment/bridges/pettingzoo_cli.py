"""`cogment pettingzoo`: serve a PettingZoo ParallelEnv, or write a project around one.

cogment pettingzoo serve MODULE:FUNCTION [--port 9002] [--host [::]] [--render]
cogment pettingzoo init MODULE:FUNCTION DIR [--env-port 9002] [--orchestrator-port 9000]

MODULE:FUNCTION names a function making the env (importable from the current folder).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from cogment.bridges.gym_cli import add_commands, run_command

KIND = "pettingzoo"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Adds `cogment pettingzoo serve|init` to `parser`."""
    add_commands(parser, KIND, "module:function making a PettingZoo ParallelEnv")


def _pettingzoo_class(target: str, render: bool) -> Any:
    from cogment.bridges.extras import require

    require("pettingzoo", f"cogment {KIND}")
    from cogment.bridges.pettingzoo_env import PettingZooEnvironment

    if os.getcwd() not in sys.path:  # as `python -m` would: modules of the current folder
        sys.path.insert(0, os.getcwd())
    return PettingZooEnvironment(target, render=render)


def run(args: argparse.Namespace) -> int:
    """Runs `cogment pettingzoo ...`; returns the exit code."""
    return run_command(args, KIND, _pettingzoo_class)
