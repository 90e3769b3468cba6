"""The wire protocol is exactly PROTOCOL.md's, and the generated modules match the .proto files."""

from __future__ import annotations

import importlib
import os
import tempfile

import pytest
import yaml
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor

from cogment import api_build
from cogment.protoc import compile_protos
from cogment.version import API_VERSION

F = FieldDescriptor
REP = "repeated"

# file -> message -> [(field, number, type, label)], transcribed from PROTOCOL.md (API 0.5).
MESSAGES: dict[str, dict[str, list[tuple[str, int, object, str]]]] = {
    "common": {
        "VersionRequest": [],
        "VersionInfo": [("versions", 1, "cogment.VersionInfo.Version", REP)],
        "VersionInfo.Version": [("name", 1, F.TYPE_STRING, ""), ("version", 2, F.TYPE_STRING, "")],
        "TrialConfig": [("content", 1, F.TYPE_BYTES, "")],
        "ActorConfig": [("content", 1, F.TYPE_BYTES, "")],
        "EnvironmentConfig": [("content", 1, F.TYPE_BYTES, "")],
        "EnvironmentParams": [
            ("endpoint", 1, F.TYPE_STRING, ""),
            ("config", 2, "cogment.EnvironmentConfig", ""),
        ],
        "ActorParams": [
            ("actor_class", 1, F.TYPE_STRING, ""),
            ("endpoint", 2, F.TYPE_STRING, ""),
            ("config", 3, "cogment.ActorConfig", ""),
        ],
        "TrialParams": [
            ("trial_config", 1, "cogment.TrialConfig", ""),
            ("environment", 2, "cogment.EnvironmentParams", ""),
            ("actors", 3, "cogment.ActorParams", REP),
            ("max_steps", 4, F.TYPE_UINT32, ""),
            ("max_inactivity", 5, F.TYPE_UINT32, ""),
        ],
        "ObservationData": [("content", 1, F.TYPE_BYTES, ""), ("snapshot", 2, F.TYPE_BOOL, "")],
        "Observation": [
            ("tick_id", 1, F.TYPE_UINT64, ""),
            ("timestamp", 2, F.TYPE_FIXED64, ""),
            ("data", 3, "cogment.ObservationData", ""),
        ],
        "Action": [("content", 1, F.TYPE_BYTES, "")],
        "Feedback": [
            ("actor_id", 1, F.TYPE_UINT32, ""),
            ("tick_id", 2, F.TYPE_INT32, ""),
            ("value", 3, F.TYPE_FLOAT, ""),
            ("confidence", 4, F.TYPE_FLOAT, ""),
            ("content", 5, F.TYPE_BYTES, ""),
            ("agent_id", 7, F.TYPE_UINT32, ""),
        ],
        "Message": [
            ("sender_id", 1, F.TYPE_INT32, ""),
            ("receiver_id", 2, F.TYPE_INT32, ""),
            ("payload", 3, "google.protobuf.Any", ""),
        ],
    },
    "agent": {
        "AgentStartRequest": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("actor_id", 2, F.TYPE_INT32, ""),
            ("config", 3, "cogment.ActorConfig", ""),
            ("actor_counts", 4, F.TYPE_INT32, REP),
            ("trial_config", 5, "cogment.TrialConfig", ""),
        ],
        "AgentStartReply": [],
        "AgentEndRequest": [("trial_id", 1, F.TYPE_STRING, ""), ("actor_id", 2, F.TYPE_INT32, "")],
        "AgentEndReply": [],
        "AgentDecideRequest": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("actor_id", 2, F.TYPE_INT32, ""),
            ("observation", 3, "cogment.Observation", ""),
        ],
        "AgentDecideReply": [
            ("action", 1, "cogment.Action", ""),
            ("feedbacks", 2, "cogment.Feedback", REP),
            ("messages", 3, "cogment.Message", REP),
        ],
        "Reward": [
            ("value", 1, F.TYPE_FLOAT, ""),
            ("confidence", 2, F.TYPE_FLOAT, ""),
            ("feedbacks", 3, "cogment.Feedback", REP),
        ],
        "AgentRewardRequest": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("actor_id", 2, F.TYPE_INT32, ""),
            ("reward", 3, "cogment.Reward", ""),
            ("tick_id", 4, F.TYPE_INT32, ""),
        ],
        "AgentRewardReply": [],
        "MessageCollection": [("messages", 1, "cogment.Message", REP)],
        "AgentOnMessageRequest": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("actor_id", 2, F.TYPE_INT32, ""),
            ("messages", 3, "cogment.Message", REP),
        ],
        "AgentOnMessageReply": [],
    },
    "environment": {
        "ObservationSet": [
            ("tick_id", 1, F.TYPE_UINT64, ""),
            ("timestamp", 2, F.TYPE_FIXED64, ""),
            ("observations", 3, "cogment.ObservationData", REP),
            ("actors_map", 4, F.TYPE_INT32, REP),
        ],
        "ActionSet": [("actions", 1, F.TYPE_BYTES, REP)],
        "EnvStartRequest": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("config", 2, "cogment.EnvironmentConfig", ""),
            ("actor_counts", 3, F.TYPE_INT32, REP),
            ("trial_config", 4, "cogment.TrialConfig", ""),
        ],
        "EnvStartReply": [("observation_set", 1, "cogment.ObservationSet", "")],
        "EnvEndRequest": [("trial_id", 1, F.TYPE_STRING, "")],
        "EnvEndReply": [],
        "EnvUpdateRequest": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("action_set", 2, "cogment.ActionSet", ""),
            ("reply_with_snapshot", 3, F.TYPE_BOOL, ""),
        ],
        "EnvUpdateReply": [
            ("observation_set", 1, "cogment.ObservationSet", ""),
            ("feedbacks", 2, "cogment.Feedback", REP),
            ("end_trial", 3, F.TYPE_BOOL, ""),
            ("messages", 4, "cogment.Message", REP),
        ],
        "EnvOnMessageRequest": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("actor_id", 2, F.TYPE_INT32, ""),
            ("messages", 3, "cogment.Message", REP),
        ],
        "EnvOnMessageReply": [],
    },
    "orchestrator": {
        "GetTrialParamsRequest": [],
        "GetTrialParamsReply": [("params", 1, "cogment.TrialParams", "")],
        "TrialHeartbeatRequest": [("trial_id", 1, F.TYPE_STRING, "")],
        "TrialHeartbeatReply": [],
        "TrialStartRequest": [
            ("config", 1, "cogment.TrialConfig", ""),
            ("user_id", 2, F.TYPE_STRING, ""),
        ],
        "TrialJoinRequest": [("trial_id", 1, F.TYPE_STRING, ""), ("actor_id", 2, F.TYPE_INT32, "")],
        "TrialStartReply": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("actor_id", 2, F.TYPE_INT32, ""),
            ("human_config", 3, "cogment.ActorConfig", ""),
            ("observation", 4, "cogment.Observation", ""),
            ("actor_counts", 5, F.TYPE_INT32, REP),
        ],
        "TrialEndRequest": [("trial_id", 1, F.TYPE_STRING, "")],
        "TrialEndReply": [],
        "TrialActionRequest": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("actor_id", 2, F.TYPE_INT32, ""),
            ("action", 3, "cogment.Action", ""),
        ],
        "TrialActionReply": [
            ("observation", 1, "cogment.Observation", ""),
            ("reward", 2, "cogment.Reward", ""),
            ("trial_is_over", 3, F.TYPE_BOOL, ""),
            ("messages", 4, "cogment.MessageCollection", ""),
        ],
        "TrialFeedbackRequest": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("feedbacks", 2, "cogment.Feedback", REP),
        ],
        "TrialFeedbackReply": [],
        "TrialMessageRequest": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("messages", 2, "cogment.Message", REP),
        ],
        "TrialMessageReply": [],
    },
    "hooks": {
        "TrialContext": [
            ("params", 1, "cogment.TrialParams", ""),
            ("trial_id", 2, F.TYPE_STRING, ""),
            ("user_id", 3, F.TYPE_STRING, ""),
        ],
    },
    "data": {
        "DatalogMsg": [
            ("trial_params", 1, "cogment.TrialParams", "oneof msg"),
            ("sample", 2, "cogment.DatalogSample", "oneof msg"),
        ],
        "DatalogSample": [
            ("trial_id", 1, F.TYPE_STRING, ""),
            ("observations", 2, "cogment.ObservationSet", ""),
            ("actions", 3, "cogment.Action", REP),
            ("rewards", 4, "cogment.Reward", REP),
            ("user_id", 5, F.TYPE_STRING, ""),
            ("messages", 6, "cogment.MessageCollection", REP),
            ("timestamp", 7, F.TYPE_FIXED64, ""),
        ],
        "LogReply": [],
    },
}

