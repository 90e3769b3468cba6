"""What cogment-py adds to a `cogment.LogExporter/Log` stream, for both of its ends.

API 0.5 streams a trial's TrialParams, then its samples. cogment-py's orchestrator also
names the trial in the stream's initial metadata, may take several streams for one trial
(each begins with the TrialParams; a sample may come again), and tells how the trial ended
with `cogment.ext.DatalogTrials/EndTrial` once every stream of it was answered (see
cogment/api/datalog_ext.proto). A sample is identified within its trial by the tick id of
its ObservationSet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Optional

from cogment.api import data_pb2

TRIAL_ID = "trial-id"
USER_ID = "user-id"
STARTED_AT = "trial-started-at"
LOG_METHOD = "/cogment.LogExporter/Log"


class StreamTrial(NamedTuple):
    """The trial a Log stream's metadata names."""

    trial_id: str
    user_id: str
    started_at: int  # nanoseconds since the epoch


def metadata(trial_id: str, user_id: str, started_at: int) -> tuple[tuple[str, str], ...]:
    """The initial metadata of a trial's Log streams."""
    return ((TRIAL_ID, trial_id), (USER_ID, user_id), (STARTED_AT, str(started_at)))


def read_metadata(pairs: Optional[Iterable[Any]]) -> Optional[StreamTrial]:
    """The trial named by a Log stream's metadata; None for another orchestrator's stream."""
    found: dict[str, str] = {}
    for key, value in pairs or ():
        if key in (TRIAL_ID, USER_ID, STARTED_AT):
            found[key] = value if isinstance(value, str) else value.decode()
    if not found.get(TRIAL_ID):
        return None
    try:
        started_at = int(found.get(STARTED_AT, "0"))
    except ValueError:
        started_at = 0
    return StreamTrial(found[TRIAL_ID], found.get(USER_ID, ""), started_at)


def late_feedback(sample: data_pb2.DatalogSample, tick_id: int) -> list[tuple[int, bytes]]:
    """The feedbacks a sample carries about an earlier tick: (that tick, Feedback bytes)."""
    found = []
    for reward in sample.rewards:
        for feedback in reward.feedbacks:
            if 0 <= feedback.tick_id < tick_id:
                found.append((feedback.tick_id, feedback.SerializeToString()))
    return found
