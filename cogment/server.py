"""`cogment.GrpcServer`: serves an Agent, Environment or TrialHooks subclass over gRPC.

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

from cogment.constants import UNLIMITED_MESSAGES
from cogment.errors import CogmentError, ConfigurationError
from cogment.lifecycle import Lifecycle, misuse
from cogment.servicers import make_servicer

_LOG = logging.getLogger("cogment")

DEFAULT_MAX_WORKERS = 32
_SERVER_OPTIONS = [
    *UNLIMITED_MESSAGES,  # observations of any size
    ("grpc.so_reuseport", 0),  # a port already in use is an error, not a shared listener
]


class GrpcServer:
    """Serves an Agent, Environment or TrialHooks subclass over gRPC.

    The port is bound when the server is made (`port=0` picks a free one, read it from
    `server.port`); `start()` serves in the background, `serve()` serves and blocks until
    `stop()` or, when called from the main thread, SIGINT/SIGTERM. A stopped server cannot
    be restarted. Also a context manager (`with GrpcServer(...) as server:` starts it and
    stops it on exit).

    Args:
        service_type: the user class; its base class picks the gRPC service.
        settings: the project's generated `cog_settings` module.
        port: the port to listen on; 0 for a free one.
        host: the address to listen on (all interfaces by default).
        max_workers: the size of the thread pool running calls (and so user code).

    Raises:
        ConfigurationError: for a class that cannot be served (named in the message).
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
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(
                f"GrpcServer: port must be a whole number from 0 to 65535 (0 picks a free "
                f"one), got {port!r}"
            )
        servicer, add_servicer = make_servicer(service_type, settings)
        self.service_type = service_type
        self.host = host
        self._state = Lifecycle.CREATED
        self._state_lock = threading.Lock()
        self._stopped = threading.Event()
        self._executor = futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix=f"cogment-{service_type.__name__}"
        )
        self._server = grpc.server(self._executor, options=_SERVER_OPTIONS)
        add_servicer(servicer, self._server)
        try:
            bound = self._server.add_insecure_port(f"{host}:{port}")
        except RuntimeError:
            bound = 0
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
        _LOG.info("serving %s on %s:%d", self.service_type.__name__, self.host, self.port)
        return self

    def serve(self) -> None:
        """Serves until `stop()` (from another thread) or, in the main thread, SIGINT/SIGTERM.

        Starts the server if needed and returns once it has stopped.
        """
        with self._state_lock:
            state = self._state
        if state is Lifecycle.STOPPED:
            raise misuse("GrpcServer", "serve", state)
        if state is Lifecycle.CREATED:
            self.start()
        if threading.current_thread() is not threading.main_thread():
            self._stopped.wait()
            return
        received: list[int] = []
        previous = {
            signum: signal.signal(signum, lambda signum, _frame: received.append(signum))
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
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
        return (
            f"GrpcServer({self.service_type.__name__}, port={self.port}, state={self._state.value})"
        )