# service -> (file, [(rpc, request, reply, client streaming, server streaming)])
SERVICES = {
    "Agent": (
        "agent",
        [
            ("Start", "AgentStartRequest", "AgentStartReply", False, False),
            ("End", "AgentEndRequest", "AgentEndReply", False, False),
            ("Decide", "AgentDecideRequest", "AgentDecideReply", False, False),
            ("Reward", "AgentRewardRequest", "AgentRewardReply", False, False),
            ("Version", "VersionRequest", "VersionInfo", False, False),
            ("OnMessage", "AgentOnMessageRequest", "AgentOnMessageReply", False, False),
        ],
    ),
    "Environment": (
        "environment",
        [
            ("Start", "EnvStartRequest", "EnvStartReply", False, False),
            ("End", "EnvEndRequest", "EnvEndReply", False, False),
            ("Update", "EnvUpdateRequest", "EnvUpdateReply", False, False),
            ("Version", "VersionRequest", "VersionInfo", False, False),
            ("OnMessage", "EnvOnMessageRequest", "EnvOnMessageReply", False, False),
        ],
    ),
    "Trial": (
        "orchestrator",
        [
            ("GetTrialParams", "GetTrialParamsRequest", "GetTrialParamsReply", False, False),
            ("Start", "TrialStartRequest", "TrialStartReply", False, False),
            ("Join", "TrialJoinRequest", "TrialStartReply", False, False),
            ("End", "TrialEndRequest", "TrialEndReply", False, False),
            ("Action", "TrialActionRequest", "TrialActionReply", False, False),
            ("ActionStream", "TrialActionRequest", "TrialActionReply", True, True),
            ("Heartbeat", "TrialHeartbeatRequest", "TrialHeartbeatReply", False, False),
            ("GiveFeedback", "TrialFeedbackRequest", "TrialFeedbackReply", False, False),
            ("Version", "VersionRequest", "VersionInfo", False, False),
            ("SendMessage", "TrialMessageRequest", "TrialMessageReply", False, False),
        ],
    ),
    "TrialHooks": (
        "hooks",
        [
            ("PreTrial", "TrialContext", "TrialContext", False, False),
            ("Version", "VersionRequest", "VersionInfo", False, False),
        ],
    ),
    "LogExporter": ("data", [("Log", "DatalogMsg", "LogReply", True, False)]),
}

