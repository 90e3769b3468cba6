"""`cogment.GrpcServer`: serves an Agent, Environment, TrialHooks or LogExporter subclass.

The servicers it runs live in `cogment.servicers`; this module only owns the grpc server's
lifecycle (bind, start, serve until a signal or `stop()`, stop).
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from typing import Any, Optional

import grpc

from cogment.agent import Agent
from cogment.constants import DEFAULT_MAX_MESSAGE_MB, message_size_options
from cogment.environment import Environment
from cogment.errors import CogmentError, ConfigurationError
from cogment.lifecycle import Lifecycle, misuse
from cogment.servicers import make_servicer
from cogment.stream_servicers import StreamSlots
from cogment.tls import FilePath, add_port, server_credentials

_LOG = logging.getLogger("cogment")

DEFAULT_MAX_WORKERS = 32
DEFAULT_MAX_STREAMS = 256
"""The streams an agent or environment server holds open at once by default (one per agent
actor, or environment trial, of a running trial; each holds a thread)."""
DEFAULT_IDLE_SESSION_TIMEOUT = 300.0
"""Seconds after which an agent or environment session nobody called is ended (its
orchestrator crashed, or lost it): its user instance gets `end()` and is dropped."""
_NO_REUSEPORT = ("grpc.so_reuseport", 0)  # a port already in use is an error, not a shared one


class GrpcServer:
    """Serves an Agent, Environment, TrialHooks or LogExporter subclass over gRPC.

    The port is bound when the server is made (`port=0` picks a free one, read it from
    `server.port`); `start()` serves in the background, `serve()` serves and blocks until
    `stop()` or, when called from the main thread, SIGINT/SIGTERM. A stopped server cannot
    be restarted. Also a context manager (`with GrpcServer(...) as server:` starts it and
    stops it on exit).

    Args:
        service_type: the user class; its base class picks the gRPC service.
        settings: the project's generated `cog_settings` module.
        port: the port to listen on; 0 for a free one.
        host: the address to listen on: all interfaces by default ("[::]"), so that an
            orchestrator on another machine reaches the service; "127.0.0.1" keeps it on
            this machine. The bound address is logged (INFO, "cogment" logger) at start.
        max_workers: the threads running unary calls (and so user code), and LogExporter
            streams.
        max_streams: (agents and environments) the most streams served at once: an
            orchestrator of cogment-py streams the calls of each agent actor (or environment
            trial) of a trial, and each stream holds a thread of its own, in which user code
            runs, for the trial's life. Past it, a new stream is refused (RESOURCE_EXHAUSTED)
            and the orchestrator makes unary calls for that actor instead. 0: no streams
            (unary calls only, as API 0.5 defines them).
        idle_session_timeout: seconds after which a session (an agent actor or an
            environment's trial) that no call used is ended, calling its `end()`: the
            orchestrator that ran its trial crashed or lost it. Keep it above the longest
            a trial may wait for a human (e.g. with `max_inactivity` 0); None: never.
        max_message_mb: the largest request accepted, in MiB (a Decide request carries an
            observation); a larger one is refused with RESOURCE_EXHAUSTED. None: no limit.
        tls_cert, tls_key: PEM files of the certificate (chain) and the unencrypted private
            key the port serves TLS with (both or neither; neither: plaintext). The
            orchestrator then calls the service at `grpcs://host:port`, and the certificate
            must name that host.

    Raises:
        ConfigurationError: for a class that cannot be served, or TLS files that cannot be
            used (named in the message).
        CogmentError: when the port cannot be bound.
    """

    def __init__(
        self,
        service_type: type[Any],
        settings: Any,
        port: int = 9000,
        *,
        host: str = "[::]",
        max_workers: int = DEFAULT_MAX_WORKERS,
        max_streams: int = DEFAULT_MAX_STREAMS,
        idle_session_timeout: Optional[float] = DEFAULT_IDLE_SESSION_TIMEOUT,
        max_message_mb: Optional[float] = DEFAULT_MAX_MESSAGE_MB,
        tls_cert: Optional[FilePath] = None,
        tls_key: Optional[FilePath] = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(
                f"GrpcServer: port must be a whole number from 0 to 65535 (0 picks a free "
                f"one), got {port!r}"
            )
        for name, value in (
            ("idle_session_timeout", idle_session_timeout),
            ("max_message_mb", max_message_mb),
        ):
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ConfigurationError(
                    f"GrpcServer: {name} must be a positive number or None, got {value!r}"
                )
        for name, count, least in (
            ("max_workers", max_workers, 1),
            ("max_streams", max_streams, 0),
        ):
            if isinstance(count, bool) or not isinstance(count, int) or count < least:
                raise ConfigurationError(
                    f"GrpcServer: {name} must be a whole number >= {least}, got {count!r}"
                )
        try:
            credentials = server_credentials(tls_cert, tls_key)
        except ConfigurationError as error:
            raise ConfigurationError(f"GrpcServer: {error}") from None
        streamed = isinstance(service_type, type) and issubclass(service_type, (Agent, Environment))
        self._streams = StreamSlots(max_streams) if max_streams and streamed else None
        servicer, add_servicer = make_servicer(service_type, settings, self._streams)
        self.service_type = service_type
        self.host = host
        self.tls = credentials is not None
        """True when the port serves TLS."""
        self._servicer = servicer
        self._idle_session_timeout = idle_session_timeout
        self._reaper: Optional[threading.Thread] = None
        self._state = Lifecycle.CREATED
        self._state_lock = threading.Lock()
        self._stopped = threading.Event()
        # a stream holds its thread for its whole life: the pool has max_workers threads
        # more for the unary calls (and for refusing the streams past max_streams)
        threads = max_workers + (max_streams if self._streams is not None else 0)
        self._executor = futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix=f"cogment-{service_type.__name__}"
        )
        self._server = grpc.server(
            self._executor, options=[*message_size_options(max_message_mb), _NO_REUSEPORT]
        )
        add_servicer(servicer, self._server)
        bound = add_port(self._server, f"{host}:{port}", credentials)
        if not bound:
            self._close()
            raise CogmentError(
                f"GrpcServer: cannot listen on {host}:{port} (is the port already in use?)"
            )
        self.port: int = bound

    def start(self) -> GrpcServer:
        """Starts serving in the background and returns the server."""
        with self._state_lock:
            if self._state is not Lifecycle.CREATED:
                raise misuse("GrpcServer", "start", self._state)
            self._state = Lifecycle.STARTED
            self._server.start()
        _LOG.info(
            "serving %s on %s:%d%s",
            self.service_type.__name__,
            self.host,
            self.port,
            " over TLS" if self.tls else "",
        )
        timeout = self._idle_session_timeout
        if timeout is not None and hasattr(self._servicer, "end_idle_sessions"):
            self._reaper = threading.Thread(
                target=self._end_idle_sessions,
                args=(timeout,),
                name=f"cogment-sessions-{self.service_type.__name__}",
                daemon=True,
            )
            self._reaper.start()
        return self

    @property
    def stream_count(self) -> int:
        """How many streams (of cogment-py's orchestrator) are open."""
        return self._streams.open if self._streams is not None else 0

    @property
    def session_count(self) -> int:
        """How many sessions (agent actors, or environment trials) are being served."""
        return int(getattr(self._servicer, "session_count", 0))

    def _end_idle_sessions(self, timeout: float) -> None:
        interval = min(max(timeout / 4.0, 0.05), 30.0)
        while not self._stopped.wait(interval):
            try:
                self._servicer.end_idle_sessions(timeout)
            except Exception:  # never let the reaper die
                _LOG.exception("ending idle sessions failed")

    def serve(self) -> None:
        """Serves until `stop()` (from another thread) or, in the main thread, SIGINT/SIGTERM.

        Starts the server if needed and returns once it has stopped.
        """
        with self._state_lock:
            state = self._state
        if state is Lifecycle.STOPPED:
            raise misuse("GrpcServer", "serve", state)
        if threading.current_thread() is not threading.main_thread():
            if state is Lifecycle.CREATED:
                self.start()
            self._stopped.wait()
            return
        # the handlers are in place before the server answers anything: a signal sent once
        # it answered is never the default KeyboardInterrupt
        received: list[int] = []
        previous = {
            signum: signal.signal(signum, lambda signum, _frame: received.append(signum))
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            if state is Lifecycle.CREATED:
                self.start()
            # a signal handler only records the signal: stopping from inside it could
            # deadlock on a lock the interrupted code holds
            while not received and not self._stopped.wait(0.1):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if received:
            _LOG.info("received %s, stopping", signal.Signals(received[0]).name)
        self.stop()

    def stop(self, grace: Optional[float] = None) -> None:
        """Stops serving (idempotent, from any thread) and waits until the server is down.

        Args:
            grace: seconds to let calls in flight finish; None aborts them at once.
        """
        with self._state_lock:
            if self._state is Lifecycle.STOPPED:
                return
            self._state = Lifecycle.STOPPED
        self._close(grace)
        self._stopped.set()

    def _close(self, grace: Optional[float] = None) -> None:
        done = self._server.stop(grace)
        done.wait((grace or 0) + 10)
        self._executor.shutdown(wait=False)

    def __enter__(self) -> GrpcServer:
        with self._state_lock:
            created = self._state is Lifecycle.CREATED
        if created:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        tls = ", tls" if self.tls else ""
        return (
            f"GrpcServer({self.service_type.__name__}, port={self.port}{tls}, "
            f"state={self._state.value})"
        )
