"""`cogment launch`: run a whole project (services, orchestrator, client) from one file.

    cogment launch LAUNCH_FILE [--interactive | --web] [--timeout S] [--startup-timeout S]
                   [--free-ports] [--log-level LEVEL] [-- CLIENT ARGS...]
    python -m cogment.launch ...  (the same)

The launch file (YAML; every path is relative to the folder of the launch file, which is
also the working directory of every command):

    project: cogment.yaml          # optional (default cogment.yaml)
    generate:                      # optional; omit to never run `cogment generate`
      python_dir: .                # cog_settings.py is (re)generated here when it is missing
                                   # or older than cogment.yaml, an imported .proto or module
    tls:                           # optional: the orchestrator and the services serve TLS
      cert: cert.pem               # PEM certificate (naming localhost) and its key: the
      key: key.pem                 # orchestrator's, and {tls_cert} {tls_key} in commands
      ca: cert.pem                 # optional: checks the services' certificates ({tls_ca});
                                   # default: the system's roots
    orchestrator:                  # optional; omit when a service is the orchestrator
      port: 9000                   # served in-process (cogment.Orchestrator)
      tls: true                    # optional (default: true with a `tls` section)
    startup_timeout: 20            # optional; seconds each service has to answer Version
    services:                      # started in this order, all at once
      - name: environment          # prefixes its output: `environment | ...`
        command: python environment.py --port {port}
        port: 9002                 # optional; the client starts once it answers Version
        tls: true                  # optional (default: true with a `tls` section): its port
                                   # serves TLS, and Version is asked over TLS
    client:                        # runs in the foreground, stdin passed through
      name: driver                 # optional (default client)
      command: python driver.py --auto --orchestrator localhost:{orchestrator_port}
      interactive: python driver.py --orchestrator localhost:{orchestrator_port}  # optional
    web:                           # optional; what --web serves (`cogment web`)
      port: 8080
      static: web                  # optional; a folder whose index.html is the page

Commands are split like a shell would (no shell runs them); a leading `python` is the
interpreter running cogment launch. Placeholders: `{port}` (the service's own port),
`{orchestrator_port}`, `{<service name>_port}`, and with a `tls` section `{tls_cert}`,
`{tls_key}` and `{tls_ca}` (absolute paths). With TLS, the project's endpoints are
`grpcs://localhost:PORT` and the client connects to `grpcs://localhost:{orchestrator_port}`
trusting `{tls_ca}`; the files are checked when the launch file is read, and a TLS handshake
that fails on a service's port stops launch at once. Each process gets PYTHONUNBUFFERED=1 and
its own session and process group; every line it prints (stdout and stderr) is prefixed
with its name, and launch's own lines with `launch` (`started NAME (pid N): ...`). The file's
ports must be free (checked first). A service without a port is started but not waited for.

`--interactive` runs `client.interactive` attached to the terminal, and writes the other
processes' output to a log file instead (its path is printed); without a terminal on stdin
it stops before starting anything. `--web` runs no client: it serves the `web:` page (the
default page of `cogment web` unless `static` names a folder) in front of the in-process
orchestrator, prints its URL, and runs until Ctrl-C, `--timeout` or a service's death (it
needs the extra `cogment[web]`). Options launch does not know, and everything after
`--`, are appended to the client command. `--free-ports` replaces every port of the file
with a free one, and rewrites the project's default endpoints and pre-hooks that name a
replaced port for the in-process orchestrator (endpoints a pre-trial hook writes are not
rewritten). Without `--free-ports`, each endpoint on this machine that the project's
cogment.yaml (environment, actors, pre-hooks, datalog) or the client command names and no
port of the file serves, or names with the other scheme (grpc:// for a TLS port, grpcs://
for a plaintext one), gets a `launch | warning: ...` line before anything starts (not an
error: something else may serve it).

Exit status: the client's; 1 when the launch file is wrong, a service does not come up or
dies while the client runs (the message names it); 2 for `--interactive` without a
terminal; 124 on `--timeout`; 130/143 when interrupted by SIGINT/SIGTERM. Every process
started is stopped on the way out (SIGTERM to its group, SIGKILL after a grace period of
5 s). On Linux the commands launch starts also get SIGTERM from the kernel when launch
itself dies, even by SIGKILL; the processes those commands start do not (they are stopped
with their group on a normal exit only). POSIX only (process groups).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
import time
import types
from collections.abc import Sequence
from typing import Any, Optional, TextIO

from cogment.api import common_pb2
from cogment.errors import ConfigurationError
from cogment.generate import SETTINGS_MODULE, generate, import_settings
from cogment.launch_config import (
    LaunchConfig,
    LaunchError,
    ServiceSpec,
    endpoint_warnings,
    is_stale,
    load_launch_config,
    rewrite_endpoint,
)
from cogment.launch_process import (
    Output,
    Process,
    describe_status,
    free_port,
    port_in_use,
    shown,
    stop_all,
    version_error,
)
from cogment.tls import MAYBE_TLS, channel_credentials, explanation

PROG = "cogment launch"
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 124
ERROR_LINE = PROG + ": error: {error}"
_POLL = 0.05
_LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclasses.dataclass(frozen=True)
class LaunchOptions:
    """What `cogment launch` is asked to do: the launch file, and its command-line options
    (see the module's docstring); `parse_options` makes one of a command line.

    `startup_timeout` None means the launch file's; `log_level` is the in-process
    orchestrator's (debug, info, warning or error).
    """

    launch_file: str
    client_args: tuple[str, ...] = ()
    interactive: bool = False
    web: bool = False
    timeout: Optional[float] = None
    startup_timeout: Optional[float] = None
    free_ports: bool = False
    log_level: str = "info"


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _NoTerminal(LaunchError):
    pass


def _stdin_is_a_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):  # closed
        return False


class Launcher:
    """One run of a launch file: start everything, wait for the client, stop everything."""

    def __init__(self, config: LaunchConfig, options: LaunchOptions) -> None:
        self.config = config
        self.options = options
        self.startup_timeout: float = options.startup_timeout or config.startup_timeout
        self.bridge: Any = None
        self.processes: list[Process] = []
        self.client: Optional[Process] = None
        self.orchestrator: Any = None
        self.signum: Optional[int] = None
        timeout = options.timeout
        self.deadline = float("inf") if timeout is None else time.monotonic() + timeout
        if options.web and options.interactive:
            raise LaunchError("--web and --interactive: choose one (--web runs no client)")
        if options.web and config.web is None:
            raise LaunchError(f"{config.path}: web: missing (needed by --web)")
        if options.web and config.orchestrator_port is None:
            raise LaunchError(
                f"{config.path}: orchestrator: missing (--web serves the trials of the "
                "orchestrator launch runs)"
            )
        if options.interactive and config.client.interactive is None:
            raise LaunchError(
                f"{config.path}: client.interactive: missing (needed by --interactive)"
            )
        if options.interactive and not _stdin_is_a_terminal():
            raise _NoTerminal(
                "--interactive needs a terminal (stdin is not a TTY); "
                "run without --interactive for the scripted client"
            )
        names = [s.name for s in config.services] + [config.client.name, "orchestrator", "launch"]
        names += ["web"] if options.web else []
        self.log_file: Optional[TextIO] = None
        if self.options.interactive:
            fd, path = tempfile.mkstemp(prefix="cogment-launch-", suffix=".log")
            self.log_file = os.fdopen(fd, "w", encoding="utf-8")
            self.log_path = path
        self.console = Output(sys.stdout, max(len(n) for n in names))
        self.output = Output(self.log_file, self.console.width) if self.log_file else self.console
        self.ports = self._assign_ports()

    # ------------------------------------------------------------------ setup

    def _assign_ports(self) -> dict[str, int]:
        ports = {s.name: s.port for s in self.config.services if s.port is not None}
        if self.config.orchestrator_port is not None:
            ports["orchestrator"] = self.config.orchestrator_port
        if self.options.web and self.config.web is not None:
            ports["web"] = self.config.web.port
        if self.options.free_ports:
            ports = {name: free_port() for name in ports}
        return ports

    def _port_map(self) -> dict[int, int]:
        """Original port -> port of this run (identity without --free-ports)."""
        original = {s.name: s.port for s in self.config.services if s.port is not None}
        if self.config.orchestrator_port is not None:
            original["orchestrator"] = self.config.orchestrator_port
        return {port: self.ports[name] for name, port in original.items()}

    def _placeholders(self, own: Optional[ServiceSpec]) -> dict[str, str]:
        values = {f"{name}_port": str(port) for name, port in self.ports.items()}
        if self.config.tls is not None:
            values.update(self.config.tls.placeholders())
        if own is not None and own.name in self.ports:
            values["port"] = str(self.ports[own.name])
        return values

    def _argv(self, command: str, where: str, own: Optional[ServiceSpec]) -> list[str]:
        values = self._placeholders(own)

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) not in values:
                known = ", ".join("{" + k + "}" for k in sorted(values))
                raise LaunchError(
                    f"{self.config.path}: {where}: unknown placeholder {match.group(0)} (known: {known})"
                )
            return values[match.group(1)]

        argv = [re.sub(r"\{([A-Za-z_][\w-]*)\}", substitute, a) for a in shlex.split(command)]
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        return argv

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _generate(self) -> None:
        python_dir = self.config.python_dir
        if python_dir is None:
            return
        digest = hashlib.sha1(os.path.abspath(python_dir).encode()).hexdigest()[:16]
        lock_name = f"cogment-generate-{digest}.lock"
        with open(os.path.join(tempfile.gettempdir(), lock_name), "w") as lock:
            try:
                import fcntl

                fcntl.flock(lock, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - not POSIX
                pass
            if is_stale(self.config.project, python_dir):
                self.say(f"generated {generate(self.config.project, python_dir)}")

    def _load_settings(self) -> types.ModuleType:
        """Imports the project's generated cog_settings (the orchestrator's settings)."""
        python_dir = self.config.python_dir or os.path.dirname(self.config.project)
        path = os.path.join(python_dir, f"{SETTINGS_MODULE}.py")
        if not os.path.isfile(path):
            raise LaunchError(f"{path} is missing: add `generate:` to {self.config.path}")
        return import_settings(python_dir)

    def _rewritten(self, settings: Any) -> dict[str, Any]:
        """Orchestrator overrides: the project's endpoints, moved to this run's ports."""
        port_map = {a: b for a, b in self._port_map().items() if a != b}
        if not port_map:
            return {}
        params = common_pb2.TrialParams()
        params.CopyFrom(settings.default_trial_params)
        params.environment.endpoint = rewrite_endpoint(params.environment.endpoint, port_map)
        for actor in params.actors:
            actor.endpoint = rewrite_endpoint(actor.endpoint, port_map)
        pre_hooks = [rewrite_endpoint(e, port_map) for e in settings.pre_hooks]
        return {"default_trial_params": params, "pre_hooks": pre_hooks}

    def say(self, text: str) -> None:
        self.console.line("launch", text)

    # ------------------------------------------------------------------ run

    def run(self) -> int:
        previous = self._install_signal_handlers()
        status = EXIT_FAILURE
        try:
            status = self._run()
        except _Interrupted as stop:
            name = signal.Signals(stop.signum).name
            self.say(f"{name} received, stopping everything")
            status = 128 + stop.signum
        except LaunchError as error:
            self._error(str(error))
            status = EXIT_TIMEOUT if isinstance(error, _Timeout) else EXIT_FAILURE
        except ConfigurationError as error:
            self._error(str(error))
        finally:
            self._teardown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return status

    def _error(self, text: str) -> None:
        self.console.flush()
        _print_error(text)

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, _frame: Any) -> None:
            self.signum = signum

        previous: dict[int, Any] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
        return previous

    def _check(self) -> None:
        """Raises when interrupted, out of time, or when a service has died."""
        if self.signum is not None:
            raise _Interrupted(self.signum)
        if time.monotonic() > self.deadline:
            raise _Timeout(f"timed out after {self.options.timeout:g} s (--timeout)")
        for process in self.processes:
            status = process.poll()
            if status is not None:
                raise LaunchError(f"service {process.name!r} {describe_status(status)}")

    def _run(self) -> int:
        self._generate()
        self._check()
        if not self.options.free_ports:
            for name, port in self.ports.items():
                if port_in_use(port):
                    raise LaunchError(
                        f"port {port} of {name!r} is already in use: stop what uses it, "
                        "or run with --free-ports"
                    )
        if self.options.interactive:
            self.say(f"the services' output goes to {self.log_path}")
        client_command = self.config.client.command
        if self.options.interactive and self.config.client.interactive is not None:
            client_command = self.config.client.interactive
        client_argv = [] if self.options.web else self._argv(client_command, "client", None)
        client_argv += self.options.client_args
        service_argvs = [
            self._argv(s.command, f"services[{i}].command", s)
            for i, s in enumerate(self.config.services)
        ]
        if not self.options.free_ports:  # --free-ports rewrites the project's endpoints
            for warning in endpoint_warnings(self.config, client_argv):
                self.say(f"warning: {warning}")
        for spec, argv in zip(self.config.services, service_argvs):
            process = Process(spec.name, argv, self.config.folder, self._env(), self.output)
            self.processes.append(process)
            self.say(f"started {spec.name} (pid {process.pid}): {shown(argv)}")
        for i, (spec, process) in enumerate(zip(self.config.services, self.processes)):
            if spec.name in self.ports:
                self._wait_version(process, self.ports[spec.name], spec.tls, f"services[{i}]")
        if self.config.orchestrator_port is not None:
            self._start_orchestrator()
        if self.options.web:
            self._start_web()
            while True:  # until Ctrl-C, --timeout or a service's death
                self._check()
                time.sleep(_POLL)
        self.client = Process(
            self.config.client.name,
            client_argv,
            self.config.folder,
            self._env(),
            None if self.options.interactive else self.console,
            stdin=True,
        )
        self.say(f"started {self.client.name} (pid {self.client.pid}): {shown(client_argv)}")
        while True:
            self._check()
            status = self.client.poll()
            if status is not None:
                time.sleep(0.2)  # a service death that made the client fail is reported as such
                self._check()
                self.say(f"{self.client.name} {describe_status(status)}")
                return status if status >= 0 else 128 - status
            time.sleep(_POLL)

    def _wait_version(self, process: Process, port: int, tls: bool, key: str) -> None:
        deadline = min(time.monotonic() + self.startup_timeout, self.deadline)
        ca = self.config.tls.ca if self.config.tls is not None else None
        credentials = channel_credentials(ca) if tls else None
        while True:
            self._check()
            error = version_error(port, credentials=credentials)
            if error is None:
                self.say(f"{process.name} answers on port {port}{' (TLS)' if tls else ''}")
                return
            said = explanation(error, tls)
            if tls and said:  # the port answers, but not as TLS with a trusted certificate
                raise LaunchError(
                    f"service {process.name!r} on port {port}: {said}; {key}.tls is true in "
                    f"{self.config.path} (`tls: false` marks a plaintext port)"
                )
            if time.monotonic() > deadline:
                if deadline == self.deadline:
                    self._check()
                hint = (
                    f"; the port closed plaintext calls: if it serves TLS, set {key}.tls"
                    if said == MAYBE_TLS
                    else ""
                )
                raise LaunchError(
                    f"service {process.name!r} did not answer Version on port {port} within "
                    f"{self.startup_timeout:g} s ({shown(process.argv)}){hint}"
                )
            time.sleep(0.1)

    def _start_orchestrator(self) -> None:
        import logging

        from cogment.orchestrator import Orchestrator

        settings = self._load_settings()
        logger = logging.getLogger("cogment")
        logger.addHandler(self.output.logging_handler("orchestrator"))
        logger.setLevel(self.options.log_level.upper())
        logger.propagate = False
        port = self.ports["orchestrator"]
        tls = self.config.tls
        served = tls if self.config.orchestrator_tls else None  # its port's certificate
        try:
            orchestrator = Orchestrator(
                settings,
                port=port,
                tls_cert=served.cert if served is not None else None,
                tls_key=served.key if served is not None else None,
                tls_ca=tls.ca if tls is not None else None,
                **self._rewritten(settings),
            )
            self.orchestrator = orchestrator.start()
        except ConfigurationError:
            raise
        except Exception as error:
            raise LaunchError(f"orchestrator: cannot serve on port {port}: {error}") from None
        self.say(f"orchestrator listening on {orchestrator.endpoint}")

    def _start_web(self) -> None:
        """Serves the launch file's `web` page in front of the orchestrator (cogment web)."""
        import logging

        from cogment.web import require_aiohttp

        spec = self.config.web
        assert spec is not None and self.orchestrator is not None
        require_aiohttp()  # a ConfigurationError naming the extra
        from cogment.web.server import WebBridge

        logger = logging.getLogger("cogment.web")
        logger.addHandler(self.output.logging_handler("web"))
        logger.setLevel(self.options.log_level.upper())
        logger.propagate = False
        tls = self.config.tls if self.config.orchestrator_tls else None
        port = self.ports["orchestrator"]
        orchestrator = f"grpcs://localhost:{port}" if tls is not None else f"127.0.0.1:{port}"
        try:
            self.bridge = WebBridge(
                self.orchestrator.settings,
                orchestrator,
                port=self.ports["web"],
                static_dir=spec.static,
                tls_ca=(tls.ca or tls.cert) if tls is not None else None,
            ).start()
        except ConfigurationError as error:
            raise LaunchError(f"web: {error}") from None
        self.say(f"open {self.bridge.url} in a browser to play (Ctrl-C stops everything)")

    def _teardown(self) -> None:
        started = ([self.client] if self.client else []) + self.processes
        if self.bridge is not None:
            with contextlib.suppress(Exception):
                self.bridge.stop()
            self.bridge = None
        if self.client is not None:
            stop_all([self.client])
        if self.orchestrator is not None:
            with contextlib.suppress(Exception):
                self.orchestrator.stop()  # its datalog stores what it queued first
            self.orchestrator = None
        stop_all(self.processes)
        for process in started:
            process.join_output()
        self.console.flush()
        if self.log_file is not None:
            self.log_file.close()
            self.say(f"the services' output is in {self.log_path}")


