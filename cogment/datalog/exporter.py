"""`cogment datalog serve`: a LogExporter service writing every trial into a SQLite store.

Several orchestrators (on several machines) can record into one store through it. It is a
grpc.aio server (one event loop, whatever the number of streams) feeding the store's writer
thread: a stream reads its next message only while the writer's queue has room, so a slow
disk slows the orchestrators down (through gRPC flow control) and loses nothing; a Log
stream is answered once everything it carried is written, which is what the orchestrator
takes as confirmation. Samples are written as they arrived (not re-encoded), keyed by trial
id and tick: one sent again is stored once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Optional, Union

import grpc
from google.protobuf.message import DecodeError

from cogment.api import data_pb2, datalog_ext_pb2
from cogment.boundary import add_service, async_handler
from cogment.constants import DEFAULT_MAX_MESSAGE_MB, message_size_options
from cogment.errors import ConfigurationError, DatalogError, StatusError
from cogment.protocol import version_info
from cogment.settings import DEFAULT_MAX_QUEUE_BYTES
from cogment.tls import FilePath, add_port, server_credentials

from . import store, stream
from .writer import StoreWriter

log = logging.getLogger("cogment.datalog")

_NO_REUSEPORT = ("grpc.so_reuseport", 0)  # a port in use is an error, not a shared port
ROOM_TIMEOUT = 60.0  # seconds a stream waits for the store to take its samples, at most
FOREIGN_END = "its Log stream ended (the orchestrator does not say how trials end)"


class _StreamWrites:
    """The writes of one Log stream, to answer it once all are done."""

    def __init__(self) -> None:
        self.left = 0
        self.error: Optional[BaseException] = None
        self._done: Optional[asyncio.Future[None]] = None

    def written(self, error: Optional[BaseException]) -> None:
        self.left -= 1
        if error is not None and self.error is None:
            self.error = error
        if self.left == 0 and self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def all_done(self) -> None:
        if self.left:
            self._done = asyncio.get_running_loop().create_future()
            await self._done


class StoreExporter:
    """`cogment.LogExporter` (Log) and `cogment.ext.DatalogTrials` (EndTrial) into a store."""

    def __init__(self, writer: StoreWriter, room_timeout: float = ROOM_TIMEOUT) -> None:
        self.writer = writer
        self.room_timeout = room_timeout
        self.stored = 0  # samples written (for whoever measures)

    def _counted(self, writes: _StreamWrites) -> Any:
        def done(error: Optional[BaseException]) -> None:
            if error is None:
                self.stored += 1
            writes.written(error)

        return done

    @async_handler
    async def Log(self, request_iterator: Any, context: Any) -> data_pb2.LogReply:
        named = stream.read_metadata(context.invocation_metadata())
        writes = _StreamWrites()
        params = b""
        trial: Optional[stream.StreamTrial] = named
        begun = False
        last_tick = -1
        count = 0
        async for raw in request_iterator:
            try:
                message = data_pb2.DatalogMsg.FromString(raw)
            except DecodeError as error:
                raise StatusError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"not a cogment.DatalogMsg: {error}"
                ) from None
            if message.HasField("trial_params"):
                params = message.trial_params.SerializeToString()
                if trial is not None and not begun:
                    self._submit(writes, _begin(trial, params))
                    begun = True
                continue
            if not message.HasField("sample"):
                continue
            sample = message.sample
            if trial is None:  # another orchestrator: the samples name the trial
                trial = stream.StreamTrial(sample.trial_id, sample.user_id, store.now_ns())
            if not begun:
                self._submit(writes, _begin(trial, params))
                begun = True
            tick = sample.observations.tick_id
            if named is None and tick <= last_tick:
                tick = last_tick + 1  # its ObservationSets lack tick ids: number them
            last_tick = tick
            count += 1
            row = store.SampleRow(
                trial.trial_id,
                tick,
                sample.timestamp or sample.observations.timestamp,
                _sample_bytes(raw, sample),
                stream.late_feedback(sample, tick),
            )
            writes.left += 1
            self.writer.submit(row, self._counted(writes))
            if self.writer.budget.spent and not await self.writer.budget.room(self.room_timeout):
                raise StatusError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"datalog {self.writer.path}: the store took nothing for "
                    f"{self.room_timeout:g} s",
                )
        if named is None and trial is not None:  # one stream, one trial: it ended
            end = store.TrialEnd(
                trial.trial_id, store.now_ns(), FOREIGN_END, False, max(last_tick, 0), count
            )
            self._submit(writes, end)
        await writes.all_done()
        if writes.error is not None:
            raise StatusError(
                grpc.StatusCode.UNAVAILABLE, f"datalog {self.writer.path}: {writes.error}"
            )
        return data_pb2.LogReply()

    @async_handler
    async def EndTrial(self, request: Any, context: Any) -> Any:
        writes = _StreamWrites()
        end = store.TrialEnd(
            request.trial_id,
            request.timestamp or store.now_ns(),
            request.reason,
            request.failed,
            request.ticks,
            request.samples,
        )
        self._submit(writes, end)
        await writes.all_done()
        if writes.error is not None:
            raise StatusError(
                grpc.StatusCode.UNAVAILABLE, f"datalog {self.writer.path}: {writes.error}"
            )
        return datalog_ext_pb2.TrialLogEndReply()

    @async_handler
    async def Version(self, request: Any, context: Any) -> Any:
        return version_info({"cogment-datalog-store": str(store.SCHEMA_VERSION)})

    def _submit(self, writes: _StreamWrites, operation: store.Operation) -> None:
        writes.left += 1
        self.writer.submit(operation, writes.written)


def _begin(trial: stream.StreamTrial, params: bytes) -> store.TrialBegin:
    return store.TrialBegin(
        trial.trial_id, trial.user_id, params, trial.started_at or store.now_ns()
    )


def _sample_bytes(raw: bytes, sample: data_pb2.DatalogSample) -> bytes:
    """The sample's bytes as sent: sliced out of the DatalogMsg when it holds only them."""
    if raw[:1] == b"\x12":
        size, shift, pos = 0, 0, 1
        while pos < len(raw) and pos <= 10:
            byte = raw[pos]
            size |= (byte & 0x7F) << shift
            pos += 1
            if byte < 0x80:
                if pos + size == len(raw):
                    return raw[pos:]
                break
            shift += 7
    return sample.SerializeToString()


