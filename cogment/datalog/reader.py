"""Reading a datalog back: `open_datalog(path, cog_settings)`.

```python
with open_datalog("trials.db", cog_settings) as log:      # read-only; safe while trials run
    for trial in log.trials():
        for s in trial.samples():
            s.observations.driver[0], s.actions.pedestrian[1], s.rewards.driver[0]
        steps = trial.actor("driver", 0)                    # one actor's view, for a learner
    for s in log.follow(trial_id):                          # until that trial ends
        ...
```
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any, Optional, Union

from google.protobuf.message import DecodeError

from cogment.api import common_pb2, data_pb2
from cogment.errors import ConfigurationError, DatalogError
from cogment.hooks import TrialParameters

from . import store
from .samples import Sample, SampleDecoder, TrialLayout

FOLLOW_POLL = 0.05  # seconds between two looks at the store while following a trial
UNKNOWN_TRIAL = "{path}: no trial {trial_id!r} in this datalog"


def _time(ns: Optional[int]) -> Optional[datetime.datetime]:
    if ns is None:
        return None
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc)


@dataclasses.dataclass
class ActorSteps:
    """One actor's view of a trial, step by step (a step: a tick the actor acted on).

    Attributes:
        actor_class, index, actor_id: the actor (its index within its class, its id).
        tick_ids: the tick of each step.
        observations: the whole observation it acted on, at each step.
        actions: its action, at each step.
        rewards: the value of its reward for that tick (0.0 when it got none).
        done: True at the trial's last step, once the trial is over.
        final_observation: the observation the trial ended on (None while it runs).
    """

    actor_class: str
    index: int
    actor_id: int
    tick_ids: list[int] = dataclasses.field(default_factory=list)
    observations: list[Any] = dataclasses.field(default_factory=list)
    actions: list[Any] = dataclasses.field(default_factory=list)
    rewards: list[float] = dataclasses.field(default_factory=list)
    done: list[bool] = dataclasses.field(default_factory=list)
    final_observation: Any = None

    def __len__(self) -> int:
        return len(self.tick_ids)


class RecordedTrial:
    """A trial of the datalog, as it was when read (see `Datalog.trials`).

    Attributes:
        id, user_id: the trial's id and the id its starting client gave.
        params: its `cogment.TrialParameters` (after pre-trial hooks; configs decoded).
        raw_params: the same, as the `cogment.TrialParams` message.
        started_at, ended_at: UTC datetimes (ended_at None while it runs).
        running: no end is recorded yet (also the case of a trial whose orchestrator died).
        end_reason: why it ended (None while it runs); failed: whether a failure ended it.
        ticks: the ticks played (while it runs: the last tick recorded so far).
        samples_lost: samples the orchestrator made that the store does not hold.
        stored: the samples the store holds.
    """

    def __init__(self, log: Datalog, row: store.TrialRow) -> None:
        self._log = log
        self.id = row.trial_id
        self.user_id = row.user_id
        self.raw_params = common_pb2.TrialParams()
        try:
            self.raw_params.ParseFromString(row.params)
        except DecodeError as error:
            raise DatalogError(f"trial {row.trial_id}: unreadable parameters ({error})") from None
        self.started_at = _time(row.started_at)
        self.ended_at = _time(row.ended_at)
        self.running = row.running
        self.end_reason = row.end_reason
        self.failed = row.failed
        self.ticks = row.ticks if row.ticks is not None else (row.last_tick or 0)
        self.samples_lost = row.samples_lost
        self.stored = row.stored
        self._expected = row.samples
        self._params: Optional[TrialParameters] = None

    @property
    def params(self) -> TrialParameters:
        if self._params is None:
            self._log._need_settings()
            from cogment.errors import StatusError
            from cogment.protocol import params_from_proto

            try:
                self._params = params_from_proto(self.raw_params, self._log.settings)
            except StatusError as error:
                raise DatalogError(f"trial {self.id}: {error.message}") from None
        return self._params

    @property
    def complete(self) -> bool:
        """Whether the record is whole: the trial ended and every sample made is stored."""
        return not self.running and self.samples_lost == 0 and self._expected == self.stored

    @property
    def cut_short(self) -> bool:
        """Whether the trial ended but its record misses samples."""
        return not self.running and not self.complete

    @property
    def actor_counts(self) -> list[int]:
        """The number of actors of each class of the project, in cogment.yaml order."""
        return self._log._layout(self).actor_counts

    def raw_samples(self) -> Iterator[tuple[int, data_pb2.DatalogSample]]:
        """(tick id, `cogment.DatalogSample` as recorded) of every stored tick, in order."""
        for tick_id, _timestamp, data in store.read_samples(self._log._connection, self.id):
            yield tick_id, data_pb2.DatalogSample.FromString(data)

    def samples(self) -> Iterator[Sample]:
        """Every stored tick, decoded (see `Sample`), in order; late feedback about a tick
        is in that tick's rewards."""
        decoder = self._log._decoder(self)
        late = store.read_late_feedback(self._log._connection, self.id)
        for tick_id, sample in self.raw_samples():
            yield decoder.decode(sample, tick_id, late.get(tick_id, ()))

    def actor(self, actor_class: str, index: int = 0) -> ActorSteps:
        """One actor's steps: what it observed, did and got, tick by tick.

        Raises:
            DatalogError: the trial has no such actor.
        """
        layout = self._log._layout(self)
        actor_id = layout.actor_id(actor_class, index)
        steps = ActorSteps(actor_class, index, actor_id)
        for sample in self.samples():
            action = sample.actions[actor_id]
            observation = sample.observations[actor_id]
            if action is None:  # the last sample: what the trial ended on
                steps.final_observation = observation
                continue
            reward = sample.rewards[actor_id]
            steps.tick_ids.append(sample.tick_id)
            steps.observations.append(observation)
            steps.actions.append(action)
            steps.rewards.append(reward.value if reward is not None else 0.0)
            steps.done.append(False)
        if steps.done and not self.running:
            steps.done[-1] = True
        return steps

    def __repr__(self) -> str:
        state = "running" if self.running else f"ended: {self.end_reason}"
        return f"RecordedTrial({self.id!r}, {self.ticks} ticks, {state})"


