"""The datalog side of the benchmarks: a store served, its floor, and a load of samples.

Roles (run by `benchmarks.worker`):
  datalog-serve   `cogment datalog serve --db DB --port P`, in-process; counts samples stored
  datalog-bare    a bare grpc.aio LogExporter that parses each message and counts it (the
                  floor: what receiving samples costs, without storing them)
  datalog-load    N concurrent Log streams of samples, as cogment-py's orchestrator sends
                  them (a stream per 1000 samples, each beginning with the TrialParams)
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable, Optional

from benchmarks.worker import Control, wait_for

SEGMENT = 1000  # samples per Log stream


def role_datalog_serve(ctl: Control, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="datalog-serve")
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from cogment.datalog.exporter import DatalogServer

    async def main() -> None:
        server = DatalogServer(args.db)
        await server.start("127.0.0.1", args.port)
        exporter = server.exporter
        assert exporter is not None
        ctl.stats = lambda: {"count": exporter.stored}
        ctl.ready(port=args.port)
        await ctl.wait_stop()
        await server.stop()

    asyncio.run(main())


def role_datalog_bare(ctl: Control, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="datalog-bare")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import grpc

    from cogment.api import data_pb2

    received = [0]

    async def log(request_iterator: Any, context: Any) -> Any:
        async for raw in request_iterator:
            if data_pb2.DatalogMsg.FromString(raw).HasField("sample"):
                received[0] += 1
        return data_pb2.LogReply()

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", -1)])
        handler = grpc.stream_unary_rpc_method_handler(
            log, request_deserializer=None, response_serializer=data_pb2.LogReply.SerializeToString
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("cogment.LogExporter", {"Log": handler}),)
        )
        server.add_insecure_port(f"127.0.0.1:{args.port}")
        await server.start()
        ctl.stats = lambda: {"count": received[0]}
        ctl.ready(port=args.port)
        await ctl.wait_stop()
        await server.stop(None)

    asyncio.run(main())


def role_datalog_load(ctl: Control, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="datalog-load")
    parser.add_argument("--target", required=True)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--payload", type=int, default=256)
    parser.add_argument("--wait-for", action="append", default=[])
    args = parser.parse_args(argv)
    wait_for([args.target, *args.wait_for])
    import grpc

    from cogment.api import common_pb2, data_pb2
    from cogment.datalog import stream as log_stream

    params = common_pb2.TrialParams(max_steps=0)
    params.environment.endpoint = "grpc://127.0.0.1:1"
    params.actors.add(actor_class="player", endpoint="human")
    params.actors.add(actor_class="player", endpoint="grpc://127.0.0.1:2")
    head = data_pb2.DatalogMsg(trial_params=params).SerializeToString()
    blob = b"\x00" * args.payload
    errors: list[str] = []
    sent = [0] * args.streams

    def messages(trial_id: str, first_tick: int) -> Iterator[bytes]:
        yield head
        for tick in range(first_tick, first_tick + SEGMENT):
            if ctl.stop.is_set():
                return
            sample = data_pb2.DatalogSample(trial_id=trial_id, timestamp=time.time_ns())
            sample.observations.tick_id = tick
            sample.observations.observations.add(content=blob, snapshot=True)
            sample.observations.actors_map.extend([0, 0])
            sample.actions.add(content=b"\x08\x01")
            sample.actions.add(content=b"\x08\x01")
            sample.rewards.add()
            sample.rewards.add(value=1.0, confidence=1.0)
            yield data_pb2.DatalogMsg(sample=sample).SerializeToString()

    def load(i: int, log: Callable[..., Any]) -> None:
        trial_id = str(uuid.uuid4())
        metadata = log_stream.metadata(trial_id, f"load{i}", time.time_ns())
        tick = 0
        try:
            while not ctl.stop.is_set():
                log(messages(trial_id, tick), metadata=metadata, timeout=120.0)
                tick += SEGMENT
                sent[i] = tick
        except grpc.RpcError as error:
            if not ctl.stop.is_set():
                errors.append(f"{error.code()}: {error.details()}")  # type: ignore[attr-defined]

    channel = grpc.insecure_channel(args.target)
    log = channel.stream_unary(
        "/cogment.LogExporter/Log",
        request_serializer=lambda b: b,
        response_deserializer=data_pb2.LogReply.FromString,
    )
    threads = [
        threading.Thread(target=load, args=(i, log), daemon=True) for i in range(args.streams)
    ]
    for thread in threads:
        thread.start()
    ctl.ready(streams=args.streams)
    ctl.stop.wait()
    for thread in threads:
        thread.join(30.0)
    channel.close()
    return {"samples": sum(sent), "errors": errors[:10]}


ROLES: dict[str, Callable[[Control, list[str]], Optional[dict[str, Any]]]] = {
    "datalog-serve": role_datalog_serve,
    "datalog-bare": role_datalog_bare,
    "datalog-load": role_datalog_load,
}
