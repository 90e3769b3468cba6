"""TLS end to end, on certificates the tests make: a client at `grpcs://` to an orchestrator
serving TLS, which calls TLS services at `grpcs://` endpoints; every mismatch fails at once
with an error naming the endpoint; `cogment orchestrator --tls-cert/--tls-key`."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

import cogment
from cogment.api import common_pb2
from cogment.client import Connection
from cogment.errors import CogmentRpcError, TrialError
from tests.certificates import Certificate
from tests.e2e.conftest import free_port

LOCALHOST = "127.0.0.1"
TIMEOUT = 10.0


def tls_params(
    cog_settings: Any, environment: str, player: str, watcher: str, rounds: int = 3
) -> common_pb2.TrialParams:
    """One human player, alice (a player agent) and a watcher, `rounds` ticks."""
    params = common_pb2.TrialParams(max_steps=20, max_inactivity=30)
    params.trial_config.content = cog_settings.trial.config_type(rounds=rounds).SerializeToString()
    params.environment.endpoint = environment
    params.environment.config.content = cog_settings.environment.config_type(
        size=4
    ).SerializeToString()
    params.actors.add(actor_class="player", endpoint="human")
    alice = params.actors.add(actor_class="player", endpoint=player)
    alice.config.content = cog_settings.actor_classes.player.config_type(
        name="alice"
    ).SerializeToString()
    params.actors.add(actor_class="watcher", endpoint=watcher)
    return params


@pytest.fixture(scope="module")
def tls_services(
    cog_settings: types.ModuleType, project_services: types.ModuleType, tls_certificate: Certificate
) -> Iterator[dict[str, str]]:
    """The project's environment and agents served over TLS; a TLS pre-trial hook sending
    trials to them (their grpcs:// endpoints); a plaintext environment too."""
    cert, key = tls_certificate
    servers: list[cogment.GrpcServer] = []
    endpoints: dict[str, str] = {}

    def serve(name: str, service_class: type, tls: bool = True) -> None:
        server = cogment.GrpcServer(
            service_class,
            cog_settings,
            port=0,
            host=LOCALHOST,
            tls_cert=cert if tls else None,
            tls_key=key if tls else None,
        )
        servers.append(server.start())
        assert server.tls is tls
        endpoints[name] = f"{'grpcs' if tls else 'grpc'}://{LOCALHOST}:{server.port}"

    serve("env", project_services.BoardEnv)
    serve("player", project_services.PlayerAgent)
    serve("watcher", project_services.WatcherAgent)
    serve("plain_env", project_services.BoardEnv, tls=False)
    hooks = project_services.Hooks.pointing_to(
        environment=endpoints["env"],
        agents={"player": endpoints["player"], "watcher": endpoints["watcher"]},
    )
    serve("hooks", hooks)
    yield endpoints
    for server in servers:
        server.stop()


@pytest.fixture
def tls_orchestrator(cog_settings: types.ModuleType, tls_certificate: Certificate) -> Iterator[Any]:
    """`tls_orchestrator(params, pre_hooks=(), tls=True)`: a cogment.Orchestrator (serving
    TLS unless tls=False) that trusts the test certificate for its calls; stopped at teardown."""
    started: list[cogment.Orchestrator] = []

    def start(
        params: common_pb2.TrialParams, pre_hooks: tuple[str, ...] = (), tls: bool = True
    ) -> cogment.Orchestrator:
        orch = cogment.Orchestrator(
            cog_settings,
            port=0,
            response_timeout=TIMEOUT,
            default_trial_params=params,
            pre_hooks=list(pre_hooks),
            datalog_endpoint="",
            tls_cert=tls_certificate.cert if tls else None,
            tls_key=tls_certificate.key if tls else None,
            tls_ca=tls_certificate.cert,
        )
        started.append(orch.start())
        return orch

    yield start
    for orch in started:
        orch.stop()


def test_a_whole_trial_over_tls(
    cog_settings: types.ModuleType,
    project_services: types.ModuleType,
    tls_services: dict[str, str],
    tls_orchestrator: Any,
    tls_certificate: Certificate,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from data_pb2 import Move

    # the defaults name a plaintext environment: the TLS pre-trial hook's grpcs:// endpoints
    # are the ones called
    params = tls_params(
        cog_settings, tls_services["plain_env"], tls_services["player"], tls_services["watcher"]
    )
    with caplog.at_level("INFO", logger="cogment"):
        orch = tls_orchestrator(params, pre_hooks=(tls_services["hooks"],))
    assert orch.tls and orch.endpoint == f"grpcs://{LOCALHOST}:{orch.port}"
    assert any(
        r.name == "cogment.orchestrator" and "serving TLS on" in r.getMessage()
        for r in caplog.records
    )
    with Connection(
        cog_settings, orch.endpoint, tls_ca=tls_certificate.cert, timeout=TIMEOUT
    ) as conn:
        assert conn.endpoint == orch.endpoint
        assert conn.version()["cogment-api"]
        trial = conn.start_trial("player", user_id="tls")
        turns = []
        while not trial.is_over:
            observation, _reward, _messages = trial.do_action(Move(cell=0))
            turns.append(observation.turn)
        assert turns == [1, 2, 3]
    journal = project_services.JOURNAL
    assert journal.events(trial.id, "hooks") == [("hooks", "pre_trial", "tls")]
    assert journal.events(trial.id, "env")[0] == ("env", "start", (4, "hooked:tls"))
    assert [e for _, e, _ in journal.events(trial.id, "player1")].count("decide") >= 3
    assert [e for _, e, _ in journal.events(trial.id, "watcher2")].count("decide") >= 3
    for who in ("env", "player1", "watcher2"):
        assert journal.events(trial.id, who)[-1][1] == "end", who


def test_a_plaintext_client_to_a_tls_orchestrator_fails_at_once(
    cog_settings: types.ModuleType, tls_services: dict[str, str], tls_orchestrator: Any
) -> None:
    params = tls_params(cog_settings, tls_services["env"], "human", "human")
    orch = tls_orchestrator(params)
    address = f"{LOCALHOST}:{orch.port}"
    conn = Connection(cog_settings, address, timeout=TIMEOUT)
    with conn, pytest.raises(CogmentRpcError) as info:
        conn.start_trial("player")
    assert info.value.code is grpc.StatusCode.UNAVAILABLE  # not DEADLINE_EXCEEDED: no hang
    assert info.value.message.startswith(
        f"cannot reach the orchestrator at {address}: the port closed the connection: "
        "if it serves TLS, call it with grpcs://"
    )


def test_a_tls_client_to_a_plaintext_orchestrator_fails_at_once(
    cog_settings: types.ModuleType,
    tls_services: dict[str, str],
    tls_orchestrator: Any,
    tls_certificate: Certificate,
) -> None:
    params = tls_params(cog_settings, tls_services["env"], "human", "human")
    orch = tls_orchestrator(params, tls=False)
    assert orch.endpoint == f"{LOCALHOST}:{orch.port}"
    endpoint = f"grpcs://{LOCALHOST}:{orch.port}"
    conn = Connection(cog_settings, endpoint, tls_ca=tls_certificate.cert, timeout=TIMEOUT)
    with conn, pytest.raises(CogmentRpcError) as info:
        conn.version()
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert info.value.message.startswith(
        f"cannot reach the orchestrator at {endpoint}: TLS handshake failed: the port does "
        "not serve TLS"
    )


def test_an_untrusted_certificate_fails_at_once(
    cog_settings: types.ModuleType,
    tls_services: dict[str, str],
    tls_orchestrator: Any,
    other_certificate: Certificate,
) -> None:
    params = tls_params(cog_settings, tls_services["env"], "human", "human")
    orch = tls_orchestrator(params)
    for tls_ca in (other_certificate.cert, None):  # another CA, the system's roots
        conn = Connection(cog_settings, orch.endpoint, tls_ca=tls_ca, timeout=TIMEOUT)
        with conn, pytest.raises(CogmentRpcError) as info:
            conn.start_trial("player")
        assert info.value.code is grpc.StatusCode.UNAVAILABLE
        assert info.value.message.startswith(
            f"cannot reach the orchestrator at {orch.endpoint}: TLS handshake failed: the "
            "server's certificate is not trusted ("
        ), info.value.message
        assert "name the CA that signed it (tls_ca, --tls-ca)" in info.value.message


def test_the_orchestrator_names_the_service_of_a_tls_mismatch(
    cog_settings: types.ModuleType,
    tls_services: dict[str, str],
    tls_orchestrator: Any,
    tls_certificate: Certificate,
) -> None:
    plain_env = tls_services["plain_env"]
    tls_env = tls_services["env"]
    as_tls = plain_env.replace("grpc://", "grpcs://")  # a TLS call to a plaintext port
    as_plain = tls_env.replace("grpcs://", "grpc://")  # a plaintext call to a TLS port
    for environment, explained in (
        (as_tls, "TLS handshake failed: the port does not serve TLS"),
        (as_plain, "the port closed the connection: if it serves TLS, call it with grpcs://"),
    ):
        params = tls_params(cog_settings, environment, tls_services["player"], "human")
        orch = tls_orchestrator(params)
        with (
            Connection(
                cog_settings, orch.endpoint, tls_ca=tls_certificate.cert, timeout=TIMEOUT
            ) as conn,
            pytest.raises(TrialError) as info,
        ):
            conn.start_trial("player")
        assert f"environment at {environment}: Start failed: UNAVAILABLE: {explained}" in (
            info.value.message
        )


def test_the_command_line_serves_tls(
    tmp_path: Any, cog_settings: types.ModuleType, tls_certificate: Certificate
) -> None:
    from tests.conftest import PROJECT_DIR

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cogment.orchestrator",
            "--file",
            str(PROJECT_DIR / "cogment.yaml"),
            "--port",
            "0",
            "--tls-cert",
            str(tls_certificate.cert),
            "--tls-key",
            str(tls_certificate.key),
            "--tls-ca",
            str(tls_certificate.cert),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(r"^orchestrator listening on (grpcs://127\.0\.0\.1:\d+) \(project", line)
        assert match, line
        with Connection(
            cog_settings, match.group(1), tls_ca=tls_certificate.cert, timeout=TIMEOUT
        ) as conn:
            assert conn.version()["cogment-api"]
        process.terminate()
        _, stderr = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0
        assert "serving TLS on 127.0.0.1:" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--tls-cert", "{cert}"], "error: --tls-cert and --tls-key go together"),
        (["--tls-key", "{key}"], "error: --tls-cert and --tls-key go together"),
        (
            ["--tls-cert", "{missing}", "--tls-key", "{key}"],
            "error: cannot read the TLS certificate {missing}: No such file or directory",
        ),
        (
            ["--tls-cert", "{key}", "--tls-key", "{key}"],
            "error: the TLS certificate {key} is not a PEM certificate",
        ),
        (
            ["--tls-cert", "{cert}", "--tls-key", "{other_key}"],
            "error: the TLS key {other_key} does not match the certificate {cert}",
        ),
        (["--tls-ca", "{key}"], "error: the TLS CA file {key} is not a PEM certificate"),
    ],
)
def test_the_command_line_names_a_wrong_tls_file_in_one_line(
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    tls_certificate: Certificate,
    other_certificate: Certificate,
    arguments: list[str],
    message: str,
) -> None:
    from cogment.orchestrator.cli import main
    from tests.conftest import PROJECT_DIR

    files = {
        "cert": tls_certificate.cert,
        "key": tls_certificate.key,
        "other_key": other_certificate.key,
        "missing": tmp_path / "missing.pem",
    }
    arguments = [a.format(**files) for a in arguments]
    port = str(free_port())
    assert main(["--file", str(PROJECT_DIR / "cogment.yaml"), "--port", port, *arguments]) == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith(message.format(**files)), stderr
    assert stderr.count("\n") == 1, stderr
