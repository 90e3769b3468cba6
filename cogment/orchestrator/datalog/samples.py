"""What both kinds of recording share: samples encoded by hand, counting them, and the
failure rule."""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Sequence
from typing import Optional

import grpc

from cogment.api import agent_pb2, common_pb2, datalog_ext_pb2
from cogment.constants import ENVIRONMENT_ID
from cogment.datalog import store
from cogment.datalog.budget import ByteBudget
from cogment.settings import DatalogSettings

from .. import wire
from .interface import Fail, Routed

log = logging.getLogger("cogment.orchestrator")

FAILED = "datalog {where} failed: {error}"


class SampleEncoder:
    """A trial's DatalogSamples, encoded by hand around the observation bytes (the
    ObservationSet of the environment's reply is referenced, not copied)."""

    def __init__(self, trial_id: str, user_id: str, n_actors: int) -> None:
        self.trial_field = _field(0x0A, trial_id.encode())
        self.user_field = _field(0x2A, user_id.encode())
        self.n_actors = n_actors

    def encode(
        self,
        tick_id: int,
        observations: wire.EnvReply,
        actions: Sequence[bytes],
        rewards: dict[int, agent_pb2.Reward],
        routed: Routed,
        late: Sequence[common_pb2.Feedback],
    ) -> tuple[list[wire.Bytes], int]:
        """The parts of the serialized sample of `tick_id`, and its size. Late feedback
        rides in its target's reward (without changing its value); messages are one
        collection per receiver: each actor id, then the environment."""
        n_actors = self.n_actors
        slices, obs_tail = observations.observation_set_parts(tick_id, n_actors)
        obs_size = len(obs_tail)
        for data in slices:
            obs_size += len(data)
        head = self.trial_field + b"\x12" + wire.varint(obs_size)
        tail: list[bytes] = []
        for content in actions:
            if content:
                tail += (b"\x1a", wire.varint(len(content) + 1 + len(wire.varint(len(content)))))
                tail += (b"\x0a", wire.varint(len(content)), content)
            else:
                tail.append(b"\x1a\x00")  # an empty Action, kept: actions go by actor id
        if actions or rewards or late:
            extra: dict[int, list[common_pb2.Feedback]] = {}
            for feedback in late:
                extra.setdefault(feedback.actor_id, []).append(feedback)
            for actor_id in range(n_actors):
                reward = rewards.get(actor_id)
                if actor_id in extra:
                    merged = agent_pb2.Reward()
                    if reward is not None:
                        merged.CopyFrom(reward)
                    merged.feedbacks.extend(extra[actor_id])
                    reward = merged
                if reward is None:
                    tail.append(b"\x22\x00")  # an empty Reward, kept: rewards go by actor id
                else:
                    encoded = reward.SerializeToString()
                    tail += (b"\x22", wire.varint(len(encoded)), encoded)
        tail.append(self.user_field)
        if routed:
            for receiver in [*range(n_actors), ENVIRONMENT_ID]:
                collection = agent_pb2.MessageCollection(messages=routed.get(receiver, ()))
                encoded = collection.SerializeToString()
                tail += (b"\x32", wire.varint(len(encoded)), encoded)
        tail += (b"\x39", observations.timestamp.to_bytes(8, "little"))
        end = b"".join(tail)
        return [head, *slices, obs_tail, end], len(head) + obs_size + len(end)


def _field(tag: int, data: bytes) -> bytes:
    """A length-delimited field (none when `data` is empty: proto3 leaves defaults out)."""
    if not data:
        return b""
    return bytes((tag,)) + wire.varint(len(data)) + data


def late_rows(late: Sequence[common_pb2.Feedback]) -> list[tuple[int, bytes]]:
    return [(f.tick_id, f.SerializeToString()) for f in late]


