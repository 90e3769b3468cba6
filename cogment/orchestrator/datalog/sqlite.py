"""Recording into a SQLite store written by the orchestrator (`datalog: {type: sqlite}`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Optional

from cogment.api import common_pb2, datalog_ext_pb2
from cogment.datalog import store
from cogment.datalog.writer import StoreWriter
from cogment.errors import ConfigurationError, DatalogError
from cogment.settings import DatalogSettings

from .. import wire
from .interface import Fail, TrialRecording
from .samples import Recording, late_rows

log = logging.getLogger("cogment.orchestrator")


class SqliteRecorder:
    """Writes every trial into the SQLite store of `settings.path` (one writer thread)."""

    def __init__(self, settings: DatalogSettings, response_timeout: float) -> None:
        self.settings = settings
        self.where = settings.where
        self._timeout = response_timeout
        self._writer: Optional[StoreWriter] = None

    async def open(self) -> None:
        try:
            self._writer = StoreWriter(
                self.settings.path, self.settings.max_queue_bytes, busy_patience=self._timeout
            )
        except DatalogError as error:
            raise ConfigurationError(f"datalog: {error}") from None

    def trial(
        self, trial_id: str, user_id: str, params: common_pb2.TrialParams, fail: Fail
    ) -> TrialRecording:
        assert self._writer is not None, "open() the recorder first"
        return _SqliteTrial(self, self._writer, trial_id, user_id, params, fail)

    def pending(self) -> int:
        return self._writer.queued if self._writer is not None else 0

    async def close(self, timeout: float) -> None:
        if self._writer is not None and not await self._writer.close(timeout):
            log.warning(
                "datalog %s: %d writes were left undone after %g s",
                self.where,
                self._writer.queued,
                timeout,
            )


class _SqliteTrial(Recording):
    def __init__(
        self,
        recorder: SqliteRecorder,
        writer: StoreWriter,
        trial_id: str,
        user_id: str,
        params: common_pb2.TrialParams,
        fail: Fail,
    ) -> None:
        super().__init__(
            recorder.where,
            recorder.settings,
            writer.budget,
            recorder._timeout,
            trial_id,
            user_id,
            params,
            fail,
        )
        self._writer = writer
        begin = store.TrialBegin(trial_id, user_id, params.SerializeToString(), store.now_ns())
        self._writer.submit(begin, self._written)

    def _written(self, error: Optional[BaseException]) -> None:
        if error is not None:
            self.broken(str(error))

    def _sample_written(self, error: Optional[BaseException]) -> None:
        if error is None:
            self.stored += 1
        else:
            self.broken(str(error))

    def _queue(
        self,
        tick_id: int,
        timestamp: int,
        parts: list[wire.Bytes],
        size: int,
        late: Sequence[common_pb2.Feedback],
    ) -> None:
        rows = late_rows(late) if late else ()
        row = store.SampleRow(self.trial_id, tick_id, timestamp, parts, rows, size)
        self._writer.submit(row, self._sample_written)

    def _ended(self, end: datalog_ext_pb2.TrialLogEnd) -> None:
        row = store.TrialEnd(
            end.trial_id, end.timestamp, end.reason, end.failed, end.ticks, end.samples
        )
        self._writer.submit(row, self._end_written)

    def _end_written(self, error: Optional[BaseException]) -> None:
        self._lost()
        if error is not None:
            log.warning(
                "trial %s: datalog %s: its end was not recorded: %s",
                self.trial_id,
                self._where,
                error,
            )
