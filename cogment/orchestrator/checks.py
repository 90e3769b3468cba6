"""What the orchestrator checks in the feedback and messages it is sent: a client's are
refused with INVALID_ARGUMENT naming the field; a service's are dropped and logged."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

from cogment.api import common_pb2
from cogment.constants import CURRENT_TICK, ENVIRONMENT_ID

from .status import invalid_argument


def feedback_problem(feedback: common_pb2.Feedback, n_actors: int) -> Optional[str]:
    """What is wrong with a feedback for a trial of `n_actors` actors (None: nothing)."""
    if not 0 <= feedback.actor_id < n_actors:
        return f"actor_id: no actor {feedback.actor_id} (actor ids are 0..{n_actors - 1})"
    if not math.isfinite(feedback.value):
        return f"value: {feedback.value} is not a finite number"
    if not (math.isfinite(feedback.confidence) and feedback.confidence >= 0):
        return f"confidence: {feedback.confidence} is not a finite number >= 0"
    if feedback.tick_id < CURRENT_TICK:
        return f"tick_id: {feedback.tick_id} is neither a tick nor -1 (the current tick)"
    return None


def message_problem(message: common_pb2.Message, n_actors: int) -> Optional[str]:
    """What is wrong with a message for a trial of `n_actors` actors (None: nothing)."""
    receiver = message.receiver_id
    if receiver != ENVIRONMENT_ID and not 0 <= receiver < n_actors:
        return (
            f"receiver_id: no receiver {receiver} (actor ids are 0..{n_actors - 1}, "
            f"{ENVIRONMENT_ID} is the environment)"
        )
    return None


def check_feedbacks(trial_id: str, feedbacks: Sequence[common_pb2.Feedback], n_actors: int) -> None:
    """Refuses a client's feedbacks when one is wrong (INVALID_ARGUMENT naming it)."""
    for i, feedback in enumerate(feedbacks):
        problem = feedback_problem(feedback, n_actors)
        if problem:
            raise invalid_argument(f"trial {trial_id}: feedbacks[{i}].{problem}")


def check_messages(trial_id: str, messages: Sequence[common_pb2.Message], n_actors: int) -> None:
    """Refuses a client's messages when one is wrong (INVALID_ARGUMENT naming it)."""
    for i, message in enumerate(messages):
        problem = message_problem(message, n_actors)
        if problem:
            raise invalid_argument(f"trial {trial_id}: messages[{i}].{problem}")
