"""Pre-trial hook services driven over real gRPC exactly as an orchestrator drives them."""

from __future__ import annotations

import types
from typing import Any, Callable

import grpc
import pytest

import cogment
from cogment.api import common_pb2, hooks_pb2, hooks_pb2_grpc

TIMEOUT = 5.0


def _pre_trial(stub: Any, params: Any, trial_id: str = "t1", user_id: str = "bob") -> Any:
    return stub.PreTrial(
        hooks_pb2.TrialContext(params=params, trial_id=trial_id, user_id=user_id), timeout=TIMEOUT
    )


def _stub(start_server: Callable[..., Any], grpc_channel: Any, hooks_type: Any) -> Any:
    return hooks_pb2_grpc.TrialHooksStub(grpc_channel(start_server(hooks_type)))


def test_hooks_decode_rewrite_and_encode(
    project_services: types.ModuleType, cog_settings: Any, start_server: Any, grpc_channel: Any
) -> None:
    import data_pb2

    hooks_type = project_services.Hooks.pointing_to(
        environment="grpc://127.0.0.1:7002", agents={"player": "grpc://127.0.0.1:7001"}
    )
    stub = _stub(start_server, grpc_channel, hooks_type)
    params = common_pb2.TrialParams()
    params.CopyFrom(cog_settings.default_trial_params)
    params.trial_config.content = data_pb2.TrialConfig(rounds=3, env_size=9).SerializeToString()

    reply = _pre_trial(stub, params)
    assert (reply.trial_id, reply.user_id) == ("t1", "bob")
    out = reply.params
    assert (out.max_steps, out.max_inactivity) == (100, 30)
    assert data_pb2.TrialConfig.FromString(out.trial_config.content) == data_pb2.TrialConfig(
        rounds=3, env_size=9
    )
    assert out.environment.endpoint == "grpc://127.0.0.1:7002"
    assert data_pb2.EnvConfig.FromString(out.environment.config.content) == data_pb2.EnvConfig(
        size=9, label="hooked:bob"
    )
    assert [(a.actor_class, a.endpoint) for a in out.actors] == [
        ("player", "human"),
        ("player", "grpc://127.0.0.1:7001"),
        ("watcher", "grpc://127.0.0.1:9001"),
    ]
    assert data_pb2.PlayerConfig.FromString(out.actors[1].config.content).name == "alice"
    # configs stay absent where none was given (0.5 services decode any present one)
    assert [a.HasField("config") for a in out.actors] == [False, True, False]
    assert project_services.JOURNAL.events("t1", "hooks") == [("hooks", "pre_trial", "bob")]

    info = stub.Version(common_pb2.VersionRequest(), timeout=TIMEOUT)
    assert [(v.name, v.version) for v in info.versions][2:] == [("hooks", "1.0.0")]


class RewritingHooks(cogment.TrialHooks):
    """Builds new parameters from scratch (trial "new"), or misbehaves (other trials)."""

    def pre_trial(self, trial_id: str, user_id: str, trial_params: Any) -> Any:
        import data_pb2

        if trial_id == "new":
            return cogment.TrialParameters(
                trial_config=data_pb2.TrialConfig(rounds=1),
                environment=cogment.EnvironmentParameters("grpc://e:1", data_pb2.EnvConfig(size=2)),
                actors=[cogment.ActorParameters("watcher", "grpc://w:2")],
                max_steps=7,
            )
        if trial_id == "none":
            trial_params.max_steps = 3
            return None  # keep the parameters, modified in place
        if trial_id == "raise":
            raise KeyError("no such user")
        if trial_id == "wrong-type":
            return "params"
        trial_params.actors[1].config = data_pb2.EnvConfig()
        return trial_params


def test_a_hook_sees_none_for_absent_configs_and_messages_for_present_ones(
    cog_settings: Any, start_server: Any, grpc_channel: Any
) -> None:
    import data_pb2

    seen: list[Any] = []

    class Recording(cogment.TrialHooks):
        def pre_trial(self, trial_id: str, user_id: str, trial_params: Any) -> None:
            seen.append(
                (
                    trial_params.trial_config,
                    trial_params.environment.config,
                    trial_params.actors[0].config,
                )
            )
            trial_params.actors[0].config = data_pb2.PlayerConfig()  # set, all defaults

    stub = _stub(start_server, grpc_channel, Recording)
    params = common_pb2.TrialParams()
    params.environment.config.SetInParent()  # present and empty
    params.actors.add(actor_class="player", endpoint="human")
    out = _pre_trial(stub, params).params
    assert seen == [(None, data_pb2.EnvConfig(), None)]
    assert not out.HasField("trial_config")
    assert out.environment.HasField("config") and out.actors[0].HasField("config")


@pytest.mark.parametrize(
    ("trial_id", "code", "details"),
    [
        (
            "raise",
            "INTERNAL",
            "RewritingHooks.pre_trial failed in trial raise: KeyError: 'no such user'",
        ),
        (
            "wrong-type",
            "INTERNAL",
            "RewritingHooks.pre_trial in trial wrong-type: expected cogment.TrialParameters, got str",
        ),
        (
            "wrong-config",
            "INTERNAL",
            "RewritingHooks.pre_trial in trial wrong-config: trial_params.actors[1].config: "
            "expected testproject.PlayerConfig, got EnvConfig",
        ),
    ],
)
def test_hook_errors(
    trial_id: str, code: str, details: str, cog_settings: Any, start_server: Any, grpc_channel: Any
) -> None:
    stub = _stub(start_server, grpc_channel, RewritingHooks)
    with pytest.raises(grpc.RpcError) as error:
        _pre_trial(stub, cog_settings.default_trial_params, trial_id=trial_id)
    assert (error.value.code().name, error.value.details()) == (code, details)
    # the server keeps serving
    assert (
        _pre_trial(stub, cog_settings.default_trial_params, trial_id="none").params.max_steps == 3
    )


def test_hook_new_params_and_bad_request(
    cog_settings: Any, start_server: Any, grpc_channel: Any
) -> None:
    import data_pb2

    stub = _stub(start_server, grpc_channel, RewritingHooks)
    out = _pre_trial(stub, cog_settings.default_trial_params, trial_id="new").params
    assert out.max_steps == 7 and out.max_inactivity == 0
    assert [(a.actor_class, a.endpoint, a.config.content) for a in out.actors] == [
        ("watcher", "grpc://w:2", b"")
    ]
    assert data_pb2.EnvConfig.FromString(out.environment.config.content).size == 2

    params = common_pb2.TrialParams()
    params.CopyFrom(cog_settings.default_trial_params)
    params.actors[1].config.content = b"\xff"
    with pytest.raises(grpc.RpcError) as error:
        _pre_trial(stub, params)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "trial_params.actors[1].config" in (error.value.details() or "")
    assert "testproject.PlayerConfig" in (error.value.details() or "")