class DatalogServer:
    """`cogment datalog serve` as an object: a grpc.aio server writing into `path`.

    Args:
        path: the SQLite file (created when missing).
        max_queue_bytes: the bytes of samples waiting to be written before streams wait.
        max_message_mb: the largest message accepted, in MiB (a sample carries every
            distinct observation of its tick); None: no limit.
        tls_cert, tls_key: PEM files the port serves TLS with (both or neither); the
            orchestrators then name it `grpcs://host:port`.
        tls_names: how the caller names tls_cert and tls_key (in the error when only one is
            given).

    Raises:
        ConfigurationError: TLS files that cannot be used (named).
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str]],
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        max_message_mb: Optional[float] = DEFAULT_MAX_MESSAGE_MB,
        tls_cert: Optional[FilePath] = None,
        tls_key: Optional[FilePath] = None,
        tls_names: tuple[str, str] = ("tls_cert", "tls_key"),
    ) -> None:
        self.path = os.fspath(path)
        self.max_queue_bytes = max_queue_bytes
        self.max_message_mb = max_message_mb
        self._credentials = server_credentials(tls_cert, tls_key, tls_names)
        self.tls = self._credentials is not None
        self.port = 0
        self.exporter: Optional[StoreExporter] = None
        self._server: Optional[grpc.aio.Server] = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Opens the store and serves on `host:port` (0: a free port); returns the port.

        Raises:
            ConfigurationError: the store cannot be opened, or the address bound.
        """
        try:
            writer = StoreWriter(self.path, self.max_queue_bytes)
        except DatalogError as error:
            raise ConfigurationError(str(error)) from None
        exporter = self.exporter = StoreExporter(writer)
        server = grpc.aio.server(
            options=[*message_size_options(self.max_message_mb), _NO_REUSEPORT]
        )
        log_handler = grpc.stream_unary_rpc_method_handler(
            exporter.Log,
            request_deserializer=None,  # raw bytes: samples are stored as they came
            response_serializer=data_pb2.LogReply.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("cogment.LogExporter", {"Log": log_handler}),)
        )
        add_service(server, datalog_ext_pb2.DESCRIPTOR.services_by_name["DatalogTrials"], exporter)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        bound = add_port(server, address, self._credentials)
        if not bound:
            await server.stop(None)
            await writer.close(0)
            raise ConfigurationError(f"cannot listen on {address}: address in use or invalid")
        await server.start()
        self._server = server
        self.port = bound
        return bound

    async def stop(self, grace: float = 2.0, flush_timeout: float = 60.0) -> None:
        """Stops serving (streams in flight get `grace` s), then writes what was queued."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        if self.exporter is not None:
            writer = self.exporter.writer
            if writer.queued:
                log.info("datalog %s: writing %d queued samples", self.path, writer.queued)
            if not await writer.close(flush_timeout):
                log.warning("datalog %s: %d writes left undone", self.path, writer.queued)


__all__ = ["DatalogServer", "StoreExporter"]
