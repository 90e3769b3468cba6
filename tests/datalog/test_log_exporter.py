"""`cogment.LogExporter` served by `cogment.GrpcServer`: a user's own datalog service gets
each trial decoded, in order, once, whatever the streams it took."""

from __future__ import annotations

import threading
import types
from typing import Any, Callable, ClassVar

import pytest

import cogment
from cogment.api import data_pb2, data_pb2_grpc
from tests.conftest import endpoint
from tests.datalog.conftest import TIMEOUT, grpc_datalog


class Keeper(cogment.LogExporter):
    """Keeps what it is given, by trial."""

    VERSIONS: ClassVar[dict[str, str]] = {"keeper": "1.0"}
    kept: ClassVar[dict[str, list[tuple[str, Any]]]] = {}
    ended = threading.Event()

    def trial_started(self, params: Any) -> None:
        self.kept[self.trial_id] = [("started", params)]

    def sample(self, sample: Any) -> None:
        self.kept[self.trial_id].append(("sample", sample))

    def trial_ended(self) -> None:
        self.kept[self.trial_id].append(("ended", self.end_reason))
        self.ended.set()


def test_a_user_log_exporter_gets_every_tick_decoded(
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    start_server: Callable[..., cogment.GrpcServer],
    cog_settings: types.ModuleType,
) -> None:
    from data_pb2 import Move

    Keeper.ended.clear()
    server = start_server(Keeper)
    trial = connect(recording(grpc_datalog(endpoint(server)))).start_trial(
        cog_settings.actor_classes.player, user_id="bo"
    )
    seen = [trial.observation]
    for t in range(6):
        seen.append(trial.do_action(Move(cell=t)).observation)
    trial.end()
    assert Keeper.ended.wait(TIMEOUT)
    events = Keeper.kept[trial.id]
    kinds = [kind for kind, _ in events]
    assert kinds == ["started"] + ["sample"] * 7 + ["ended"]
    params = events[0][1]
    assert isinstance(params, cogment.TrialParameters)
    assert params.environment.config.label == "hooked:bo"
    samples = [value for kind, value in events if kind == "sample"]
    assert [s.tick_id for s in samples] == list(range(7))
    assert [s.observations.player[0] for s in samples] == seen
    assert [s.actions.player[0] for s in samples[:-1]] == [Move(cell=t) for t in range(6)]
    assert samples[-1].last and samples[0].user_id == "bo"
    assert events[-1] == ("ended", "ended by a client")


def test_samples_sent_again_are_given_once_and_a_foreign_stream_is_one_trial(
    start_server: Callable[..., cogment.GrpcServer],
    grpc_channel: Callable[..., Any],
    cog_settings: types.ModuleType,
    project: Any,
) -> None:
    """An orchestrator that does not name its trials (API 0.5 only): one stream, one trial,
    ended with the stream; a stream of cogment-py's sent again gives nothing twice."""
    from data_pb2 import Board, Move

    Keeper.ended.clear()
    server = start_server(Keeper)
    stub = data_pb2_grpc.LogExporterStub(grpc_channel(server))
    params = project.params(actors=(("player", "human"),))

    def messages(ticks: range) -> list[data_pb2.DatalogMsg]:
        out = [data_pb2.DatalogMsg(trial_params=params)]
        for t in ticks:
            sample = data_pb2.DatalogSample(trial_id="foreign-1", user_id="x")
            sample.observations.tick_id = t
            sample.observations.observations.add(
                content=Board(cells=[t], turn=t).SerializeToString(), snapshot=True
            )
            sample.observations.actors_map.append(0)
            sample.actions.add(content=Move(cell=t).SerializeToString())
            sample.rewards.add()
            out.append(data_pb2.DatalogMsg(sample=sample))
        return out

    stub.Log(iter(messages(range(3))), timeout=TIMEOUT, metadata=[("trial-id", "named-1")])
    stub.Log(iter(messages(range(5))), timeout=TIMEOUT, metadata=[("trial-id", "named-1")])
    assert [v.tick_id for k, v in Keeper.kept["named-1"] if k == "sample"] == [0, 1, 2, 3, 4]
    assert not Keeper.ended.is_set()
    stub.Log(iter(messages(range(2))), timeout=TIMEOUT)  # no metadata: the trial is the stream's
    assert Keeper.ended.is_set()
    kinds = [k for k, _ in Keeper.kept["foreign-1"]]
    assert kinds == ["started", "sample", "sample", "ended"]


def test_a_stream_without_params_or_with_a_failing_exporter_is_refused(
    start_server: Callable[..., cogment.GrpcServer],
    grpc_channel: Callable[..., Any],
    project: Any,
) -> None:
    import grpc

    class Broken(cogment.LogExporter):
        def sample(self, sample: Any) -> None:
            raise ValueError("disk on fire")

    stub = data_pb2_grpc.LogExporterStub(grpc_channel(start_server(Broken)))
    sample = data_pb2.DatalogSample(trial_id="t")
    sample.observations.observations.add(snapshot=True)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Log(iter([data_pb2.DatalogMsg(sample=sample)]), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must begin with the trial's TrialParams" in (caught.value.details() or "")
    params = project.params(actors=(("player", "human"),))
    with pytest.raises(grpc.RpcError) as caught:
        stub.Log(
            iter([data_pb2.DatalogMsg(trial_params=params), data_pb2.DatalogMsg(sample=sample)]),
            timeout=TIMEOUT,
        )
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "Broken.sample failed in trial t: ValueError: disk on fire" in (
        caught.value.details() or ""
    )


def test_a_log_exporter_must_implement_sample(cog_settings: types.ModuleType) -> None:
    class Nothing(cogment.LogExporter):
        pass

    with pytest.raises(cogment.ConfigurationError, match="does not implement sample"):
        cogment.GrpcServer(Nothing, cog_settings, port=0)


def test_a_trial_whose_orchestrator_went_away_is_ended_after_the_idle_timeout(
    start_server: Callable[..., cogment.GrpcServer],
    grpc_channel: Callable[..., Any],
    project: Any,
) -> None:
    Keeper.ended.clear()
    server = start_server(Keeper, idle_session_timeout=0.3)
    stub = data_pb2_grpc.LogExporterStub(grpc_channel(server))
    params = project.params(actors=(("player", "human"),))
    stub.Log(
        iter([data_pb2.DatalogMsg(trial_params=params)]),
        timeout=TIMEOUT,
        metadata=[("trial-id", "orphan-1")],
    )
    assert server.session_count == 1  # its end never comes: the orchestrator is gone
    assert Keeper.ended.wait(TIMEOUT)
    assert Keeper.kept["orphan-1"] == [Keeper.kept["orphan-1"][0], ("ended", None)]
    assert server.session_count == 0