IMPORTS = {
    "common": ["google/protobuf/any.proto"],
    "agent": ["cogment/api/common.proto"],
    "environment": ["cogment/api/common.proto", "cogment/api/agent.proto"],
    "orchestrator": ["cogment/api/common.proto", "cogment/api/agent.proto"],
    "hooks": ["cogment/api/common.proto"],
    "data": [
        "cogment/api/common.proto",
        "cogment/api/agent.proto",
        "cogment/api/environment.proto",
    ],
}


def module(name: str, suffix: str = "_pb2"):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"cogment.api.{name}{suffix}")


def find_message(file_desc, path: str):  # type: ignore[no-untyped-def]
    outer, _, inner = path.partition(".")
    desc = file_desc.message_types_by_name[outer]
    return desc.nested_types_by_name[inner] if inner else desc


@pytest.mark.parametrize("file_name", sorted(MESSAGES))
def test_messages_match_the_protocol(file_name: str) -> None:
    file_desc = module(file_name).DESCRIPTOR
    assert file_desc.package == "cogment"
    assert file_desc.syntax == "proto3" if hasattr(file_desc, "syntax") else True
    assert file_desc.name == f"cogment/api/{file_name}.proto"
    assert sorted(d.name for d in file_desc.dependencies) == sorted(IMPORTS[file_name])
    expected = MESSAGES[file_name]
    assert set(file_desc.message_types_by_name) == {m for m in expected if "." not in m}
    for message_name, fields in expected.items():
        desc = find_message(file_desc, message_name)
        actual = {f.name: f for f in desc.fields}
        assert set(actual) == {f[0] for f in fields}, message_name
        for field_name, number, field_type, label in fields:
            field = actual[field_name]
            where = f"{message_name}.{field_name}"
            assert field.number == number, where
            if isinstance(field_type, str):
                assert (
                    field.message_type is not None and field.message_type.full_name == field_type
                ), where
            else:
                assert field.type == field_type, where
            is_repeated = (
                bool(field.is_repeated)
                if hasattr(field, "is_repeated")
                else field.label == F.LABEL_REPEATED
            )
            assert is_repeated == (label == REP), where
            if label.startswith("oneof"):
                assert field.containing_oneof is not None
                assert field.containing_oneof.name == label.split()[1], where


