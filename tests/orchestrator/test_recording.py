"""The orchestrator's recording, against a LogExporter written straight on grpcio (API 0.5
only): what the streams carry, a slow or absent exporter, broken and segmented streams."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import grpc
import pytest

from cogment.api import agent_pb2, common_pb2, data_pb2, environment_pb2, orchestrator_pb2
from cogment.orchestrator import wire
from cogment.orchestrator.datalog import exporter as streaming
from cogment.orchestrator.datalog.samples import SampleEncoder
from cogment.settings import DatalogSettings
from tests.orchestrator.conftest import TIMEOUT, raw_params
from tests.orchestrator.raw import RawAgent, RawEnv, RawLogExporter
from tests.waiting import wait_until


def action(stub: Any, trial_id: str, content: bytes = b"\x08\x02") -> Any:
    request = orchestrator_pb2.TrialActionRequest(trial_id=trial_id, actor_id=0)
    request.action.content = content
    return stub.Action(request, timeout=TIMEOUT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def grpc_log(url: str, **kwargs: Any) -> DatalogSettings:
    return DatalogSettings("grpc", url=url, **kwargs)


def agent_feedback(request: Any) -> Any:
    reply = agent_pb2.AgentDecideReply(action=common_pb2.Action(content=b"\x08\x01"))
    reply.feedbacks.add(actor_id=0, tick_id=-1, value=2.0, confidence=1.0)
    return reply


def test_params_then_one_sample_a_tick_then_the_last_observations(
    raw_server, orchestrator, trial_stub
):
    exporter = RawLogExporter()
    agent = RawAgent(agent_feedback)
    params = raw_params(
        raw_server(RawEnv()), [("player", "human"), ("player", raw_server(agent))], 3
    )
    stub = trial_stub(orchestrator(params, datalog=grpc_log(raw_server(exporter))))
    started = stub.Start(orchestrator_pb2.TrialStartRequest(user_id="ann"), timeout=TIMEOUT)
    for _ in range(3):
        action(stub, started.trial_id)
    assert exporter.finished.wait(TIMEOUT)
    metadata, messages = exporter.streams[0]
    assert metadata["trial-id"] == started.trial_id and metadata["user-id"] == "ann"
    assert abs(int(metadata["trial-started-at"]) / 1e9 - time.time()) < 60
    assert messages[0].WhichOneof("msg") == "trial_params" and messages[0].trial_params == params
    samples = exporter.samples()
    assert [s.observations.tick_id for s in samples] == [0, 1, 2, 3]
    for t, sample in enumerate(samples[:3]):
        assert sample.trial_id == started.trial_id and sample.user_id == "ann"
        assert [a.content for a in sample.actions] == [b"\x08\x02", b"\x08\x01"]
        assert [r.value for r in sample.rewards] == [2.0, 0.0]
        assert sample.rewards[0].feedbacks[0].tick_id == t
        assert list(sample.observations.actors_map) == [0, 0]  # filled in for the store
        assert sample.timestamp == sample.observations.timestamp > 0
    assert not samples[3].actions and len(samples[3].observations.observations) == 1


def test_the_sample_encoding_is_plain_protobuf():
    """Samples are encoded by hand around the environment's bytes: they parse as the
    DatalogSample the generated classes would make."""
    obs_set = environment_pb2.ObservationSet(tick_id=99, timestamp=5, actors_map=[1, 0, 1])
    obs_set.observations.add(content=b"seen by 1", snapshot=True)
    obs_set.observations.add(content=b"delta", snapshot=False)
    reply = wire.read_env_reply(
        environment_pb2.EnvUpdateReply(observation_set=obs_set).SerializeToString()
    )
    rewards = {2: agent_pb2.Reward(value=1.5, confidence=2.0)}
    rewards[2].feedbacks.add(actor_id=2, tick_id=7, value=1.5, confidence=2.0)
    late = [common_pb2.Feedback(actor_id=0, tick_id=3, value=-1.0, confidence=1.0)]
    message = common_pb2.Message(sender_id=1, receiver_id=-1)
    message.payload.Pack(common_pb2.TrialConfig(content=b"hi"))
    encoder = SampleEncoder("trial-x", "me", 3)
    parts, size = encoder.encode(7, reply, [b"a", b"", b"c"], rewards, {-1: [message]}, late)
    data = b"".join(parts)
    assert len(data) == size

    expected = data_pb2.DatalogSample(trial_id="trial-x", user_id="me", timestamp=5)
    expected.observations.CopyFrom(obs_set)
    expected.observations.tick_id = 7
    expected.actions.add(content=b"a")
    expected.actions.add()
    expected.actions.add(content=b"c")
    expected.rewards.add().feedbacks.extend(late)
    expected.rewards.add()
    expected.rewards.add().CopyFrom(rewards[2])
    for _receiver in range(3):
        expected.messages.add()
    expected.messages.add().messages.append(message)
    assert data_pb2.DatalogSample.FromString(data) == expected


def test_a_full_queue_holds_the_trial_until_the_exporter_takes_its_samples(
    raw_server, orchestrator, trial_stub
):
    """An exporter that takes nothing, and a queue of 1 KiB: the trial waits for room (the
    tick is held, nothing is dropped) until the exporter takes what is queued."""
    exporter = RawLogExporter()
    exporter.gate.clear()
    datalog = grpc_log(raw_server(exporter), max_queue_bytes=1024)
    orch = orchestrator(
        raw_params(raw_server(RawEnv()), [("player", "human")], 40), datalog=datalog
    )
    stub = trial_stub(orch)
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    replies: list[Any] = []
    player = threading.Thread(
        target=lambda: replies.extend(action(stub, started.trial_id) for _ in range(40))
    )
    player.start()
    budget = orch._server.recorder.budget  # type: ignore[union-attr]
    wait_until(lambda: budget.waiting, TIMEOUT, "the trial waits for room in the queue")
    held_at = len(exporter.samples())
    assert held_at == 0 and player.is_alive()  # held: the player cannot finish
    exporter.gate.set()
    player.join(TIMEOUT)
    assert not player.is_alive() and replies[-1].trial_is_over
    wait_until(lambda: len(exporter.samples()) >= 41, TIMEOUT, "every sample reached it")
    assert [s.observations.tick_id for s in exporter.samples()] == list(range(41))
    assert len(exporter.streams) > 1  # the bound cut the trial into several streams
    assert all(messages[0].HasField("trial_params") for _, messages in exporter.streams)


def test_the_end_is_told_at_once_while_the_exporter_holds(raw_server, orchestrator, trial_stub):
    exporter = RawLogExporter()
    exporter.gate.clear()  # the exporter takes nothing for now
    datalog = grpc_log(raw_server(exporter))
    stub = trial_stub(
        orchestrator(raw_params(raw_server(RawEnv()), [("player", "human")], 5), datalog=datalog)
    )
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    replies = [action(stub, started.trial_id) for _ in range(5)]
    assert replies[-1].trial_is_over and exporter.samples() == []
    exporter.gate.set()
    assert exporter.finished.wait(TIMEOUT)
    assert [s.observations.tick_id for s in exporter.samples()] == list(range(6))


def test_an_exporter_not_ready_at_trial_start_is_waited_for(raw_server, orchestrator, trial_stub):
    port = free_port()
    stub = trial_stub(
        orchestrator(
            raw_params(raw_server(RawEnv()), [("player", "human")], 4),
            datalog=grpc_log(f"grpc://127.0.0.1:{port}"),
        )
    )
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    action(stub, started.trial_id)
    exporter = RawLogExporter()
    raw_server(exporter, port)  # up after the trial started
    assert [action(stub, started.trial_id).trial_is_over for _ in range(3)] == [False, False, True]
    assert exporter.finished.wait(TIMEOUT)
    assert [s.observations.tick_id for s in exporter.samples()] == list(range(5))


class LogEvent(logging.Handler):
    """Sets `seen` once a `cogment` log record contains `text`."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.INFO)
        self.text = text
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@pytest.mark.parametrize("on_failure", ["end", "continue"])
def test_an_unreachable_exporter(raw_server, orchestrator, trial_stub, on_failure):
    url = f"grpc://127.0.0.1:{free_port()}"  # nothing listens there
    gave_up = LogEvent(f"datalog {url} failed: timed out")
    logger = logging.getLogger("cogment.orchestrator")
    logger.addHandler(gave_up)
    try:
        params = raw_params(raw_server(RawEnv()), [("player", "human")], 0)
        datalog = grpc_log(url, on_failure=on_failure)
        stub = trial_stub(orchestrator(params, datalog=datalog, response_timeout=2.0))
        started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
        action(stub, started.trial_id)
        assert gave_up.seen.wait(TIMEOUT)  # once the response timeout has passed
    finally:
        logger.removeHandler(gave_up)
    if on_failure == "continue":  # unrecorded, unaffected
        assert [action(stub, started.trial_id).trial_is_over for _ in range(3)] == [False] * 3
        return
    with pytest.raises(grpc.RpcError) as caught:
        action(stub, started.trial_id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == (
        f"trial {started.trial_id} failed: datalog {url} failed: timed out"
    )


def test_a_broken_stream_is_sent_again(raw_server, orchestrator, trial_stub):
    exporter = RawLogExporter(fail_first=1)
    datalog = grpc_log(raw_server(exporter))
    stub = trial_stub(
        orchestrator(raw_params(raw_server(RawEnv()), [("player", "human")], 6), datalog=datalog)
    )
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    for _ in range(6):
        action(stub, started.trial_id)
    wait_until(
        lambda: {s.observations.tick_id for s in exporter.samples()} >= set(range(7)),
        TIMEOUT,
        "every tick reached the exporter",
    )
    first, *others = exporter.streams
    assert [m.WhichOneof("msg") for m in first[1]] == ["trial_params", "sample"]
    resent = [m.sample.observations.tick_id for _, ms in others for m in ms if m.HasField("sample")]
    assert resent == list(range(7))  # from the first unconfirmed one, in order


def test_a_long_trial_takes_several_streams(raw_server, orchestrator, trial_stub, monkeypatch):
    monkeypatch.setattr(streaming, "SEGMENT_BYTES", 300)
    exporter = RawLogExporter()
    datalog = grpc_log(raw_server(exporter))
    stub = trial_stub(
        orchestrator(raw_params(raw_server(RawEnv()), [("player", "human")], 20), datalog=datalog)
    )
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    for _ in range(20):
        action(stub, started.trial_id)
    wait_until(lambda: len(exporter.samples()) >= 21, TIMEOUT, "every tick reached it")
    assert [s.observations.tick_id for s in exporter.samples()] == list(range(21))
    assert len(exporter.streams) >= 3
    for metadata, messages in exporter.streams:
        assert metadata["trial-id"] == started.trial_id
        assert messages[0].HasField("trial_params")


def test_an_exporter_refusing_the_stream_fails_the_trial_at_once(
    raw_server, orchestrator, trial_stub
):
    not_a_datalog = raw_server(RawAgent())  # answers UNIMPLEMENTED
    params = raw_params(raw_server(RawEnv()), [("player", "human")], 0)
    stub = trial_stub(
        orchestrator(params, datalog=grpc_log(not_a_datalog), response_timeout=TIMEOUT)
    )
    started = stub.Start(orchestrator_pb2.TrialStartRequest(), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as caught:
        for _ in range(1000):  # far fewer than TIMEOUT s of ticks
            action(stub, started.trial_id)
    assert f"datalog {not_a_datalog} failed: UNIMPLEMENTED" in (caught.value.details() or "")
