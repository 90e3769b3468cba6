"""The statuses the orchestrator answers with, and their messages (the client maps them).

Every one is a `cogment.errors.StatusError`; `cogment.boundary` ends the call with it.
"""

from __future__ import annotations

import grpc

from cogment.errors import TRIAL_ABORTED, StatusError  # trial-end wordings shared with the client

NO_ACTOR = "trial {trial_id}: no actor {actor_id}"
NOT_HUMAN = "trial {trial_id}: actor {actor_id} is not a human slot (its endpoint is {endpoint})"
ALREADY_JOINED = "trial {trial_id}: actor {actor_id} is already joined"
NOT_JOINED = "trial {trial_id}: actor {actor_id} has not been joined (call Join first)"
ACTION_PENDING = "trial {trial_id}: actor {actor_id} already has an action pending"
BAD_ACTION = (
    "trial {trial_id}: actor {actor_id}: the action does not parse as {type_name} "
    "(the action space of actor class {class_id!r})"
)
BAD_TRIAL_CONFIG = "the trial config does not parse as {type_name}"
SHUTTING_DOWN = "the orchestrator is shutting down"


def not_found(message: str) -> StatusError:
    return StatusError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> StatusError:
    return StatusError(grpc.StatusCode.FAILED_PRECONDITION, message)


def invalid_argument(message: str) -> StatusError:
    return StatusError(grpc.StatusCode.INVALID_ARGUMENT, message)


def unavailable(message: str) -> StatusError:
    return StatusError(grpc.StatusCode.UNAVAILABLE, message)


def aborted(trial_id: str, reason: str) -> StatusError:
    return StatusError(
        grpc.StatusCode.ABORTED, TRIAL_ABORTED.format(trial_id=trial_id, reason=reason)
    )