def brief(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    return str(error) or repr(error)


class Recording(abc.ABC):
    """What both kinds of recording share: counting samples, and failing by the rule (a
    `TrialRecording`, but for how samples and the end are queued)."""

    def __init__(
        self,
        where: str,
        settings: DatalogSettings,
        budget: ByteBudget,
        timeout: float,
        trial_id: str,
        user_id: str,
        params: common_pb2.TrialParams,
        fail: Fail,
    ) -> None:
        self.trial_id = trial_id
        self._where = where
        self._continue = settings.on_failure == "continue"
        self._budget = budget
        self._timeout = timeout
        self._fail = fail
        self._encoder = SampleEncoder(trial_id, user_id, len(params.actors))
        self.made = 0  # samples made of the trial
        self.stored = 0  # samples the store or the exporter confirmed
        self.failure: Optional[str] = None  # why recording failed, once it did
        self.ended = False

    def tick(
        self,
        tick_id: int,
        observations: wire.EnvReply,
        actions: Sequence[bytes],
        rewards: dict[int, agent_pb2.Reward],
        routed: Routed,
        late: Sequence[common_pb2.Feedback],
    ) -> bool:
        self._sample(tick_id, observations, actions, rewards, routed, late)
        return self._budget.spent and self.failure is None

    def end(
        self,
        tick_id: int,
        observations: Optional[wire.EnvReply],
        rewards: dict[int, agent_pb2.Reward],
        routed: Routed,
        reason: str,
        failed: bool,
    ) -> None:
        if self.ended:
            return
        if observations is not None:
            self._sample(tick_id, observations, (), rewards, routed, ())
        self.ended = True
        self._ended(self._end_message(tick_id, reason, failed))

    def _sample(
        self,
        tick_id: int,
        observations: wire.EnvReply,
        actions: Sequence[bytes],
        rewards: dict[int, agent_pb2.Reward],
        routed: Routed,
        late: Sequence[common_pb2.Feedback],
    ) -> None:
        self.made += 1
        if self.failure is None:
            parts, size = self._encoder.encode(
                tick_id, observations, actions, rewards, routed, late
            )
            self._queue(tick_id, observations.timestamp, parts, size, late)

    @abc.abstractmethod
    def _queue(
        self,
        tick_id: int,
        timestamp: int,
        parts: list[wire.Bytes],
        size: int,
        late: Sequence[common_pb2.Feedback],
    ) -> None:
        """Queues one encoded sample."""

    @abc.abstractmethod
    def _ended(self, end: datalog_ext_pb2.TrialLogEnd) -> None:
        """Queues the trial's end."""

    def _lost(self) -> None:
        if self.failure is not None:
            log.warning(
                "trial %s: datalog %s: %d of its %d samples lost",
                self.trial_id,
                self._where,
                self.made - self.stored,
                self.made,
            )

    async def room(self) -> None:
        if self.failure is None and not await self._budget.room(self._timeout):
            self.broken(f"no sample could be stored for {self._timeout:g} s")

    def broken(self, error: str) -> None:
        """Recording failed: apply the rule (once)."""
        if self.failure is not None:
            return
        self.failure = error
        self._drop()
        reason = FAILED.format(where=self._where, error=error)
        if not self._continue:
            log.warning("trial %s: %s", self.trial_id, reason)
            if not self.ended:
                self._fail(reason)
        else:
            log.warning(
                "trial %s: %s; the trial goes on unrecorded (on_failure: continue)",
                self.trial_id,
                reason,
            )

    def _drop(self) -> None:  # noqa: B027 - nothing to forget unless overridden
        """Forgets the samples queued and not stored (recording failed)."""

    def _end_message(self, tick_id: int, reason: str, failed: bool) -> datalog_ext_pb2.TrialLogEnd:
        return datalog_ext_pb2.TrialLogEnd(
            trial_id=self.trial_id,
            timestamp=store.now_ns(),
            reason=reason,
            failed=failed,
            ticks=tick_id,
            samples=self.made,
        )
