"""Recording through a LogExporter service (`datalog: {type: grpc, url: ...}`): one task a
trial streams its samples, reopens a broken stream and tells how the trial ended."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence
from typing import Any, Optional

import grpc

from cogment.api import common_pb2, datalog_ext_pb2
from cogment.datalog import store
from cogment.datalog import stream as log_stream
from cogment.datalog.budget import ByteBudget
from cogment.settings import DatalogSettings

from .. import wire
from ..endpoints import Endpoints
from .interface import Fail, TrialRecording
from .samples import Recording, brief

log = logging.getLogger("cogment.orchestrator")

SEGMENT_BYTES = 4 * 1024 * 1024  # a Log stream is closed (its samples confirmed) past this
SEGMENT_IDLE = 0.5  # seconds: a Log stream with nothing new to send is closed
# Seconds a stream lets samples pile up before it writes them: written back to back, a
# sample costs several times less CPU than written alone (one per tick).
LINGER = 0.02
RETRY_PAUSE = (0.05, 1.0)  # seconds between two attempts at a broken stream: first, at most
END_PATIENCE = 10.0  # seconds (at least) to tell an exporter how a trial ended
CORE_ERROR = "Internal error from Core"
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)


def _transient(error: BaseException) -> bool:
    """Whether a failed stream is worth opening again: the exporter is away or busy, or the
    stream broke (a write on a stream the peer reset fails with gRPC core's own INTERNAL)."""
    if isinstance(error, asyncio.TimeoutError):
        return True
    if not isinstance(error, grpc.aio.AioRpcError):
        return False
    code = error.code()
    return code in TRANSIENT or (code == grpc.StatusCode.INTERNAL and error.details() == CORE_ERROR)


class GrpcRecorder:
    """Streams every trial to the LogExporter at `settings.url`."""

    def __init__(
        self, settings: DatalogSettings, endpoints: Endpoints, response_timeout: float
    ) -> None:
        self.settings = settings
        self.where = settings.url
        self.endpoints = endpoints
        self.timeout = response_timeout
        self.budget = ByteBudget(settings.max_queue_bytes)
        self.trials: set[_GrpcTrial] = set()
        self.knows_end = True  # the exporter serves cogment.ext.DatalogTrials (until refused)

    async def open(self) -> None:
        pass

    def trial(
        self, trial_id: str, user_id: str, params: common_pb2.TrialParams, fail: Fail
    ) -> TrialRecording:
        recording = _GrpcTrial(self, trial_id, user_id, params, fail)
        self.trials.add(recording)
        return recording

    def pending(self) -> int:
        return sum(len(t.pending) for t in self.trials)

    async def close(self, timeout: float) -> None:
        tasks = {t.task for t in self.trials}
        if not tasks:
            return
        _done, late = await asyncio.wait(tasks, timeout=timeout)
        if late:
            log.warning(
                "datalog %s: %d trial(s) still being sent after %g s: %d samples not stored",
                self.where,
                len(late),
                timeout,
                self.pending(),
            )
            for task in late:
                task.cancel()
            await asyncio.wait(late, timeout=1.0)


class _GrpcTrial(Recording):
    def __init__(
        self,
        recorder: GrpcRecorder,
        trial_id: str,
        user_id: str,
        params: common_pb2.TrialParams,
        fail: Fail,
    ) -> None:
        super().__init__(
            recorder.where,
            recorder.settings,
            recorder.budget,
            recorder.timeout,
            trial_id,
            user_id,
            params,
            fail,
        )
        self._recorder = recorder
        endpoint = recorder.settings.url
        self._channel = recorder.endpoints.channel(endpoint)
        self._log = recorder.endpoints.datalog_log(endpoint)
        self._metadata = log_stream.metadata(trial_id, user_id, store.now_ns())
        params_bytes = params.SerializeToString()
        self._params_message = b"\x0a" + wire.varint(len(params_bytes)) + params_bytes
        self.pending: collections.deque[tuple[bytes, int]] = collections.deque()
        self._changed = asyncio.Event()
        self._end: Optional[datalog_ext_pb2.TrialLogEnd] = None
        self._unsubscribe = recorder.budget.on_pressure(self._changed.set)
        loop = asyncio.get_running_loop()
        self._streamer = loop.create_task(self._stream(), name=f"datalog {trial_id}")
        self.task = loop.create_task(self._run(), name=f"datalog end {trial_id}")

    # ------------------------------------------------------------------ the trial's side

    def _queue(
        self,
        tick_id: int,
        timestamp: int,
        parts: list[wire.Bytes],
        size: int,
        late: Sequence[common_pb2.Feedback],
    ) -> None:
        message = b"".join((b"\x12", wire.varint(size), *parts))  # a DatalogMsg's sample
        self.pending.append((message, len(message)))
        self._budget.take(len(message))
        self._changed.set()

    def _ended(self, end: datalog_ext_pb2.TrialLogEnd) -> None:
        self._end = end
        self._changed.set()

    def _drop(self) -> None:
        self._budget.release(sum(size for _, size in self.pending))
        self.pending.clear()
        if self._streamer is not asyncio.current_task():
            self._streamer.cancel()

    # ------------------------------------------------------------------ the stream's side

    async def _run(self) -> None:
        """Streams the samples, then tells the exporter how the trial ended."""
        try:
            try:
                await self._streamer
            except asyncio.CancelledError:
                if self.failure is None:  # not given up: the orchestrator stops
                    raise
            while self._end is None:
                self._changed.clear()
                await self._changed.wait()
            self._lost()
            await self._send_end(self._end)
        finally:
            self._drop()
            self._unsubscribe()
            self._recorder.trials.discard(self)

    async def _stream(self) -> None:
        """Sends every sample until the trial is over and all are confirmed."""
        loop = asyncio.get_running_loop()
        failing_since: Optional[float] = None  # when the attempts began to fail
        pause = RETRY_PAUSE[0]
        while True:
            if not self.pending:
                if self._end is not None:
                    return
                self._changed.clear()
                await self._changed.wait()
                continue
            attempt = loop.time()
            patience = self._timeout - (attempt - failing_since if failing_since else 0.0)
            try:
                await self._segment(patience)
                failing_since, pause = None, RETRY_PAUSE[0]
            except Exception as error:  # a broken stream, an exporter away, or a bug
                transient = _transient(error)
                if failing_since is None:
                    failing_since = attempt
                    if transient:
                        log.info(
                            "trial %s: datalog %s: %s; sending again what is not confirmed",
                            self.trial_id,
                            self._where,
                            brief(error),
                        )
                if not transient or loop.time() - failing_since >= self._timeout:
                    self.broken(brief(error))
                    return
                await asyncio.sleep(pause)  # pace the attempts at a service that answers
                pause = min(pause * 2, RETRY_PAUSE[1])

    async def _segment(self, patience: float) -> None:
        """One Log stream: the trial's params, then its unconfirmed samples and new ones,
        until the trial is over, the stream holds SEGMENT_BYTES, producers wait for room,
        or nothing new came for SEGMENT_IDLE s; its answer confirms what it carried."""
        await asyncio.wait_for(self._channel.channel_ready(), max(patience, 0.0))
        call = self._log(metadata=self._metadata, wait_for_ready=True)
        sent = 0
        try:
            sent = await self._write(call)
            await call.done_writing()
        except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
            pass  # the call is over (a failed write says little): awaiting it raises why
        await asyncio.wait_for(call, self._timeout)  # answered once all of it is stored
        released = 0
        for _ in range(sent):
            released += self.pending.popleft()[1]
        self.stored += sent
        self._budget.release(released)

    async def _write(self, call: Any) -> int:
        """Writes on `call` until it should be closed (see `_segment`); returns how many
        samples it carries."""
        await call.write(self._params_message)
        sent = sent_bytes = 0
        while True:
            while sent < len(self.pending) and sent_bytes < SEGMENT_BYTES:
                message, size = self.pending[sent]
                await call.write(message)
                sent += 1
                sent_bytes += size
            if sent_bytes >= SEGMENT_BYTES or (self._end is not None and sent == len(self.pending)):
                return sent
            if self._budget.waiting and sent:
                return sent  # confirm what this stream holds, so that it can be released
            self._changed.clear()
            if sent < len(self.pending):
                continue
            try:
                await asyncio.wait_for(self._changed.wait(), SEGMENT_IDLE)
            except asyncio.TimeoutError:
                return sent  # idle: confirm what was sent
            if self._end is None and not self._budget.waiting:
                await asyncio.sleep(LINGER)  # let a few samples pile up: written back to back

    async def _send_end(self, end: datalog_ext_pb2.TrialLogEnd) -> None:
        if not self._recorder.knows_end:
            return
        stub = self._recorder.endpoints.datalog_ext(self._recorder.settings.url)
        try:
            patience = max(self._timeout, END_PATIENCE)  # off every trial's path
            await stub.EndTrial(end, timeout=patience, wait_for_ready=True)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._recorder.knows_end = False  # an exporter of API 0.5 only
                return
            log.warning(
                "trial %s: datalog %s: its end was not recorded: %s",
                self.trial_id,
                self._where,
                brief(error),
            )
