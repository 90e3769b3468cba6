"""`TrialConnection`: what a `ClientTrial` needs from its connection, as a `typing.Protocol`.

`cogment.client.Connection` satisfies it; so does any object with the same members, such as
an in-memory fake in a test, so a `ClientTrial` can be built and driven without a network:

```python
trial = ClientTrial(fake_connection, cog_settings.actor_classes.player, start_reply)
```

The trial asks its connection for unary calls (with the connection's timeout and session
metadata, gRPC errors already turned into `cogment.errors` exceptions), for an ActionStream,
for heartbeats while it sits idle, to forget it once it is over, and to end it on the
orchestrator in the background; it reads the connection's settings, endpoint, timeout,
heartbeat interval and session id. The connection knows nothing of the trial beyond that.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any, Optional, Protocol, Union

from cogment.api import orchestrator_pb2
from cogment.client.heartbeat import Beating


class UseConnectionTimeout(enum.Enum):
    """The type of `CONNECTION_TIMEOUT` (a one-value enum, so that type checkers follow it)."""

    CONNECTION_TIMEOUT = "the connection's timeout"


# the default deadline of `TrialConnection.call_unary`: the connection's own `timeout`
CONNECTION_TIMEOUT = UseConnectionTimeout.CONNECTION_TIMEOUT

# a call's deadline: seconds, None (no deadline), or CONNECTION_TIMEOUT
Deadline = Union[float, None, UseConnectionTimeout]


class ReplyStream(Protocol):
    """An open ActionStream call, as `TrialConnection.open_action_stream` returns it."""

    def __iter__(self) -> Iterator[orchestrator_pb2.TrialActionReply]:
        """The replies, in order, until the orchestrator closes the stream.

        Raises:
            CogmentRpcError: the stream failed or was cancelled (CANCELLED, once the
                connection is closed).
        """
        ...

    def cancel(self) -> Any:
        """Cancels the call (idempotent); iterating then ends with CANCELLED."""
        ...


class TrialConnection(Protocol):
    """What a `ClientTrial` needs from the connection it was started or joined on."""

    @property
    def settings(self) -> Any:
        """The project's generated `cog_settings` module."""
        ...

    @property
    def endpoint(self) -> str:
        """The orchestrator's `host:port` (or a label), for error messages."""
        ...

    @property
    def session_id(self) -> str:
        """The session id sent with every call."""
        ...

    @property
    def timeout(self) -> Optional[float]:
        """The deadline in seconds of each unary call (None: no deadline)."""
        ...

    @property
    def heartbeat_interval(self) -> Optional[float]:
        """Seconds between heartbeats of an idle trial (None: no heartbeats)."""
        ...

    @property
    def is_closed(self) -> bool:
        """True once the connection is closed: every call then raises LifecycleError."""
        ...

    def ensure_open(self) -> None:
        """Raises `LifecycleError` (naming the connection) when it is closed."""
        ...

    def call_unary(self, method: str, request: Any, timeout: Deadline = CONNECTION_TIMEOUT) -> Any:
        """Calls the orchestrator's `Trial` service method `method` with the session metadata.

        Args:
            method: the method's name (`"Action"`, `"Heartbeat"`, `"End"`...).
            request: its request message.
            timeout: the deadline in seconds (None: none); by default the connection's.

        Returns:
            The reply message.

        Raises:
            CogmentRpcError: the call failed (UNAVAILABLE names the endpoint).
            LifecycleError: the connection is closed.
        """
        ...

    def open_action_stream(
        self, requests: Iterator[orchestrator_pb2.TrialActionRequest], trial_id: str = ""
    ) -> ReplyStream:
        """Opens an ActionStream about `trial_id` fed by `requests` (to the orchestrator
        that owns the trial); closing the connection cancels it.

        Raises:
            LifecycleError: the connection is closed.
        """
        ...

    def keep_alive(self, trial: Beating) -> None:
        """Sends heartbeats for `trial` whenever it says one is due, until
        `stop_keeping_alive` (nothing when heartbeats are disabled)."""
        ...

    def stop_keeping_alive(self, trial: Beating) -> None:
        """No more heartbeats for `trial` (idempotent)."""
        ...

    def forget_trial(self, trial: object) -> None:
        """Drops a trial that is over from the connection's `trials` (idempotent)."""
        ...

    def end_in_background(self, trial_id: str) -> None:
        """Ends the trial on the orchestrator from a background thread, best effort
        (errors are only logged)."""
        ...
