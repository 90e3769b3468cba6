"""`Outbox`: the feedback and messages user code gave a trial's actors, queued until they are
sent (with a service's reply, or by a client before its next action or on flush)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Optional, Union

from google.protobuf.message import Message

from cogment.actor import Actor
from cogment.api import common_pb2
from cogment.constants import CURRENT_TICK, ENVIRONMENT_ID
from cogment.protocol import UserData, make_feedback, pack_payload

NO_RECEIVER = (
    "trial {trial_id}: no actor {receiver} to send a message to "
    "(actor ids are 0..{last}, -1 is the environment)"
)

_NOTHING: tuple[Sequence[common_pb2.Feedback], Sequence[common_pb2.Message]] = ((), ())


class Outbox:
    """The queued feedback and messages of one trial (thread-safe).

    A service takes them all with `drain` when it replies; a client takes them with
    `take_feedbacks` and `take_messages`.

    Args:
        trial_id: the trial's id (for error messages).
        sender_id: the id messages are sent from (an actor id, -1 for the environment).
        actor_count: the number of actors in the trial (receivers: 0..actor_count-1, and -1).
    """

    __slots__ = ("_actor_count", "_feedbacks", "_lock", "_messages", "_sender_id", "_trial_id")

    def __init__(self, trial_id: str, sender_id: int, actor_count: int) -> None:
        self._trial_id = trial_id
        self._sender_id = sender_id
        self._actor_count = actor_count
        self._lock = threading.Lock()
        self._feedbacks: list[common_pb2.Feedback] = []
        self._messages: list[common_pb2.Message] = []

    def add_feedback(
        self, actor: Actor, value: float, confidence: float, tick_id: int, user_data: UserData
    ) -> None:
        """Queues feedback for `actor` (`tick_id` -1: the current tick, see `drain`).

        Raises:
            ValueError: for a negative confidence or a tick id below -1.
        """
        feedback = make_feedback(
            actor.actor_id, actor.id_in_class, value, confidence, tick_id, user_data
        )
        with self._lock:
            self._feedbacks.append(feedback)

    def add_messages(
        self, user_data: Optional[Message], send_list: Iterable[Union[int, Actor]]
    ) -> None:
        """Queues one message per receiver (actor ids or `Actor`s; -1 is the environment);
        `user_data` None queues messages without payload.

        Raises:
            TypeError: `user_data` is neither a protobuf message nor None.
            ValueError: a receiver is not in the trial (then nothing is queued).
        """
        payload = None if user_data is None else pack_payload(user_data)
        messages = []
        for receiver in send_list:
            receiver_id = receiver.actor_id if isinstance(receiver, Actor) else receiver
            if not (receiver_id == ENVIRONMENT_ID or 0 <= receiver_id < self._actor_count):
                raise ValueError(
                    NO_RECEIVER.format(
                        trial_id=self._trial_id, receiver=receiver_id, last=self._actor_count - 1
                    )
                )
            messages.append(
                common_pb2.Message(
                    sender_id=self._sender_id, receiver_id=receiver_id, payload=payload
                )
            )
        with self._lock:
            self._messages.extend(messages)

    def mark(self) -> int:
        """How many feedbacks are queued (those `drain` will leave at tick -1)."""
        return len(self._feedbacks)

    def drain(
        self, mark: int, tick_id: int
    ) -> tuple[Sequence[common_pb2.Feedback], Sequence[common_pb2.Message]]:
        """Takes the queued feedback and messages; feedback queued after `mark` with tick -1
        gets `tick_id`."""
        if not self._feedbacks and not self._messages:
            return _NOTHING
        with self._lock:
            feedbacks, self._feedbacks = self._feedbacks, []
            messages, self._messages = self._messages, []
        for feedback in feedbacks[mark:]:
            if feedback.tick_id == CURRENT_TICK:
                feedback.tick_id = tick_id
        return feedbacks, messages

    def take_feedbacks(self) -> Sequence[common_pb2.Feedback]:
        """Takes the queued feedback, as it is."""
        if not self._feedbacks:
            return ()
        with self._lock:
            feedbacks, self._feedbacks = self._feedbacks, []
        return feedbacks

    def take_messages(self) -> Sequence[common_pb2.Message]:
        """Takes the queued messages."""
        if not self._messages:
            return ()
        with self._lock:
            messages, self._messages = self._messages, []
        return messages