class Datalog:
    """A datalog store opened for reading (see `open_datalog`)."""

    def __init__(self, path: Union[str, os.PathLike[str]], settings: Any = None) -> None:
        self.path = os.fspath(path)
        self.settings = settings
        self._connection = store.open_store(self.path, readonly=True)
        self._layouts: dict[str, TrialLayout] = {}

    def trials(self) -> list[RecordedTrial]:
        """Every trial of the store, the first started first."""
        return [RecordedTrial(self, row) for row in self._query(store.read_trials)]

    def trial(self, trial_id: str) -> RecordedTrial:
        """The trial `trial_id` (or the only one whose id starts with it).

        Raises:
            DatalogError: no such trial, or several start with `trial_id`.
        """
        row = self._query(store.read_trial, trial_id)
        if row is None:
            found = self._query(store.trial_ids_starting_with, trial_id) if trial_id else []
            if len(found) > 1:
                raise DatalogError(
                    f"{self.path}: several trials start with {trial_id!r}: {', '.join(found)}"
                )
            if found:
                row = self._query(store.read_trial, found[0])
        if row is None:
            raise DatalogError(UNKNOWN_TRIAL.format(path=self.path, trial_id=trial_id))
        return RecordedTrial(self, row)

    def follow(
        self, trial_id: str, timeout: Optional[float] = None, poll: float = FOLLOW_POLL
    ) -> Iterator[Sample]:
        """The samples of a trial as they are stored, in tick order, until its end is
        recorded (a trial not recorded yet is waited for).

        Args:
            trial_id: the trial to follow.
            timeout: stop with a DatalogError after that many seconds without a new sample
                (None: wait as long as the trial runs).
            poll: seconds between two looks at the store.

        Late feedback about a tick already given is not in it (`RecordedTrial.samples()`,
        once the trial ended, has it).
        """
        last_news = time.monotonic()
        row = None
        while row is None:
            row = self._query(store.read_trial, trial_id)
            if row is None:
                last_news = self._wait(trial_id, last_news, timeout, poll)
        trial = RecordedTrial(self, row)
        decoder = self._decoder(trial)
        last_tick = -1
        while True:
            running = self._query(store.read_trial, trial_id).running  # type: ignore[union-attr]
            found = False
            new = self._query(_samples_after, trial_id, last_tick)
            for tick_id, _timestamp, data in new:
                found = True
                last_tick = tick_id
                yield decoder.decode(data_pb2.DatalogSample.FromString(data), tick_id)
            if found:
                last_news = time.monotonic()
            elif not running:
                return  # nothing was stored after the end was recorded: it is all there
            else:
                last_news = self._wait(trial_id, last_news, timeout, poll)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Datalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Datalog({self.path!r})"

    # ------------------------------------------------------------------ helpers

    def _wait(self, trial_id: str, since: float, timeout: Optional[float], poll: float) -> float:
        if timeout is not None and time.monotonic() - since > timeout:
            raise DatalogError(f"{self.path}: nothing new from trial {trial_id} in {timeout:g} s")
        time.sleep(poll)
        return since

    def _query(self, read: Any, *args: Any) -> Any:
        try:
            return read(self._connection, *args)
        except sqlite3.Error as error:
            raise DatalogError(f"{self.path}: cannot read the datalog ({error})") from None

    def _need_settings(self) -> None:
        if self.settings is None:
            raise ConfigurationError(
                "decoding a trial needs the project's settings: open_datalog(path, cog_settings)"
            )

    def _layout(self, trial: RecordedTrial) -> TrialLayout:
        layout = self._layouts.get(trial.id)
        if layout is None:
            self._need_settings()
            layout = self._layouts[trial.id] = TrialLayout(
                self.settings, trial.raw_params, trial.id
            )
        return layout

    def _decoder(self, trial: RecordedTrial) -> SampleDecoder:
        return SampleDecoder(self._layout(trial), trial.id, trial.user_id)


def _samples_after(
    connection: sqlite3.Connection, trial_id: str, tick_id: int
) -> list[tuple[int, int, bytes]]:
    return list(store.read_samples(connection, trial_id, tick_id))


def open_datalog(path: Union[str, os.PathLike[str]], cog_settings: Any = None) -> Datalog:
    """Opens a datalog store for reading (read-only: safe while an orchestrator or
    `cogment datalog serve` writes it).

    Args:
        path: the SQLite file.
        cog_settings: the project's generated settings, to decode samples with its types
            (listing trials works without).

    Raises:
        DatalogError: no such file, not a datalog, or a datalog of a newer cogment.
    """
    return Datalog(path, cog_settings)
