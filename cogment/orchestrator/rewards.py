"""Feedback → Reward: combining what env, agents and clients said about (actor, tick).

value = Σ(value·confidence)/Σ(confidence) over the feedbacks with confidence > 0,
confidence = that Σ(confidence), feedbacks = every feedback, in arrival order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cogment.api import agent_pb2, common_pb2

from .checks import feedback_problem


def combine(feedbacks: Sequence[common_pb2.Feedback]) -> agent_pb2.Reward:
    """The Reward made of `feedbacks` (all for the same actor and tick)."""
    weighted = 0.0
    confidence = 0.0
    for feedback in feedbacks:
        if feedback.confidence > 0:
            weighted += feedback.value * feedback.confidence
            confidence += feedback.confidence
    value = weighted / confidence if confidence > 0 else 0.0
    return agent_pb2.Reward(value=value, confidence=confidence, feedbacks=feedbacks)


def by_target(feedbacks: Iterable[common_pb2.Feedback]) -> dict[int, agent_pb2.Reward]:
    """One Reward per target actor id, for the feedbacks of one tick."""
    grouped: dict[int, list[common_pb2.Feedback]] = {}
    for feedback in feedbacks:
        grouped.setdefault(feedback.actor_id, []).append(feedback)
    return {actor_id: combine(group) for actor_id, group in grouped.items()}


class FeedbackBook:
    """Feedback waiting for its tick's rewards to be computed, and late feedback.

    `tick` is the first tick whose rewards are not computed yet; feedback for an earlier
    tick is late: it reaches the datalog only (`take_late`).
    """

    __slots__ = ("_class_index", "_keep_late", "_late", "_n_actors", "_pending", "tick")

    def __init__(self, class_index: Sequence[int], keep_late: bool) -> None:
        self._n_actors = len(class_index)
        self._class_index = class_index  # per actor id: its index within its class
        self._keep_late = keep_late
        self._pending: dict[int, list[common_pb2.Feedback]] = {}
        self._late: list[common_pb2.Feedback] = []
        self.tick = 0

    def add(self, feedbacks: Iterable[common_pb2.Feedback], default_tick: int) -> int:
        """Files feedbacks; tick_id -1 means `default_tick`. Returns how many were dropped
        (see `checks.feedback_problem`: an unknown target, a value or confidence that is not
        a finite number)."""
        dropped = 0
        for feedback in feedbacks:
            if feedback_problem(feedback, self._n_actors) is not None:
                dropped += 1
                continue
            tick = feedback.tick_id
            if tick < 0:
                tick = default_tick
                feedback.tick_id = tick
            feedback.agent_id = self._class_index[feedback.actor_id]
            if tick < self.tick:
                if self._keep_late:
                    self._late.append(feedback)
            else:
                self._pending.setdefault(tick, []).append(feedback)
        return dropped

    def close_tick(self) -> dict[int, agent_pb2.Reward]:
        """The rewards of `tick` by target actor id (none for actors without feedback);
        from now on feedback for it is late."""
        feedbacks = self._pending.pop(self.tick, None)
        self.tick += 1
        return by_target(feedbacks) if feedbacks else {}

    def close_all(self) -> list[tuple[int, dict[int, agent_pb2.Reward]]]:
        """The rewards of every tick with feedback still pending (the trial is over), in tick
        order: (tick, rewards by target actor id)."""
        pending, self._pending = self._pending, {}
        return [(tick, by_target(pending[tick])) for tick in sorted(pending)]

    def take_late(self) -> list[common_pb2.Feedback]:
        late, self._late = self._late, []
        return late
