"""The `cogment` command: argument parsing and dispatch to the subcommands.

cogment generate [--file cogment.yaml] --python_dir=DIR
cogment orchestrator [--file cogment.yaml] [--port 9000] ...
cogment launch launch.yaml [--timeout S]
cogment gym serve ENV_ID --port N | cogment gym init ENV_ID DIR
cogment pettingzoo serve MODULE:FUNCTION --port N | cogment pettingzoo init MODULE:FUNCTION DIR
cogment datalog serve|ls|show|export ...
cogment web [--file cogment.yaml] [--orchestrator localhost:9000] [--port 8080] ...
cogment --version
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Optional

from cogment.version import API_VERSION, __version__

# subcommand -> (module with configure_parser(parser) and run(args) -> int, help)
SUBCOMMANDS = {
    "generate": ("cogment.generate", "generate cog_settings.py and the compiled protos"),
    "orchestrator": ("cogment.orchestrator.cli", "run the embedded orchestrator on a project"),
    "launch": ("cogment.launch", "run a whole project (services, orchestrator, client)"),
    "gym": ("cogment.bridges.gym_cli", "serve a Gymnasium env, or write a project around one"),
    "pettingzoo": (
        "cogment.bridges.pettingzoo_cli",
        "serve a PettingZoo parallel env, or write a project around one",
    ),
    "datalog": ("cogment.datalog.cli", "serve a datalog store, list, show and export trials"),
    "web": ("cogment.web.cli", "serve a page that lets browser tabs act in trials"),
}
# subcommands whose module reads its own command line instead: main(argv) -> int gets the
# words after the subcommand as typed (launch: what follows `--` goes to its client)
OWN_COMMAND_LINE = ("launch",)


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The `cogment` parser; only the module of `command` (if any) is imported."""
    parser = argparse.ArgumentParser(
        prog="cogment", description="Cogment: humans and AI agents acting together, over gRPC."
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"cogment-py {__version__} (cogment api {API_VERSION})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(module=module_name)
        if name == command and name not in OWN_COMMAND_LINE:
            importlib.import_module(module_name).configure_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in OWN_COMMAND_LINE:
            return int(importlib.import_module(SUBCOMMANDS[argv[0]][0]).main(argv[1:]))
        command = next((a for a in argv if not a.startswith("-")), None)
        parser = build_parser(command if command in SUBCOMMANDS else None)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return int(importlib.import_module(args.module).run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