class _Timeout(LaunchError):
    pass


def _print_error(error: object) -> None:
    print(ERROR_LINE.format(error=error), file=sys.stderr, flush=True)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="stop everything after S seconds (exit 124)"
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        metavar="S",
        help="seconds each service has to answer Version (default: the file's, else 20)",
    )
    parser.add_argument(
        "--interactive",
        action="store_true",
        help="run the client's `interactive` command attached to the terminal",
    )
    parser.add_argument(
        "--web",
        action="store_true",
        help="serve the launch file's `web` page instead of running the client; prints its URL",
    )
    parser.add_argument(
        "--free-ports", action="store_true", help="use free ports instead of the file's"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        metavar="LEVEL",
        choices=_LOG_LEVELS,
        help="log level of the in-process orchestrator: debug, info (default), warning, error",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of `cogment launch`'s command line, before the first `--` (see
    `parse_options`)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run a project's services, orchestrator and client."
    )
    _add_options(parser)
    parser.add_argument("launch_file", help="the launch file (e.g. examples/city/launch.yaml)")
    parser.add_argument(
        "client_args",
        nargs=argparse.REMAINDER,
        metavar="-- CLIENT_ARGS",
        help="arguments appended to the client's command: options launch does not know, "
        "and everything after `--`",
    )
    return parser


