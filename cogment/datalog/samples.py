"""Recorded samples decoded with a project's types: whole observations, actions, rewards.

`SampleDecoder` turns a trial's `cogment.DatalogSample`s, in tick order, into `Sample`s:
observations decoded with each actor's class (deltas applied to that actor's previous
observation, so every observation is whole), actions decoded, rewards and messages by actor.
The reader (`open_datalog`) and the `cogment.LogExporter` servicer both use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Generic, Optional, TypeVar

from google.protobuf.message import DecodeError, Message

from cogment.api import agent_pb2, common_pb2, data_pb2
from cogment.delta import apply_delta
from cogment.errors import DatalogError
from cogment.settings import ActorClass

T = TypeVar("T")


class ByActor(Generic[T]):
    """Values by actor: `table.all[actor_id]`, or `table.<class id>[i]` (i: the actor's index
    within its class). Iterating goes by actor id."""

    def __init__(self, layout: TrialLayout, values: list[T]) -> None:
        self.all = values
        self._layout = layout

    def __getattr__(self, name: str) -> list[T]:
        layout = self.__dict__.get("_layout")
        if layout is None or name not in layout.class_ids:
            raise AttributeError(f"no actor class named {name!r}")
        return [self.all[i] for i in layout.actors_of(name)]

    def __getitem__(self, actor_id: int) -> T:
        return self.all[actor_id]

    def __iter__(self) -> Iterator[T]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    def __repr__(self) -> str:
        return f"ByActor({self.all!r})"


class TrialLayout:
    """A trial's actors: the class of each actor id, from its parameters and the project."""

    def __init__(self, settings: Any, params: common_pb2.TrialParams, trial_id: str) -> None:
        self.classes: list[ActorClass] = []
        self.class_ids = list(settings.actor_classes.ids)
        self._by_class: dict[str, list[int]] = {class_id: [] for class_id in self.class_ids}
        for actor_id, actor in enumerate(params.actors):
            actor_class = settings.actor_classes.get(actor.actor_class)
            if actor_class is None:
                raise DatalogError(
                    f"trial {trial_id}: actor {actor_id} is of class {actor.actor_class!r}, "
                    f"which the project does not declare ({', '.join(self.class_ids)})"
                )
            self.classes.append(actor_class)
            self._by_class[actor_class.id].append(actor_id)
        self.actor_counts = [len(self._by_class[c]) for c in self.class_ids]

    def __len__(self) -> int:
        return len(self.classes)

    def actors_of(self, class_id: str) -> list[int]:
        """The actor ids of a class, in order."""
        return self._by_class[class_id]

    def actor_id(self, class_id: str, index: int) -> int:
        """The id of the actor `index` of class `class_id`.

        Raises:
            DatalogError: no such class, or not that many actors of it.
        """
        if class_id not in self._by_class:
            raise DatalogError(
                f"no actor class {class_id!r} (the project declares {', '.join(self.class_ids)})"
            )
        ids = self._by_class[class_id]
        if not 0 <= index < len(ids):
            raise DatalogError(
                f"the trial has {len(ids)} actors of class {class_id!r}, not {index + 1}"
            )
        return ids[index]


class Sample:
    """One recorded tick, decoded.

    Attributes:
        trial_id, user_id: the trial's.
        tick_id: the tick.
        timestamp: of the tick's observations, nanoseconds since the epoch.
        observations: `ByActor` of whole observations (deltas applied); None for an actor
            whose delta follows a tick that is missing from the record.
        actions: `ByActor` of decoded actions; None for every actor in the last sample of a
            trial (the observations it ended on, without actions).
        rewards: `ByActor` of `Reward`s (value, confidence, feedbacks), None for an actor
            that got no feedback about this tick. Their value and confidence are what the
            actor received; their feedbacks also list late feedback about this tick, which
            arrived after the reward was sent (read back with `open_datalog`).
        messages: the `cogment.Message`s delivered at the end of the tick.
        late_feedback: the feedbacks this sample carried about earlier ticks.
        raw: the `cogment.DatalogSample` as recorded (observations as sent).

    The observation objects are shared (between actors that saw the same observation, and
    with the decoding of the next tick): copy one before modifying it.
    """

    __slots__ = (
        "actions",
        "late_feedback",
        "messages",
        "observations",
        "raw",
        "rewards",
        "tick_id",
        "timestamp",
        "trial_id",
        "user_id",
    )

    def __init__(
        self,
        trial_id: str,
        user_id: str,
        tick_id: int,
        timestamp: int,
        observations: ByActor[Any],
        actions: ByActor[Any],
        rewards: ByActor[Any],
        messages: list[common_pb2.Message],
        late_feedback: list[common_pb2.Feedback],
        raw: data_pb2.DatalogSample,
    ) -> None:
        self.trial_id = trial_id
        self.user_id = user_id
        self.tick_id = tick_id
        self.timestamp = timestamp
        self.observations = observations
        self.actions = actions
        self.rewards = rewards
        self.messages = messages
        self.late_feedback = late_feedback
        self.raw = raw

    @property
    def last(self) -> bool:
        """Whether this is the trial's last sample: the observations it ended on, no actions."""
        return all(action is None for action in self.actions)

    def __repr__(self) -> str:
        return (
            f"Sample(trial {self.trial_id}, tick {self.tick_id}, {len(self.observations)} actors)"
        )


