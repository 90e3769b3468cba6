"""The human side of a trial: its slots, the clients holding them, their pending actions.

A client's action for the current tick is filed with `submit`, which returns the future the
client's call waits on; the tick loop waits on `ready` (every slot has acted), then answers
each slot with `deliver`. A slot has at most one action pending.

A slot whose class observes deltas keeps its observations since the last snapshot
(`Observations`), so that a client joining it again (with the session id that holds it) gets
its full observation, not a delta it cannot apply.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional, Union

from google.protobuf.message import DecodeError

from cogment.api import agent_pb2, common_pb2, orchestrator_pb2
from cogment.delta import apply_delta
from cogment.errors import WRONG_SLOT_CLASS

from . import status, wire
from .actors import Actor
from .status import StatusError

log = logging.getLogger("cogment.orchestrator")


class Aborted:
    """What waiting calls get instead of a reply when the trial failed."""

    __slots__ = ("error",)

    def __init__(self, error: StatusError) -> None:
        self.error = error


class Last:
    """The reply carrying the last observation (trial_is_over set), encoded."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


# What a waiting call gets: a tick's encoded reply (bytes), the last one, a bare
# "trial is over" reply, or the failure to end the call with.
Reply = Union[bytes, Last, orchestrator_pb2.TrialActionReply, Aborted]
OVER_REPLY = orchestrator_pb2.TrialActionReply(trial_is_over=True)


FOLD_AFTER = 32  # deltas kept before they are applied to the slot's last snapshot


class Observations:
    """A delta-observing human slot's observations since its last snapshot (at most
    FOLD_AFTER deltas: then they are applied to it), for a client that joins the slot again."""

    __slots__ = ("_actor", "_deltas", "_snapshot", "broken")

    def __init__(self, actor: Actor) -> None:
        self._actor = actor
        self._snapshot: Optional[bytes] = None  # a serialized observation space; None: empty
        self._deltas: list[bytes] = []
        self.broken = False  # the delta-apply function failed: no full observation to give

    def add(self, data: Any) -> None:
        """Takes in the slot's serialized ObservationData of a tick."""
        content, snapshot = b"", False
        for number, _wire_type, value in wire.fields(data):
            if number == 1:
                content = bytes(value)
            elif number == 2:
                snapshot = bool(value)
        if snapshot:
            self._snapshot, self._deltas, self.broken = content, [], False
        elif not self.broken:
            self._deltas.append(content)
            if len(self._deltas) >= FOLD_AFTER:
                self._fold()

    def full(self) -> Optional[bytes]:
        """The slot's current full observation, serialized (None when it cannot be built)."""
        self._fold()
        return None if self.broken else (self._snapshot or b"")

    def _fold(self) -> None:
        if not self._deltas or self.broken:
            return
        actor_class = self._actor.actor_class
        try:
            observation = actor_class.observation_space.FromString(self._snapshot or b"")
            for content in self._deltas:
                delta = actor_class.observation_delta.FromString(content)
                observation = apply_delta(actor_class, observation, delta)
            self._snapshot = observation.SerializeToString()
        except Exception as error:  # the user's delta-apply function: say it, go on without
            log.warning(
                "actor %d: cannot apply its observation deltas (%r): a client joining it "
                "again gets the delta only",
                self._actor.id,
                error,
            )
            self.broken = True
        self._deltas = []


class HumanSlot:
    """A human actor: whether a client holds it, and its action for the current tick."""

    __slots__ = ("action", "actor", "joined", "observations", "session_ids", "waiter")

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.joined = False
        self.action: Optional[bytes] = None  # the action for the current tick, once sent
        self.waiter: Optional[asyncio.Future[Reply]] = None  # resolved with the next reply
        self.session_ids: list[str] = []
        self.observations = Observations(actor) if actor.actor_class.has_distinct_delta else None


