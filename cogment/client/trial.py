"""`ClientTrial`: one trial as a client (a human slot, or a watcher) sees and drives it.

```python
trial = conn.start_trial(cog_settings.actor_classes.player)
trial.actors.player[1].add_feedback(value=1.0, confidence=1.0)   # sent with the next action
obs, reward, messages = trial.do_action(Move(cell=3))           # blocks until the next tick
trial.end()
```

`do_action` returns an `ActionResult` (observation, reward, messages): the full observation
of the next tick (deltas already applied with the class's delta-apply function), the
`cogment.api.agent_pb2.Reward` of the tick the action was for (empty when nobody gave this
actor feedback for it), and the `cogment.api.agent_pb2.MessageCollection` delivered to this
actor at the end of that tick (`messages.messages` is the list; the same type an agent's
`on_message` receives).

A ClientTrial talks to its connection only through `interface.TrialConnection` (a
`cogment.client.Connection`, or a fake in a test). It owns two small objects: its
`ending.TrialEnd` (whether and why it ended, and who is told) and its `contact.Contact` (its
calls, action or watch stream and heartbeats, and what they say of its end).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from typing import Any, Callable, NamedTuple, Optional, Union

import grpc
from google.protobuf.message import Message

from cogment.actor import Actor
from cogment.api import agent_pb2, common_pb2, orchestrator_pb2
from cogment.client.contact import Contact
from cogment.client.ending import REASON_CLIENT, TrialEnd
from cogment.client.interface import TrialConnection
from cogment.client.slot import slot_class, slot_config, type_name
from cogment.constants import CURRENT_TICK
from cogment.errors import CogmentError, CogmentRpcError, StatusError, TrialError
from cogment.protocol import UserData, unpack_observation
from cogment.settings import ActorClass
from cogment.trial import Trial

log = logging.getLogger(__name__)

NO_SLOT = (
    "trial {trial_id}: this client has no actor slot (actor_id -1); it can only watch or end it"
)
WRONG_ACTION = (
    "trial {trial_id}: actor {actor_id} (class {class_id!r}) acts with {expected}, got {got}"
)


class ActionResult(NamedTuple):
    """What `do_action` returns; unpacks as `obs, reward, messages`."""

    observation: Any
    reward: agent_pb2.Reward
    messages: agent_pb2.MessageCollection


EndListener = Callable[[], Any]
END_DEADLINE = 30.0  # seconds `end()` waits for the orchestrator when the Connection has no timeout
# what `end()` tolerates from End: the trial is over for this client anyway
_END_TOLERATED = (
    grpc.StatusCode.NOT_FOUND,  # over already (or unknown): nothing left to end
    grpc.StatusCode.DEADLINE_EXCEEDED,  # the orchestrator may have ended it meanwhile
    grpc.StatusCode.UNAVAILABLE,  # the orchestrator is gone, and its trials with it
    grpc.StatusCode.CANCELLED,  # the connection closed meanwhile
)


class ClientTrial(Trial):
    """A trial this client started or joined (a `cogment.Trial`). Made by
    `Connection.start_trial`/`join_trial`.

    As every `cogment.Trial`, it has `id`, `settings`, `actor_counts`, `actors`, `tick_id`
    (the tick its next action is for; -1 without a slot), `trial_config` (the `trial_cfg`
    this client started the trial with; None when it gave none, the trial then running with
    the orchestrator's default, and for a joined trial, whose config a client is not told)
    and `new_observation_table()`.

    A trial is over for this client once the orchestrator says it ended, `end()` was called,
    or the client gave up on it: the orchestrator became unreachable (a call about the trial
    got UNAVAILABLE, or heartbeats did for several seconds), or a `do_action` timed out. The
    last two are failures: `error` is then a `TrialError`, raised by every later call.

    Args:
        connection: the connection the trial was started or joined on (any
            `TrialConnection`); the trial starts keeping in touch through it at once.
        actor_class: the class the client asked to play.
        reply: the orchestrator's `TrialStartReply` (to Start or Join).
        trial_config: the `trial_cfg` the client started the trial with.

    Raises:
        ConfigurationError: the trial's classes are not the project's, or the slot is of
            another class than `actor_class`.
        CogmentError: the slot's config or observation do not parse.
        LifecycleError: the connection is closed.
    """

    def __init__(
        self,
        connection: TrialConnection,
        actor_class: ActorClass,
        reply: orchestrator_pb2.TrialStartReply,
        trial_config: Optional[Any] = None,
    ) -> None:
        settings = connection.settings
        actor_counts = list(reply.actor_counts)
        slot = slot_class(
            settings.actor_classes, actor_counts, reply.actor_id, actor_class, reply.trial_id
        )
        super().__init__(
            reply.trial_id, settings, actor_counts, trial_config, sender_id=reply.actor_id
        )
        self._connection = connection
        self._actor_id = reply.actor_id
        self._actor_class = slot
        self._config = slot_config(slot, reply)
        self._lock = threading.Lock()  # the observation and what came with it
        self._observation: Any = None
        self._tick_id = -1
        if slot is not None and reply.HasField("observation"):
            self._set_observation(reply.observation)
        self._latest_reward = agent_pb2.Reward()
        self._latest_messages = agent_pb2.MessageCollection()
        self._end = TrialEnd(f"cogment-end-{self._id}")
        self._contact = Contact(
            connection,
            self,
            self._id,
            self._end,
            has_slot=slot is not None,
            on_late_reply=self._absorb,
        )
        self._contact.start()

    # ------------------------------------------------------------------ read-only state

    @property
    def actor_id(self) -> int:
        """This client's actor id, or -1 when the trial has no slot for it (agents only)."""
        return self._actor_id

    @property
    def actor_class(self) -> Optional[ActorClass]:
        """The class of this client's slot (None when `actor_id` is -1)."""
        return self._actor_class

    @property
    def config(self) -> Any:
        """This actor's config, decoded with its class's `config_type` as an agent gets it
        (None without a slot, a config type, or a config)."""
        return self._config

    @property
    def observation(self) -> Any:
        """The latest full observation (None for a trial without a slot)."""
        return self._observation

    @property
    def latest_reward(self) -> agent_pb2.Reward:
        """The reward the last `do_action` returned (empty before the first)."""
        return self._latest_reward

    @property
    def latest_messages(self) -> agent_pb2.MessageCollection:
        """The messages the last `do_action` returned (empty before the first)."""
        return self._latest_messages

    @property
    def session_id(self) -> str:
        """The session id of the Connection, sent with each call about this trial."""
        return self._connection.session_id

    @property
    def connection(self) -> TrialConnection:
        """The Connection this trial was started or joined on."""
        return self._connection

    @property
    def is_over(self) -> bool:
        """True once the trial is over for this client (see `end_reason` and `error`)."""
        return self._end.is_over

    @property
    def end_reason(self) -> str:
        """Why the trial is over ("" while it runs)."""
        return self._end.reason

    @property
    def error(self) -> Optional[TrialError]:
        """The failure that ended the trial, if it ended by one."""
        return self._end.error

    def wait_for_end(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the trial is over or `timeout` passes; True when it is over."""
        return self._end.wait(timeout)

    def __repr__(self) -> str:
        state = f"over: {self._end.reason}" if self.is_over else f"tick {self._tick_id}"
        return f"ClientTrial({self._id!r}, actor_id={self._actor_id}, {state})"

    # ------------------------------------------------------------------ acting

    def do_action(self, action: Message) -> ActionResult:
        """Sends the action for the current tick (after any queued feedback and messages) and
        blocks until the next tick is computed.

        When the reply says the trial is over, the final observation and reward (if any) are
        returned and `is_over` becomes True; later calls raise.

        The observation is the trial's latest: with a `delta_apply_fn` that updates the
        previous observation in place, every call returns the same object, updated (copy it
        to keep one); otherwise each tick has its own.

        Raises:
            TypeError: `action` is not an instance of the class's action space.
            TrialEndedError: the trial is over.
            TrialError: the trial is over because of a failure: a failing service (the
                orchestrator's reason); the orchestrator unreachable (UNAVAILABLE, "lost the
                orchestrator at ..."): the trial lived in its memory; or no reply within the
                Connection's `timeout` (DEADLINE_EXCEEDED): the action may or may not have
                been applied, so the client ends the trial on the orchestrator (best effort).
                Later calls raise the same TrialError.
            CogmentRpcError: any other refusal (e.g. FAILED_PRECONDITION: an action is pending).
        """
        actor_class = self._actor_class
        if actor_class is None:
            raise CogmentError(NO_SLOT.format(trial_id=self._id))
        if not isinstance(action, actor_class.action_space):
            raise TypeError(
                WRONG_ACTION.format(
                    trial_id=self._id,
                    actor_id=self._actor_id,
                    class_id=actor_class.id,
                    expected=actor_class.action_space.DESCRIPTOR.full_name,
                    got=type_name(action),
                )
            )
        self._contact.check_usable()
        self._flush()
        request = orchestrator_pb2.TrialActionRequest(trial_id=self._id, actor_id=self._actor_id)
        request.action.content = action.SerializeToString()
        return self._absorb(self._contact.act(request))

    def begin_actions_stream(self) -> None:
        """From now on `do_action` goes over one ActionStream instead of one call per action.

        Idempotent while the stream is open.
        """
        if self._actor_class is None:
            raise CogmentError(NO_SLOT.format(trial_id=self._id))
        self._contact.check_usable()
        self._contact.begin_actions_stream()

    # ------------------------------------------------------------------ feedback, messages

    def multi_cast(
        self,
        user_data: Optional[Message] = None,
        send_list: Iterable[Union[int, Actor]] = (),
    ) -> None:
        """Queues a protobuf message (None: a message without payload) for several receivers
        (actor ids or `Actor`s, -1 for the environment; none when empty), sent before the
        next `do_action` (or by `flush_message()`); a receiver not in the trial raises
        ValueError and nothing is queued."""
        self._contact.check_usable()
        self._outbox.add_messages(user_data, send_list)

    def flush_feedback(self) -> None:
        """Sends the queued feedback now (GiveFeedback) instead of with the next action."""
        self._contact.check_usable()
        feedbacks = self._outbox.take_feedbacks()
        if feedbacks:
            request = orchestrator_pb2.TrialFeedbackRequest(trial_id=self._id, feedbacks=feedbacks)
            self._contact.call("GiveFeedback", request)

    def flush_message(self) -> None:
        """Sends the queued messages now (SendMessage) instead of with the next action."""
        self._contact.check_usable()
        messages = self._outbox.take_messages()
        if messages:
            request = orchestrator_pb2.TrialMessageRequest(trial_id=self._id, messages=messages)
            self._contact.call("SendMessage", request)

    def _add_feedback(
        self, actor: Actor, value: float, confidence: float, tick_id: int, user_data: UserData
    ) -> None:
        self._contact.check_usable()  # tick -1: the tick of the observation held
        tick = self._tick_id if tick_id == CURRENT_TICK else tick_id
        self._outbox.add_feedback(actor, value, confidence, tick, user_data)

    def _flush(self) -> None:
        self.flush_feedback()
        self.flush_message()

    # ------------------------------------------------------------------ ending

    def set_on_trial_end_event_listener(self, callback: EndListener) -> None:
        """Sets the end listener: `callback()`, with no parameters (its return value is
        ignored), is called once, from a background thread, when the trial ends by any means
        other than this client's `end()` (environment, max_steps, inactivity, another
        client, a failure: see `end_reason` and `error`). Set after the trial ended, it is
        called right away. A listener that wants the trial has it in a closure."""
        self._end.set_listener(callback)

    def call_at_end(self, callback: Callable[[], Any]) -> None:
        """Calls `callback()` once when the trial ends, by any means (this client's `end()`
        included: then before `end()` returns; otherwise from a background thread). Called
        right away when the trial is over already. Used for `start_trial`'s plugins."""
        self._end.call_at_end(callback)

    def end(self) -> None:
        """Sends the queued feedback and messages, then ends the trial (idempotent cleanup).

        A trial already over, or that the orchestrator no longer knows, cannot be reached
        for, or does not confirm ending in time, is not an error (logged at debug level).
        The call waits at most the Connection's `timeout` (30 s without one).

        Raises:
            LifecycleError: the connection is closed.
            CogmentRpcError: the orchestrator refused otherwise (the trial is over for this
                client nonetheless).
        """
        if self.is_over or self._end.by_client:
            return
        self._connection.ensure_open()
        if not self._end.claim():
            return
        try:
            with contextlib.suppress(CogmentError):  # the trial may be over already
                self._flush()
            if not self.is_over:
                request = orchestrator_pb2.TrialEndRequest(trial_id=self._id)
                try:
                    timeout = self._connection.timeout or END_DEADLINE
                    self._connection.call_unary("End", request, timeout)
                except CogmentRpcError as error:
                    if error.code not in _END_TOLERATED:
                        raise
                    log.debug("trial %s: end(): %s", self._id, error)
        finally:
            self._contact.finish(REASON_CLIENT, remote=False)

    # ------------------------------------------------------------------ internals

    def _set_observation(self, observation: common_pb2.Observation) -> None:
        assert self._actor_class is not None
        try:
            self._observation = unpack_observation(
                self._actor_class,
                observation.data,
                self._observation,
                f"trial {self._id}: observation of actor {self._actor_id}",
            )
        except StatusError as error:
            raise CogmentError(error.message) from None
        self._tick_id = observation.tick_id

    def _absorb(self, reply: orchestrator_pb2.TrialActionReply) -> ActionResult:
        with self._lock:
            if reply.HasField("observation") and self._actor_class is not None:
                self._set_observation(reply.observation)
            self._latest_reward = reply.reward
            self._latest_messages = reply.messages
            result = ActionResult(self._observation, reply.reward, reply.messages)
        if reply.trial_is_over:
            self._contact.finish_as_told()
        return result
