"""The servicer adapting a `cogment.LogExporter` subclass (served by `cogment.GrpcServer`).

It serves `cogment.LogExporter` (API 0.5) and cogment-py's `cogment.ext.DatalogTrials`
(how a trial ended). A trial's record may come in several Log streams (see
cogment/datalog/stream.py): one user instance per trial lives across them, samples already
given are not given again, and `trial_ended` comes with `EndTrial`, or at the end of the
only stream of an orchestrator that does not name its trials.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Callable, Optional

import grpc

from cogment.api import (
    common_pb2,
    data_pb2,
    data_pb2_grpc,
    datalog_ext_pb2,
    datalog_ext_pb2_grpc,
)
from cogment.datalog import stream
from cogment.datalog.samples import SampleDecoder, TrialLayout
from cogment.errors import DatalogError
from cogment.exporter import LogExporter
from cogment.protocol import WireError, params_from_proto, version_info
from cogment.settings import Settings

_LOG = logging.getLogger("cogment")
MAX_TRIALS = 10_000  # trials whose end never came are ended (oldest first) past this


class _Session:
    """One trial's user instance and the state of its decoding (under `lock`)."""

    __slots__ = ("decoder", "exporter", "last_tick", "lock")

    def __init__(self, exporter: LogExporter, decoder: SampleDecoder) -> None:
        self.exporter = exporter
        self.decoder = decoder
        self.last_tick = -1
        self.lock = threading.Lock()


class LogExporterServicer(data_pb2_grpc.LogExporterServicer):
    """Serves one `cogment.LogExporter` subclass, one instance per trial."""

    def __init__(
        self,
        exporter_type: type[LogExporter],
        settings: Settings,
        user_call: Callable[..., Any],
    ) -> None:
        self._type = exporter_type
        self._name = exporter_type.__name__
        self._settings = settings
        self._user_call = user_call
        self._sessions: collections.OrderedDict[str, _Session] = collections.OrderedDict()
        self._lock = threading.Lock()

    def Log(self, request_iterator: Any, context: Any) -> Any:
        named = stream.read_metadata(context.invocation_metadata())
        params: Optional[common_pb2.TrialParams] = None
        session: Optional[_Session] = None
        try:
            for message in request_iterator:
                if message.HasField("trial_params"):
                    params = message.trial_params
                    if named is not None:
                        session = self._session(named.trial_id, named.user_id, params)
                    continue
                sample = message.sample
                if session is None:
                    if params is None:
                        raise WireError(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            "a Log stream must begin with the trial's TrialParams",
                        )
                    session = self._session(sample.trial_id, sample.user_id, params)
                self._sample(session, sample)
        except WireError as error:
            context.abort(error.code, error.message)
        if named is None and session is not None:  # one stream, one trial
            self._end(session.exporter.trial_id, None)
        return data_pb2.LogReply()

    def EndTrial(self, request: Any, context: Any) -> Any:
        try:
            self._end(request.trial_id, request.reason)
        except WireError as error:
            context.abort(error.code, error.message)
        return datalog_ext_pb2.TrialLogEndReply()

    def Version(self, request: Any, context: Any) -> Any:
        return version_info(self._type.VERSIONS)

    # ------------------------------------------------------------------ helpers

    def _session(self, trial_id: str, user_id: str, params: common_pb2.TrialParams) -> _Session:
        with self._lock:
            session = self._sessions.get(trial_id)
        if session is not None:
            return session
        try:
            layout = TrialLayout(self._settings, params, trial_id)
            decoded = params_from_proto(params, self._settings)
        except (DatalogError, WireError) as error:
            raise WireError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
        exporter = self._user_call(self._name, "__init__", trial_id, self._type, trial_id, user_id)
        if not hasattr(exporter, "trial_id"):  # an __init__ that forgot super().__init__
            LogExporter.__init__(exporter, trial_id, user_id)
        session = _Session(exporter, SampleDecoder(layout, trial_id, user_id))
        with session.lock:
            with self._lock:
                existing = self._sessions.get(trial_id)
                if existing is not None:  # another stream of the trial got there first
                    return existing
                self._sessions[trial_id] = session
                evicted = []
                while len(self._sessions) > MAX_TRIALS:
                    evicted.append(self._sessions.popitem(last=False)[1])
            self._user_call(self._name, "trial_started", trial_id, exporter.trial_started, decoded)
        for old in evicted:
            try:
                self._finish(old)
            except WireError as error:
                _LOG.warning("%s: %s", self._name, error.message)
        return session

    def _sample(self, session: _Session, sample: data_pb2.DatalogSample) -> None:
        tick_id = sample.observations.tick_id
        with session.lock:
            if tick_id <= session.last_tick:
                return  # sent again after a broken stream: already given
            session.last_tick = tick_id
            try:
                decoded = session.decoder.decode(sample, tick_id)
            except DatalogError as error:
                raise WireError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
            exporter = session.exporter
            self._user_call(self._name, "sample", exporter.trial_id, exporter.sample, decoded)

    def _end(self, trial_id: str, reason: Optional[str]) -> None:
        with self._lock:
            session = self._sessions.pop(trial_id, None)
        if session is not None:
            session.exporter.end_reason = reason
            self._finish(session)

    def _finish(self, session: _Session) -> None:
        exporter = session.exporter
        with session.lock:
            self._user_call(self._name, "trial_ended", exporter.trial_id, exporter.trial_ended)


def add_log_exporter(servicer: LogExporterServicer, server: grpc.Server) -> None:
    """Adds both services of a LogExporter to `server`."""
    data_pb2_grpc.add_LogExporterServicer_to_server(servicer, server)
    datalog_ext_pb2_grpc.add_DatalogTrialsServicer_to_server(servicer, server)  # type: ignore[arg-type]
