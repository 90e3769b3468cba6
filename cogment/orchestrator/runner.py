"""`cogment.Orchestrator`: the embedded orchestrator, served from one background thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Sequence
from typing import Any, Optional, Union

from cogment.api import common_pb2
from cogment.constants import DEFAULT_MAX_MESSAGE_MB
from cogment.endpoint import GRPCS_SCHEME, host_port
from cogment.errors import CogmentError
from cogment.lifecycle import Lifecycle, misuse
from cogment.settings import DatalogSettings
from cogment.tls import FilePath

from .service import OrchestratorServer

STARTUP_TIMEOUT = 30.0


def load_project(settings_or_path: Any) -> Any:
    """A cog_settings module as is, or the settings generated from a cogment.yaml path."""
    if isinstance(settings_or_path, (str, os.PathLike)):
        from cogment.generate import load_settings

        return load_settings(os.fspath(settings_or_path))
    return settings_or_path


class Orchestrator:
    """Runs trials of a project: serves `cogment.Trial` and calls the project's services.

    ```python
    with cogment.Orchestrator(cog_settings, port=0) as orch:
        conn = Connection(cog_settings, orch.endpoint)
    ```

    The gRPC server runs on its own event loop in one background thread, whatever the
    number of trials. Over TLS (`tls_cert` and `tls_key`), `endpoint` is `grpcs://host:port`:

    ```python
    with cogment.Orchestrator(cog_settings, tls_cert="cert.pem", tls_key="key.pem") as orch:
        conn = Connection(cog_settings, orch.endpoint, tls_ca="cert.pem")
    ```

    Args:
        settings_or_yaml_path: a generated cog_settings module, or the path of cogment.yaml.
        port: the port to serve on (0 picks a free one, see `port`).
        host: the interface to serve on.
        response_timeout: deadline of every call to a service, in seconds.
        default_trial_params: replaces the project's default trial parameters.
        pre_hooks: replaces the project's pre-trial hook endpoints (`[]` for none).
        datalog: replaces the project's `datalog:` section, e.g.
            `DatalogSettings("sqlite", path="trials.db")` (`DatalogSettings("none")`: off).
        datalog_endpoint: a shorthand for a grpc datalog at that url (`""` for none).
        max_message_mb: the largest message a client may send, in MiB (None: no limit).
        tls_cert, tls_key: PEM files of the certificate (chain) and the private key the port
            serves TLS with (both or neither; neither: plaintext).
        tls_ca: PEM file of the CA certificates that the services called at `grpcs://`
            endpoints are checked against (None: the system's roots).
        transport: how agents and environments are called: "auto" (the default: one stream
            per agent actor, and per environment, of each trial, with the services that serve
            cogment-py's streams, as `cogment.GrpcServer` does; the 0.5 unary calls with the
            others, decided once per endpoint), "stream" (streams only: a service that does not
            serve them fails the trial's start) or "unary" (the 0.5 calls only).
        advertise: the `host:port` clients and other orchestrators reach this one at, put
            into its trials' ids (default: `host:port` as bound).

    Raises:
        ConfigurationError: a bad argument, a project that does not load, or TLS files that
            cannot be used (one line naming the file).
    """

    def __init__(
        self,
        settings_or_yaml_path: Union[Any, str, os.PathLike[str]],
        port: int = 0,
        host: str = "127.0.0.1",
        response_timeout: float = 60.0,
        default_trial_params: Optional[common_pb2.TrialParams] = None,
        *,
        pre_hooks: Optional[Sequence[str]] = None,
        datalog_endpoint: Optional[str] = None,
        datalog: Optional[DatalogSettings] = None,
        max_message_mb: Optional[float] = DEFAULT_MAX_MESSAGE_MB,
        tls_cert: Optional[FilePath] = None,
        tls_key: Optional[FilePath] = None,
        tls_ca: Optional[FilePath] = None,
        transport: str = "auto",
        advertise: Optional[str] = None,
    ) -> None:
        self.settings = load_project(settings_or_yaml_path)
        self.host = host
        self._requested_port = port
        self._server = OrchestratorServer(
            self.settings,
            response_timeout=response_timeout,
            default_trial_params=default_trial_params,
            pre_hooks=pre_hooks,
            datalog_endpoint=datalog_endpoint,
            datalog=datalog,
            max_message_mb=max_message_mb,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_ca=tls_ca,
            transport=transport,
            advertise=advertise,
        )
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop_event: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._state = Lifecycle.CREATED

    @property
    def port(self) -> int:
        """The port served on (known once started)."""
        return self._server.port

    @property
    def endpoint(self) -> str:
        """What a client connects to: `host:port`, or `grpcs://host:port` over TLS."""
        address = host_port(self.host, self.port)
        return GRPCS_SCHEME + address if self.tls else address

    @property
    def tls(self) -> bool:
        """True when the port serves TLS."""
        return self._server.tls

    @property
    def advertised(self) -> str:
        """The `host:port` put into the ids of this orchestrator's trials (once started)."""
        return self._server.advertised

    @property
    def trial_count(self) -> int:
        """How many trials are running."""
        return len(self._server.registry)

    def start(self) -> Orchestrator:
        """Starts serving; returns once the port is bound.

        Raises:
            ConfigurationError: the port cannot be bound.
            LifecycleError: the orchestrator was started already.
            CogmentError: it did not start within STARTUP_TIMEOUT seconds.
        """
        if self._state is not Lifecycle.CREATED:
            raise misuse("Orchestrator", "start", self._state)
        self._state = Lifecycle.STARTED
        self._thread = threading.Thread(
            target=self._thread_main, name="cogment-orchestrator", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT):
            raise CogmentError(f"the orchestrator did not start within {STARTUP_TIMEOUT:g} s")
        if self._error is not None:
            self._thread.join()
            self._state = Lifecycle.STOPPED
            raise self._error
        return self

    def _thread_main(self) -> None:
        asyncio.run(self._serve())  # and cancels whatever is left when it returns

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            await self._server.start(self.host, self._requested_port)
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        await self._stop_event.wait()
        await self._server.stop()

    def stop(self, timeout: Optional[float] = None) -> None:
        """Ends every running trial (calling End on its services), stores what the datalog
        queued, and stops serving (idempotent); waits at most `timeout` s (by default, as
        long as the response timeout lets the services and the datalog take).

        Raises:
            CogmentError: it did not stop within that time.
        """
        if self._state is not Lifecycle.STARTED:
            self._state = Lifecycle.STOPPED
            return
        self._state = Lifecycle.STOPPED
        loop, event, thread = self._loop, self._stop_event, self._thread
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(event.set)
        if thread is not None:
            limit = self._server.stop_timeout if timeout is None else timeout
            thread.join(limit)
            if thread.is_alive():
                raise CogmentError(f"the orchestrator did not stop within {limit:g} s")

    def __enter__(self) -> Orchestrator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        project = getattr(self.settings, "project_file", None)
        return f"Orchestrator({self._state.value}, endpoint={self.endpoint!r}, project={project!r})"


__all__ = ["Orchestrator", "load_project"]