@pytest.mark.parametrize("service_name", sorted(SERVICES))
def test_services_match_the_protocol(service_name: str) -> None:
    file_name, methods = SERVICES[service_name]
    file_desc = module(file_name).DESCRIPTOR
    service = file_desc.services_by_name[service_name]
    assert service.full_name == f"cogment.{service_name}"
    assert [m.name for m in service.methods] == [m[0] for m in methods]
    for name, request, reply, client_streaming, server_streaming in methods:
        method = service.methods_by_name[name]
        assert method.input_type.full_name == f"cogment.{request}"
        assert method.output_type.full_name == f"cogment.{reply}"
        assert getattr(method, "client_streaming", client_streaming) == client_streaming
        assert getattr(method, "server_streaming", server_streaming) == server_streaming
        stub = getattr(module(file_name, "_pb2_grpc"), f"{service_name}Stub")
        assert stub is not None


def strip_json_names(messages) -> None:  # type: ignore[no-untyped-def]
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        strip_json_names(message.nested_type)


@pytest.mark.parametrize("file_name", api_build.API_FILES + api_build.EXTENSION_FILES)
def test_generated_modules_match_the_proto_files(file_name: str) -> None:
    """Fails when a .proto was edited without `poetry run task api`."""
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.dirname(api_build.PACKAGE_DIR)
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        descriptors = os.path.join(tmp, "set.pb")
        compile_protos(
            [f"cogment/api/{file_name}.proto"],
            [root],
            out,
            grpc=False,
            descriptor_set_out=descriptors,
        )
        files = descriptor_pb2.FileDescriptorSet()
        with open(descriptors, "rb") as f:
            files.ParseFromString(f.read())
    compiled = next(p for p in files.file if p.name == f"cogment/api/{file_name}.proto")
    compiled.ClearField("source_code_info")
    strip_json_names(compiled.message_type)  # protoc keeps them out of generated modules
    generated = descriptor_pb2.FileDescriptorProto()
    generated.ParseFromString(module(file_name).DESCRIPTOR.serialized_pb)
    assert generated == compiled, (
        f"cogment/api/{file_name}_pb2.py is stale: run `poetry run task api`"
    )


def test_api_version_matches_cogment_api_yaml() -> None:
    path = os.path.join(os.path.dirname(api_build.PACKAGE_DIR), ".cogment-api.yaml")
    with open(path) as f:
        assert yaml.safe_load(f)["cogment_api_version"] == API_VERSION == "v0.5"
