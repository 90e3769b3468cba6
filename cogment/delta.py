"""Observation and action tables, and delta-encoded observations.

An environment answers `start`/`update` with one observation for everyone, or with an
`ObservationTable` (`table.<class>[i] = obs`). An entry that is an instance of its class's
`observation_delta` (when that differs from the space) travels as a delta; the receiving
side rebuilds the full observation with the class's `observation_delta_apply_fn`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Optional

from google.protobuf.message import Message

from cogment.settings import ActorClass, ActorClassList


class ObservationSlot:
    """One actor's entry in an ObservationTable: a snapshot, a delta, or nothing yet."""

    __slots__ = ("_is_snapshot", "_value", "actor_class")

    def __init__(self, actor_class: ActorClass) -> None:
        self.actor_class = actor_class
        self._value: Optional[Message] = None
        self._is_snapshot = True

    @property
    def snapshot(self) -> Optional[Message]:
        return self._value if self._is_snapshot else None

    @snapshot.setter
    def snapshot(self, value: Message) -> None:
        self._value, self._is_snapshot = value, True

    @property
    def delta(self) -> Optional[Message]:
        return None if self._is_snapshot else self._value

    @delta.setter
    def delta(self, value: Message) -> None:
        self._value, self._is_snapshot = value, False

    @property
    def value(self) -> Optional[Message]:
        """What was set, snapshot or delta."""
        return self._value

    @property
    def is_snapshot(self) -> bool:
        return self._is_snapshot

    def set(self, value: Message) -> None:
        """Sets a snapshot or a delta, told apart by the message's type."""
        ac = self.actor_class
        if ac.has_distinct_delta and isinstance(value, ac.observation_delta):
            self.delta = value
        else:
            self.snapshot = value


class _ClassSlots(Sequence[ObservationSlot]):
    """`table.<class>`: the slots of one actor class, indexed by id within the class."""

    def __init__(self, slots: list[ObservationSlot]) -> None:
        self._slots = slots

    def __getitem__(self, index: Any) -> Any:
        return self._slots[index]

    def __setitem__(self, index: int, value: Message) -> None:
        self._slots[index].set(value)

    def __len__(self) -> int:
        return len(self._slots)


class ObservationTable:
    """Per-actor observations of one tick: `table.<class>[i]`, and `table.all` by actor id."""

    actor_classes: ClassVar[ActorClassList]

    def __init__(self, actor_counts: Sequence[int]) -> None:
        self.all: list[ObservationSlot] = []
        for actor_class, count in zip(self.actor_classes, actor_counts):
            slots = [ObservationSlot(actor_class) for _ in range(count)]
            self.all.extend(slots)
            setattr(self, actor_class.id, _ClassSlots(slots))

    def __getattr__(self, name: str) -> Any:  # only reached for names that are not classes
        raise AttributeError(f"the ObservationTable has no actor class named {name!r}")

    def __iter__(self) -> Iterator[ObservationSlot]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)


class ActionsTable:
    """The actions of one tick: `actions.<class>[i]`, and `actions.all` by actor id."""

    actor_classes: ClassVar[ActorClassList]

    def __init__(self, actor_counts: Sequence[int], actions: Sequence[Message] = ()) -> None:
        self.all: list[Message] = list(actions)
        start = 0
        for actor_class, count in zip(self.actor_classes, actor_counts):
            if not actions:
                self.all.extend(actor_class.action_space() for _ in range(count))
            setattr(self, actor_class.id, self.all[start : start + count])
            start += count

    def __getattr__(self, name: str) -> Any:  # only reached for names that are not classes
        raise AttributeError(f"the ActionsTable has no actor class named {name!r}")

    def __iter__(self) -> Iterator[Message]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)


def observation_table_type(actor_classes: ActorClassList) -> type[ObservationTable]:
    """The ObservationTable type of a project (`cog_settings.ObservationTable`)."""
    return type("ObservationTable", (ObservationTable,), {"actor_classes": actor_classes})


ObservationsTable = ObservationTable
"""The name of `ObservationTable` in cogment-py 0.5.0 (an alias)."""
observations_table_type = observation_table_type


def actions_table_type(actor_classes: ActorClassList) -> type[ActionsTable]:
    """The ActionsTable type of a project (`cog_settings.ActionsTable`)."""
    return type("ActionsTable", (ActionsTable,), {"actor_classes": actor_classes})


def apply_delta(actor_class: ActorClass, previous: Message, delta: Message) -> Message:
    """The full observation after `delta`, with the class's delta-apply function.

    The function gets `(previous, delta)` and returns the new observation; one that updates
    `previous` in place may return it or None. Without a function the delta replaces the
    observation (valid when the delta type is the space itself).

    Raises:
        TypeError: the function returned something else than the class's observation space.
    """
    apply_fn = actor_class.observation_delta_apply_fn
    if apply_fn is None:
        if actor_class.has_distinct_delta:
            raise TypeError(
                f"actor class {actor_class.id!r} declares a delta type but no delta_apply_fn"
            )
        return delta
    observation = apply_fn(previous, delta)
    if observation is None:
        return previous
    if not isinstance(observation, actor_class.observation_space):
        name = getattr(apply_fn, "__qualname__", repr(apply_fn))
        raise TypeError(
            f"the delta_apply_fn {name} of actor class {actor_class.id!r} returned "
            f"{type(observation).__name__}, expected "
            f"{actor_class.observation_space.DESCRIPTOR.full_name}"
        )
    return observation
