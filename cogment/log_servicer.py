"""The servicer adapting a `cogment.LogExporter` subclass (served by `cogment.GrpcServer`).

It serves `cogment.LogExporter` (API 0.5) and cogment-py's `cogment.ext.DatalogTrials`
(how a trial ended). A trial's record may come in several Log streams (see
cogment/datalog/stream.py): one user instance per trial lives across them, samples already
given are not given again, and `trial_ended` comes with `EndTrial`, at the end of the only
stream of an orchestrator that does not name its trials, or once the trial's session has
been idle for the server's `idle_session_timeout` (its orchestrator is gone).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Callable, Optional

import grpc

from cogment.api import common_pb2, data_pb2, datalog_ext_pb2
from cogment.boundary import add_service, check_request, handler
from cogment.datalog import stream
from cogment.datalog.samples import SampleDecoder, TrialLayout
from cogment.errors import DatalogError, StatusError
from cogment.exporter import LogExporter
from cogment.protocol import params_from_proto, version_info
from cogment.sessions import Sessions
from cogment.settings import Settings

_LOG = logging.getLogger("cogment")
NO_PARAMS = "a Log stream must begin with the trial's TrialParams"
IDLE_TRIAL = (
    "{owner}: trial {trial_id} sent nothing for {limit:g} s (its orchestrator is gone?): ending it"
)


class _Session:
    """One trial's user instance and the state of its decoding (under `lock`)."""

    __slots__ = ("decoder", "exporter", "last_tick", "lock")

    def __init__(self, exporter: LogExporter, decoder: SampleDecoder) -> None:
        self.exporter = exporter
        self.decoder = decoder
        self.last_tick = -1
        self.lock = threading.Lock()


class LogExporterServicer:
    """Serves one `cogment.LogExporter` subclass, one instance per trial.

    Args:
        exporter_type: the user class.
        settings: the project's settings (samples are decoded with its types).
        user_call: calls user code, turning an exception into INTERNAL naming the call.
    """

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
        self._sessions: Sessions[str, _Session] = Sessions(
            unknown=lambda trial_id: f"trial {trial_id} is not being recorded here",
            duplicate=lambda trial_id: f"trial {trial_id} is recorded already",
        )
        self._opening = threading.Lock()  # one trial's instance is made once

    @property
    def session_count(self) -> int:
        """The trials whose record is being received."""
        return len(self._sessions)

    @handler
    def Log(self, request_iterator: Any, context: Any) -> Any:
        named = stream.read_metadata(context.invocation_metadata())
        params: Optional[common_pb2.TrialParams] = None
        trial_id: Optional[str] = None
        with contextlib.ExitStack() as in_use:
            session: Optional[_Session] = None
            for message in request_iterator:
                check_request(message)
                if message.HasField("trial_params"):
                    params = message.trial_params
                    if named is None or session is not None:
                        continue
                    trial_id, user_id = named.trial_id, named.user_id
                elif session is None:
                    if params is None:
                        raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, NO_PARAMS)
                    trial_id, user_id = message.sample.trial_id, message.sample.user_id
                if session is None and trial_id is not None and params is not None:
                    self._open(trial_id, user_id, params)
                    session = in_use.enter_context(self._sessions.use(trial_id))
                if session is not None and message.HasField("sample"):
                    self._sample(session, message.sample)
        if named is None and trial_id is not None:  # one stream, one trial: it ended
            self._end(trial_id, None)
        return data_pb2.LogReply()

    @handler
    def EndTrial(self, request: Any, context: Any) -> Any:
        self._end(request.trial_id, request.reason)
        return datalog_ext_pb2.TrialLogEndReply()

    @handler
    def Version(self, request: Any, context: Any) -> Any:
        return version_info(self._type.VERSIONS)

    def end_idle_sessions(self, limit: float) -> int:
        """Ends the trials nothing was received of for `limit` seconds; returns how many."""
        idle = self._sessions.pop_idle(limit)
        for trial_id, session in idle:
            _LOG.warning(IDLE_TRIAL.format(owner=self._name, trial_id=trial_id, limit=limit))
            with contextlib.suppress(StatusError):  # (logged by user_call)
                self._finish(session)
        return len(idle)

    # ------------------------------------------------------------------ helpers

    def _open(self, trial_id: str, user_id: str, params: common_pb2.TrialParams) -> None:
        """Makes the trial's instance and calls its `trial_started`, unless it has one."""
        with self._opening:
            try:
                self._sessions.check_new(trial_id)
            except StatusError:
                return  # another stream of the trial (or an earlier one) opened it
            try:
                layout = TrialLayout(self._settings, params, trial_id)
                decoded = params_from_proto(params, self._settings)
            except (DatalogError, StatusError) as error:
                raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
            exporter = self._user_call(
                self._name, "__init__", trial_id, self._type, trial_id, user_id
            )
            if not hasattr(exporter, "trial_id"):  # an __init__ that forgot super().__init__
                LogExporter.__init__(exporter, trial_id, user_id)
            self._user_call(self._name, "trial_started", trial_id, exporter.trial_started, decoded)
            decoder = SampleDecoder(layout, trial_id, user_id)
            self._sessions.add(trial_id, _Session(exporter, decoder))

    def _sample(self, session: _Session, sample: data_pb2.DatalogSample) -> None:
        tick_id = sample.observations.tick_id
        with session.lock:
            if tick_id <= session.last_tick:
                return  # sent again after a broken stream: given already
            try:
                decoded = session.decoder.decode(sample, tick_id)
            except DatalogError as error:
                raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
            session.last_tick = tick_id
            exporter = session.exporter
            self._user_call(self._name, "sample", exporter.trial_id, exporter.sample, decoded)

    def _end(self, trial_id: str, reason: Optional[str]) -> None:
        try:
            session = self._sessions.pop(trial_id)
        except StatusError:
            return  # a trial nothing was received of (it failed before its first tick)
        session.exporter.end_reason = reason
        self._finish(session)

    def _finish(self, session: _Session) -> None:
        exporter = session.exporter
        with session.lock:
            self._user_call(self._name, "trial_ended", exporter.trial_id, exporter.trial_ended)


def add_log_exporter(servicer: LogExporterServicer, server: grpc.Server) -> None:
    """Adds both services of a LogExporter to `server`."""
    add_service(server, data_pb2.DESCRIPTOR.services_by_name["LogExporter"], servicer)
    add_service(server, datalog_ext_pb2.DESCRIPTOR.services_by_name["DatalogTrials"], servicer)
