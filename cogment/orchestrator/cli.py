"""`cogment orchestrator`: serve a project's trials until SIGINT/SIGTERM.

cogment orchestrator [--file cogment.yaml] [--port 9000] [--host 127.0.0.1]
                     [--log-level info] [--response-timeout 60] [--max-message-mb 64]
                     [--tls-cert FILE --tls-key FILE] [--tls-ca FILE]
                     [--transport auto|stream|unary]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Optional

from cogment.constants import DEFAULT_MAX_MESSAGE_MB
from cogment.endpoint import GRPCS_SCHEME, host_port, port_argument
from cogment.errors import ConfigurationError

from .endpoints import TRANSPORTS

LOG_LEVELS = ("debug", "info", "warning", "error")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the orchestrator's options to `parser`."""
    parser.add_argument("--file", default="cogment.yaml", help="the project's cogment.yaml")
    parser.add_argument("--port", type=port_argument, default=9000, help="port to serve on (9000)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to serve on (127.0.0.1)")
    parser.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=LOG_LEVELS,
        help="logging level (info)",
    )
    parser.add_argument(
        "--max-message-mb",
        type=_positive,
        default=DEFAULT_MAX_MESSAGE_MB,
        help=f"the largest message a client may send, in MiB ({DEFAULT_MAX_MESSAGE_MB:g})",
    )
    parser.add_argument(
        "--response-timeout",
        type=_positive,
        default=60.0,
        help="deadline of every call to a service, in seconds (60)",
    )
    parser.add_argument(
        "--advertise",
        metavar="HOST:PORT",
        help="the address clients and other orchestrators reach this one at, put into the "
        "ids of its trials (default: the bound address)",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve TLS with this PEM certificate (chain); needs --tls-key",
    )
    parser.add_argument(
        "--tls-key", metavar="FILE", help="the PEM private key of --tls-cert (unencrypted)"
    )
    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="PEM CA certificates checking the services called at grpcs:// endpoints "
        "(default: the system's roots)",
    )
    parser.add_argument(
        "--transport",
        default="auto",
        choices=TRANSPORTS,
        help="how agents and environments are called: auto (default: one stream per actor "
        "and trial with the services that serve cogment-py's streams, unary calls with the "
        "others), stream (streams only), unary (the 0.5 unary calls only)",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    return configure_parser(
        argparse.ArgumentParser(
            prog="cogment orchestrator", description="Run a Cogment project's trials."
        )
    )


async def _serve(args: argparse.Namespace, settings: object) -> None:
    from .datalog import describe
    from .service import OrchestratorServer

    server = OrchestratorServer(
        settings,
        response_timeout=args.response_timeout,
        max_message_mb=args.max_message_mb,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca,
        tls_names=("--tls-cert", "--tls-key"),
        transport=args.transport,
        advertise=args.advertise,
    )
    port = await server.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    project = getattr(settings, "project_file", args.file)
    where = host_port(args.host, port)
    if server.tls:
        where = GRPCS_SCHEME + where
    recording = f"; {describe(server.datalog)}" if server.datalog is not None else ""
    print(f"orchestrator listening on {where} (project: {project}{recording})", flush=True)
    try:
        await stop.wait()
    finally:
        logging.getLogger("cogment.orchestrator").info(
            "stopping: ending %d running trials", len(server.registry)
        )
        await server.stop()


def run(args: argparse.Namespace) -> int:
    """Serves until SIGINT/SIGTERM; 0 on a clean stop, 1 on a configuration error."""
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .runner import load_project

    try:
        try:
            settings = load_project(args.file)
        except ConfigurationError:
            raise
        except Exception as error:  # the project's own python modules failed to import
            raise ConfigurationError(
                f"{os.path.abspath(args.file)}: cannot load the project's settings "
                f"({type(error).__name__}: {error})"
            ) from None
        asyncio.run(_serve(args, settings))
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(build_parser().parse_args(argv))