class SampleDecoder:
    """Decodes one trial's samples, given in tick order (it keeps each actor's latest
    observation to apply the next delta to)."""

    def __init__(self, layout: TrialLayout, trial_id: str, user_id: str) -> None:
        self.layout = layout
        self.trial_id = trial_id
        self.user_id = user_id
        self._previous: list[Optional[Message]] = [None] * len(layout)
        self._last_tick: Optional[int] = None
        self.gaps = 0  # ticks found missing between two samples

    def decode(
        self, raw: data_pb2.DatalogSample, tick_id: int, late: Sequence[bytes] = ()
    ) -> Sample:
        """The Sample of `raw` (the sample of `tick_id`); `late` lists serialized feedbacks
        about this tick that arrived later.

        Raises:
            DatalogError: the sample does not fit the trial or the project's types.
        """
        if self._last_tick is not None and tick_id != self._last_tick + 1:
            self.gaps += max(0, tick_id - self._last_tick - 1)
            self._previous = [None] * len(self.layout)  # a delta cannot cross a hole
        self._last_tick = tick_id
        layout = self.layout
        observations = self._observations(raw.observations, tick_id)
        actions: list[Optional[Message]] = [None] * len(layout)
        if raw.actions:
            if len(raw.actions) != len(layout):
                raise self._error(tick_id, f"{len(raw.actions)} actions for {len(layout)} actors")
            for actor_id, (action, actor_class) in enumerate(zip(raw.actions, layout.classes)):
                actions[actor_id] = self._parse(
                    actor_class.action_space, action.content, tick_id, f"action of actor {actor_id}"
                )
        rewards, carried = self._rewards(raw, tick_id, late)
        messages = [m for collection in raw.messages for m in collection.messages]
        return Sample(
            self.trial_id,
            self.user_id,
            tick_id,
            raw.timestamp or raw.observations.timestamp,
            ByActor(layout, observations),
            ByActor(layout, actions),
            ByActor(layout, rewards),
            messages,
            carried,
            raw,
        )

    def _observations(self, obs_set: Any, tick_id: int) -> list[Optional[Message]]:
        layout = self.layout
        count = len(obs_set.observations)
        index = list(obs_set.actors_map)
        if not index and count == 1:
            index = [0] * len(layout)  # one observation for everyone
        if len(index) != len(layout) or any(not 0 <= i < count for i in index):
            raise self._error(
                tick_id,
                f"{count} observations and actors_map {list(obs_set.actors_map)} for "
                f"{len(layout)} actors",
            )
        decoded: dict[tuple[int, str], Message] = {}
        observations: list[Optional[Message]] = []
        for actor_id, (i, actor_class) in enumerate(zip(index, layout.classes)):
            data = obs_set.observations[i]
            key = (i, actor_class.id)
            message = decoded.get(key)
            if message is None:
                message_type = (
                    actor_class.observation_space
                    if data.snapshot
                    else actor_class.observation_delta
                )
                what = f"observation of actor {actor_id}" + ("" if data.snapshot else " (delta)")
                message = decoded[key] = self._parse(message_type, data.content, tick_id, what)
            if data.snapshot:
                full: Optional[Message] = message
            else:
                full = self._apply(actor_id, actor_class, message, tick_id)
            self._previous[actor_id] = full
            observations.append(full)
        return observations

    def _apply(
        self, actor_id: int, actor_class: ActorClass, delta: Message, tick_id: int
    ) -> Optional[Message]:
        previous = self._previous[actor_id]
        if previous is None:
            return None  # the snapshot it builds on is not in the record
        base = type(previous)()
        base.CopyFrom(previous)  # an in-place delta_apply_fn must not change what we gave out
        try:
            return apply_delta(actor_class, base, delta)
        except Exception as error:
            raise self._error(
                tick_id,
                f"the delta_apply_fn of class {actor_class.id!r} failed on the observation of "
                f"actor {actor_id}: {type(error).__name__}: {error}",
            ) from error

    def _rewards(
        self, raw: data_pb2.DatalogSample, tick_id: int, late: Sequence[bytes]
    ) -> tuple[list[Optional[agent_pb2.Reward]], list[common_pb2.Feedback]]:
        """Each actor's reward for the tick (with late feedback about it), and the feedbacks
        about earlier ticks the sample carried."""
        n = len(self.layout)
        rewards: list[Optional[agent_pb2.Reward]] = [None] * n
        carried: list[common_pb2.Feedback] = []
        for actor_id, recorded in enumerate(raw.rewards):
            if actor_id >= n:
                break
            own = []
            for feedback in recorded.feedbacks:
                if 0 <= feedback.tick_id < tick_id:
                    carried.append(feedback)
                else:
                    own.append(feedback)
            if own or recorded.value or recorded.confidence:
                reward = agent_pb2.Reward(value=recorded.value, confidence=recorded.confidence)
                reward.feedbacks.extend(own)
                rewards[actor_id] = reward
        for data in late:
            feedback = common_pb2.Feedback.FromString(data)
            if feedback.actor_id >= n:
                continue
            target = rewards[feedback.actor_id]
            if target is None:
                target = rewards[feedback.actor_id] = agent_pb2.Reward()
            target.feedbacks.append(feedback)
        return rewards, carried

    def _parse(self, message_type: Any, content: bytes, tick_id: int, what: str) -> Message:
        try:
            return message_type.FromString(content)  # type: ignore[no-any-return]
        except (DecodeError, RuntimeError, ValueError) as error:
            raise self._error(
                tick_id, f"the {what} is not a {message_type.DESCRIPTOR.full_name} ({error})"
            ) from None

    def _error(self, tick_id: int, what: str) -> DatalogError:
        return DatalogError(f"trial {self.trial_id}, tick {tick_id}: {what}")