class Humans:
    """The human slots of one trial (event loop only)."""

    def __init__(self, trial_id: str, actors: list[Actor]) -> None:
        self._trial_id = trial_id
        self._actors = actors
        self._loop = asyncio.get_running_loop()
        self.slots: list[HumanSlot] = []
        self._by_id: dict[int, HumanSlot] = {}
        self._missing = 0  # slots whose action for the current tick has not come yet
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self._final: list[tuple[asyncio.Future[Reply], Reply]] = []
        self.last_activity = self._loop.time()

    def __bool__(self) -> bool:
        return bool(self.slots)

    def add(self, actor: Actor) -> None:
        slot = HumanSlot(actor)
        self.slots.append(slot)
        self._by_id[actor.id] = slot
        self._missing += 1

    def slot(self, actor_id: int) -> HumanSlot:
        """The human slot `actor_id` (NOT_FOUND / FAILED_PRECONDITION otherwise)."""
        slot = self._by_id.get(actor_id)
        if slot is None:
            if not 0 <= actor_id < len(self._actors):
                raise status.not_found(
                    status.NO_ACTOR.format(trial_id=self._trial_id, actor_id=actor_id)
                )
            raise status.failed_precondition(
                status.NOT_HUMAN.format(
                    trial_id=self._trial_id,
                    actor_id=actor_id,
                    endpoint=self._actors[actor_id].endpoint,
                )
            )
        return slot

    def hold(self, slot: HumanSlot, session_id: str) -> None:
        """Gives `slot` to the client of `session_id`."""
        slot.joined = True
        if session_id and session_id not in slot.session_ids:
            slot.session_ids.append(session_id)
        self.last_activity = self._loop.time()

    def join(self, actor_id: int, session_id: str, actor_class: str = "") -> HumanSlot:
        """A client joins the free human slot `actor_id`, or takes back the slot its session
        holds (a client that lost its connection and came back with its session id); when
        it says which class it plays (`actor_class`, "" when it does not), the slot must be
        of that class."""
        slot = self.slot(actor_id)
        slot_class = slot.actor.actor_class.id
        if actor_class and actor_class != slot_class:
            raise status.invalid_argument(
                WRONG_SLOT_CLASS.format(
                    trial_id=self._trial_id,
                    actor_id=actor_id,
                    slot=slot_class,
                    requested=actor_class,
                )
            )
        if slot.joined and not (session_id and session_id in slot.session_ids):
            raise status.failed_precondition(
                status.ALREADY_JOINED.format(trial_id=self._trial_id, actor_id=actor_id)
            )
        if slot.waiter is not None and not slot.waiter.done():
            # the session's previous connection is gone: its pending call is abandoned (the
            # action it filed stays, and the client may send it again)
            slot.waiter.cancel()
            slot.waiter = None
        self.hold(slot, session_id)
        return slot

    def submit(self, actor_id: int, content: bytes) -> asyncio.Future[Reply]:
        """Files a human's action for the current tick; the future gets the next reply."""
        slot = self._by_id.get(actor_id)
        if slot is None or not slot.joined:
            if slot is None:
                self.slot(actor_id)  # raises the right error
            raise status.failed_precondition(
                status.NOT_JOINED.format(trial_id=self._trial_id, actor_id=actor_id)
            )
        waiter = slot.waiter
        if waiter is not None and not waiter.done():
            raise status.failed_precondition(
                status.ACTION_PENDING.format(trial_id=self._trial_id, actor_id=actor_id)
            )
        if content:
            _check_action(self._trial_id, slot.actor, content)
        self.last_activity = self._loop.time()
        waiter = slot.waiter = self._loop.create_future()
        first = slot.action is None  # else: a retry after the waiting call was cancelled
        slot.action = content
        if first:
            self._missing -= 1
            if self._missing == 0 and not self.ready.done():
                self.ready.set_result(None)
        return waiter

    def record(self, observations: list[Any], index: list[int]) -> None:
        """Takes in a tick's observations (serialized ObservationData, `index`: by actor id)
        for the slots that keep theirs."""
        for slot in self.slots:
            if slot.observations is not None:
                slot.observations.add(observations[index[slot.actor.id]])

    def actions_into(self, actions: list[bytes]) -> None:
        for slot in self.slots:
            actions[slot.actor.id] = slot.action or b""

    def rearm(self) -> None:
        """Starts waiting for the next tick's actions (before any reply goes out)."""
        self._missing = len(self.slots)
        self.ready = self._loop.create_future()
        self.last_activity = self._loop.time()

    def answer(
        self,
        observations: list[wire.EncodedObservation],
        rewards: dict[int, agent_pb2.Reward],
        routed: Optional[dict[int, list[common_pb2.Message]]],
        last: bool,
    ) -> None:
        """Sends every human its observation (by actor id) with its reward and messages,
        after re-arming the wait for their next actions; the last replies wait for `notify`."""
        self.rearm()
        for slot in self.slots:
            actor_id = slot.actor.id
            messages = routed.get(actor_id) if routed else None
            reply = wire.action_reply(observations[actor_id], rewards.get(actor_id), messages, last)
            self.deliver(slot, reply, last)

    def deliver(self, slot: HumanSlot, reply: bytes, last: bool) -> None:
        """Answers `slot`'s pending action; the last reply waits for `notify`."""
        slot.action = None
        waiter, slot.waiter = slot.waiter, None
        if waiter is None:
            return
        if last:
            self._final.append((waiter, Last(reply)))
        elif not waiter.done():
            waiter.set_result(reply)

    def heartbeat(self) -> None:
        self.last_activity = self._loop.time()

    def idle_for(self, now: float) -> Optional[float]:
        """Seconds since the last human activity; None while the trial does not wait for a
        human (every human has acted: the services are computing the tick)."""
        if self._missing == 0:
            return None
        return now - self.last_activity

    def stop_waiting(self) -> None:
        if not self.ready.done():
            self.ready.cancel()

    def notify(self, answer: Reply) -> None:
        """Tells every waiting client the trial is over: the last replies as prepared (unless
        the trial failed), `answer` to the others."""
        failed = isinstance(answer, Aborted)
        for waiter, reply in self._final:
            if not waiter.done():
                waiter.set_result(answer if failed else reply)
        self._final = []
        for slot in self.slots:
            pending, slot.waiter = slot.waiter, None
            if pending is not None and not pending.done():
                pending.set_result(answer)

    def sender(self, claimed: int, session_id: str) -> int:
        """The human slot a client message comes from: the one its session holds, the only
        human slot, or the (human) sender id the client wrote."""
        held = [s.actor.id for s in self.slots if session_id and session_id in s.session_ids]
        if len(held) == 1:
            return held[0]
        if len(self.slots) == 1:
            return self.slots[0].actor.id
        candidates = held or [s.actor.id for s in self.slots if s.joined]
        if claimed in candidates or not candidates:
            return claimed
        return candidates[0]


def make_snapshot(slot: HumanSlot, data: common_pb2.ObservationData) -> None:
    """Turns the delta of the slot's current observation into a snapshot: its kept
    observations, else the delta applied to the class's empty observation."""
    actor = slot.actor
    kept = slot.observations.full() if slot.observations is not None else None
    if kept is not None:
        data.content = kept
        data.snapshot = True
        return
    actor_class = actor.actor_class
    try:
        delta = actor_class.observation_delta.FromString(data.content)
        full = apply_delta(actor_class, actor_class.observation_space(), delta)
    except Exception as error:  # forward what we have rather than fail the join
        log.warning("actor %d: cannot rebuild a snapshot from the delta: %r", actor.id, error)
        return
    data.content = full.SerializeToString()
    data.snapshot = True


def _check_action(trial_id: str, actor: Actor, content: bytes) -> None:
    action_space: Any = actor.actor_class.action_space
    try:
        action_space.FromString(content)
    except (DecodeError, RuntimeError, ValueError):
        raise status.invalid_argument(
            status.BAD_ACTION.format(
                trial_id=trial_id,
                actor_id=actor.id,
                type_name=action_space.DESCRIPTOR.full_name,
                class_id=actor.actor_class.id,
            )
        ) from None
