"""`cogment web`: serve a project's page and relay browser tabs to an orchestrator.

cogment web [--file cogment.yaml] [--orchestrator localhost:9000] [--port 8080]
            [--host 127.0.0.1] [--static DIR] [--max-tabs 64] [--max-frame BYTES]
            [--allow-origin ORIGIN ...] [--heartbeat S] [--log-level info]

This module imports without aiohttp (for `--help`); running without it is a one-line error
naming the extra.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Callable, Optional

from cogment.client.connection import DEFAULT_HEARTBEAT_INTERVAL
from cogment.endpoint import port_argument
from cogment.errors import CogmentError, ConfigurationError
from cogment.web import protocol as p

LOG_LEVELS = ("debug", "info", "warning", "error")


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the options of `cogment web` to `parser`."""
    parser.add_argument("--file", default="cogment.yaml", help="the project's cogment.yaml")
    parser.add_argument(
        "--orchestrator",
        default="localhost:9000",
        help="the orchestrator's host:port (grpcs://host:port for TLS)",
    )
    parser.add_argument(
        "--port",
        type=port_argument,
        default=p.DEFAULT_PORT,
        help=f"port to serve on ({p.DEFAULT_PORT})",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to serve on (127.0.0.1; 0.0.0.0 opens it to other machines)",
    )
    parser.add_argument(
        "--static", metavar="DIR", help="a folder whose index.html replaces the default page"
    )
    parser.add_argument(
        "--max-tabs",
        type=_count(1),
        default=p.DEFAULT_MAX_TABS,
        help=f"tabs connected at once, at most ({p.DEFAULT_MAX_TABS})",
    )
    parser.add_argument(
        "--max-frame",
        type=_count(1024),
        default=p.DEFAULT_MAX_FRAME,
        metavar="BYTES",
        help=f"the largest frame a tab may send ({p.DEFAULT_MAX_FRAME})",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another origin (http://host:port) whose pages may use the bridge; repeatable",
    )
    parser.add_argument(
        "--tls-ca",
        metavar="PEM",
        help="for an orchestrator at grpcs://host:port: the CA certificates its certificate is "
        "checked against (default: the system's)",
    )
    parser.add_argument(
        "--heartbeat",
        type=_seconds,
        default=DEFAULT_HEARTBEAT_INTERVAL,
        metavar="S",
        help=f"seconds between heartbeats of an idle tab's trial ({DEFAULT_HEARTBEAT_INTERVAL:g}; "
        "keep it well below the trials' max_inactivity)",
    )
    parser.add_argument(
        "--log-level", default="info", type=str.lower, choices=LOG_LEVELS, help="(info)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Serves until SIGINT/SIGTERM; 0 on a clean stop, 1 on a configuration error."""
    from cogment.web import require_aiohttp

    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        require_aiohttp()
        from cogment.web.server import WebBridge

        try:
            bridge = WebBridge(
                args.file,
                args.orchestrator,
                port=args.port,
                host=args.host,
                static_dir=args.static,
                max_tabs=args.max_tabs,
                max_frame=args.max_frame,
                allowed_origins=tuple(args.allow_origin),
                heartbeat_interval=args.heartbeat,
                tls_ca=args.tls_ca,
            )
        except CogmentError:
            raise
        except Exception as error:  # the project's own python modules failed to import
            raise ConfigurationError(
                f"{os.path.abspath(args.file)}: cannot load the project's settings "
                f"({type(error).__name__}: {error})"
            ) from None
        bridge.start()
    except CogmentError as error:
        print(f"cogment web: error: {error}", file=sys.stderr)
        return 1
    print(f"cogment web: open {bridge.url} (orchestrator {bridge.orchestrator})", flush=True)
    try:
        bridge.serve()
    except KeyboardInterrupt:
        bridge.stop()
        return 130
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cogment web", description="Serve a page relaying browser tabs to an orchestrator."
    )
    return run(configure_parser(parser).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
