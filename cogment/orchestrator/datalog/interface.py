"""The two interfaces of recording: what a trial talks to (`TrialRecording`), and what
makes the recordings of an orchestrator's trials (`Recorder`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional, Protocol

from cogment.api import agent_pb2, common_pb2

from .. import wire

Routed = Optional[dict[int, list[common_pb2.Message]]]  # messages by receiver id
Fail = Callable[[str], None]  # ends the trial as failed, with that reason


class TrialRecording(Protocol):
    """The recording of one trial, as the trial sees it (event loop only)."""

    def tick(
        self,
        tick_id: int,
        observations: wire.EnvReply,
        actions: Sequence[bytes],
        rewards: dict[int, agent_pb2.Reward],
        routed: Routed,
        late: Sequence[common_pb2.Feedback],
    ) -> bool:
        """Queues the sample of a tick: the observations it was played on, the actions by
        actor id, the rewards and messages it gave, and late feedback about earlier ticks.
        Returns True when the queue is full: the next tick should wait for `room()`."""

    async def room(self) -> None:
        """Returns once the queue has room (or recording failed: see the module doc)."""

    def end(
        self,
        tick_id: int,
        observations: Optional[wire.EnvReply],
        rewards: dict[int, agent_pb2.Reward],
        routed: Routed,
        reason: str,
        failed: bool,
    ) -> None:
        """The trial is over at `tick_id`, on `observations` (None when there were none),
        with the rewards and messages given after its last tick: queues the last sample and
        the trial's end; never waits."""


class Recorder(Protocol):
    """Makes the recordings of an orchestrator's trials (event loop only)."""

    where: str

    async def open(self) -> None:
        """Opens the store (sqlite). Raises ConfigurationError when it cannot be."""

    def trial(
        self, trial_id: str, user_id: str, params: common_pb2.TrialParams, fail: Fail
    ) -> TrialRecording:
        """A trial's recording; `fail(reason)` ends the trial (on_failure: end)."""

    def pending(self) -> int:
        """Samples queued and not stored yet."""

    async def close(self, timeout: float) -> None:
        """Stores everything queued (waiting at most `timeout` s), then closes."""
