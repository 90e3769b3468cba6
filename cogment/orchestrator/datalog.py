"""A trial's record streamed to a LogExporter: its TrialParams first, then one sample a tick.

Best effort: a datalog failure is logged once and never affects the trial.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Optional

from cogment.api import agent_pb2, common_pb2, data_pb2, environment_pb2
from cogment.constants import ENVIRONMENT_ID

log = logging.getLogger("cogment.orchestrator")

MAX_QUEUED = 10_000  # samples waiting for a slow exporter before we start dropping


class DatalogStream:
    """The client stream of one trial to its LogExporter."""

    def __init__(self, stub: Any, trial_id: str, user_id: str, endpoint: str) -> None:
        self._stub = stub
        self._trial_id = trial_id
        self._user_id = user_id
        self._endpoint = endpoint
        self._queue: asyncio.Queue[Optional[data_pb2.DatalogMsg]] = asyncio.Queue()
        self._task: Optional[asyncio.Task[None]] = None
        self._failed = False
        self._dropped = 0

    def open(self, params: common_pb2.TrialParams) -> None:
        """Starts the stream with the trial's parameters."""
        self._queue.put_nowait(data_pb2.DatalogMsg(trial_params=params))
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _requests(self) -> AsyncIterator[data_pb2.DatalogMsg]:
        while True:
            message = await self._queue.get()
            if message is None:
                return
            yield message

    async def _run(self) -> None:
        try:
            await self._stub.Log(self._requests())
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._failed = True
            log.warning(
                "trial %s: datalog %s failed: %s", self._trial_id, self._endpoint, _brief(error)
            )

    def write(self, sample: data_pb2.DatalogSample) -> None:
        """Queues one sample (dropped when the exporter failed or lags too far behind)."""
        if self._failed or self._task is None:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            self._dropped += 1
            if self._dropped == 1:
                log.warning(
                    "trial %s: datalog %s lags, dropping samples", self._trial_id, self._endpoint
                )
            return
        self._queue.put_nowait(data_pb2.DatalogMsg(sample=sample))

    def tick(
        self,
        obs_set: environment_pb2.ObservationSet,
        actions: Sequence[bytes],
        rewards: dict[int, agent_pb2.Reward],
        routed: Optional[dict[int, list[common_pb2.Message]]],
        late: Sequence[common_pb2.Feedback],
    ) -> None:
        """The sample of a tick: its observations, actions, rewards and messages."""
        if self._failed:
            return
        n_actors = len(actions)
        self.write(
            make_sample(
                self._trial_id, self._user_id, obs_set, actions, rewards, routed, late, n_actors
            )
        )

    def last(self, obs_set: environment_pb2.ObservationSet) -> None:
        """The last sample: the observations the trial ended on, nothing else."""
        self.write(make_sample(self._trial_id, self._user_id, obs_set, (), {}, None, (), 0))

    async def close(self, timeout: float) -> None:
        """Ends the stream and waits (at most `timeout` s) for the exporter to answer."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        if not done:
            self._task.cancel()
            log.warning(
                "trial %s: datalog %s did not finish in time", self._trial_id, self._endpoint
            )


def _brief(error: BaseException) -> str:
    code = getattr(error, "code", None)
    details = getattr(error, "details", None)
    if callable(code) and callable(details):
        return f"{code().name}: {details()}"
    return repr(error)


def make_sample(
    trial_id: str,
    user_id: str,
    obs_set: environment_pb2.ObservationSet,
    actions: Sequence[bytes],
    rewards: dict[int, agent_pb2.Reward],
    routed: Optional[dict[int, list[common_pb2.Message]]],
    late: Sequence[common_pb2.Feedback],
    n_actors: int,
) -> data_pb2.DatalogSample:
    """One tick's sample: its observations, actions and rewards by actor id (late feedback
    rides along in the feedbacks of its target's reward, without changing its value), and
    the messages delivered by receiver: one collection per actor id, then the environment's.
    """
    sample = data_pb2.DatalogSample(
        trial_id=trial_id,
        observations=obs_set,
        actions=[common_pb2.Action(content=a) for a in actions],
        user_id=user_id,
        timestamp=obs_set.timestamp,
    )
    for actor_id in range(n_actors):
        entry = sample.rewards.add()
        reward = rewards.get(actor_id)
        if reward is not None:
            entry.CopyFrom(reward)
    for feedback in late:
        sample.rewards[feedback.actor_id].feedbacks.append(feedback)
    if routed:
        for receiver in [*range(n_actors), ENVIRONMENT_ID]:
            sample.messages.add().messages.extend(routed.get(receiver, ()))
    return sample