def parse_options(argv: Sequence[str]) -> LaunchOptions:
    """The options of the command line `argv` (what follows `cogment launch`).

    Launch's own options go before or after the launch file; the options launch does not
    know, and everything after the first `--`, are the client's arguments. A usage error
    is printed and exits (status 2), as argparse does.
    """
    line = list(argv)
    split = line.index("--") if "--" in line else len(line)
    head, tail = line[:split], line[split + 1 :]
    args = build_parser().parse_args(head)
    own_options = argparse.ArgumentParser(prog=PROG, add_help=False)
    _add_options(own_options)
    _, unknown = own_options.parse_known_args(args.client_args, namespace=args)
    return LaunchOptions(
        launch_file=args.launch_file,
        client_args=(*unknown, *tail),
        interactive=args.interactive,
        web=args.web,
        timeout=args.timeout,
        startup_timeout=args.startup_timeout,
        free_ports=args.free_ports,
        log_level=args.log_level,
    )


def run(options: LaunchOptions) -> int:
    """Runs `cogment launch`; returns the exit status."""
    try:
        launcher = Launcher(load_launch_config(options.launch_file), options)
    except (LaunchError, ConfigurationError) as error:
        _print_error(error)
        return EXIT_USAGE if isinstance(error, _NoTerminal) else EXIT_FAILURE
    return launcher.run()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`cogment launch ARGS` (`python -m cogment.launch ARGS`): `argv` is ARGS, sys.argv[1:]
    by default."""
    return run(parse_options(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
