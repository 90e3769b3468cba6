"""`cogment gym`: serve a Gymnasium env, or write a project around one.

cogment gym serve ENV_ID [--port 9002] [--host [::]] [--render]
cogment gym init ENV_ID DIR [--env-port 9002] [--orchestrator-port 9000] [--force]

Argument parsing needs no extra; running a command needs `pip install "cogment[gym]"`. Every
user mistake (a missing extra, an unknown env id, a port in use) is one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Callable

from cogment.endpoint import port_argument
from cogment.errors import CogmentError

KIND = "gym"


def add_commands(parser: argparse.ArgumentParser, kind: str, target_help: str) -> None:
    """The `serve` and `init` subcommands of `cogment <kind>`."""
    commands = parser.add_subparsers(dest="action", metavar="ACTION")
    serve = commands.add_parser("serve", help=f"serve {target_help} as a Cogment environment")
    serve.add_argument("target", metavar="ENV", help=target_help)
    serve.add_argument("--port", type=port_argument, default=9002, help="port to serve on (9002)")
    serve.add_argument("--host", default="[::]", help="interface to serve on (all)")
    serve.add_argument(
        "--render", action="store_true", help="send rendered frames (rgb_array) in observations"
    )
    init = commands.add_parser("init", help=f"write a Cogment project around {target_help}")
    init.add_argument("target", metavar="ENV", help=target_help)
    init.add_argument("directory", metavar="DIR", help="the project's folder (created)")
    init.add_argument("--env-port", type=port_argument, default=9002, help="the env's port (9002)")
    init.add_argument(
        "--orchestrator-port",
        type=port_argument,
        default=9000,
        help="the orchestrator's port (9000)",
    )
    init.add_argument("--force", action="store_true", help="overwrite the project's files")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Adds `cogment gym serve|init` to `parser`."""
    add_commands(parser, KIND, "a Gymnasium env id (e.g. CartPole-v1)")


def run_command(
    args: argparse.Namespace,
    kind: str,
    make_class: Callable[[str, bool], Any],
) -> int:
    """Runs `serve` or `init` with the environment class `make_class(target, render)`."""
    if args.action is None:
        print(
            f"usage: cogment {kind} {{serve,init}} ... (see cogment {kind} --help)", file=sys.stderr
        )
        return 2
    try:
        if args.action == "init":
            return _init(args, kind, make_class)
        return _serve(args, make_class)
    except (CogmentError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _init(args: argparse.Namespace, kind: str, make_class: Callable[[str, bool], Any]) -> int:
    from cogment.bridges.project import write_project

    env_class = make_class(args.target, False)
    write_project(
        args.directory,
        kind,
        args.target,
        env_class.config,
        env_port=args.env_port,
        orchestrator_port=args.orchestrator_port,
        force=args.force,
    )
    print(
        f"wrote the project of {env_class.env_id} in {args.directory}: "
        f"cogment launch {args.directory}/launch.yaml"
    )
    return 0


def _serve(args: argparse.Namespace, make_class: Callable[[str, bool], Any]) -> int:
    import cogment
    from cogment.bridges import settings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    env_class = make_class(args.target, args.render)
    server = cogment.GrpcServer(env_class, settings, port=args.port, host=args.host)
    try:
        server.serve()  # logs "serving ... on host:port"; until SIGINT/SIGTERM
    finally:
        server.stop()  # also after a Ctrl-C that came before serve() watched for it
    return 0


def _gym_class(target: str, render: bool) -> Any:
    from cogment.bridges.extras import require

    require("gym", f"cogment {KIND}")
    from cogment.bridges.gym_env import GymEnvironment

    return GymEnvironment(target, render=render)


def run(args: argparse.Namespace) -> int:
    """Runs `cogment gym ...`; returns the exit code."""
    return run_command(args, KIND, _gym_class)
