"""cogment.tls and the TLS arguments of GrpcServer, Orchestrator and Connection: a file that
cannot be used is one line naming it, before anything is served or called."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import types
from pathlib import Path
from typing import Any

import pytest

import cogment
from cogment.client import Connection
from cogment.errors import ConfigurationError
from cogment.orchestrator.endpoints import Endpoints
from cogment.tls import channel_credentials, explanation, server_credentials
from tests.certificates import OPENSSL, Certificate


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, tls_certificate: Certificate) -> Any:
    """Files that are not what a TLS argument needs: text, a DER certificate, an encrypted
    key, a folder, a missing file."""
    folder = tmp_path_factory.mktemp("bad-tls")
    text = folder / "text.pem"
    text.write_text("hello\n")
    der = folder / "cert.der"
    subprocess.run(
        [OPENSSL, "x509", "-in", str(tls_certificate.cert), "-outform", "der", "-out", str(der)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    encrypted = folder / "encrypted-key.pem"
    subprocess.run(
        [
            OPENSSL,
            "pkey",
            "-in",
            str(tls_certificate.key),
            "-aes256",
            "-passout",
            "pass:x",
            "-out",
            str(encrypted),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return types.SimpleNamespace(
        text=text, der=der, encrypted=encrypted, folder=folder, missing=folder / "missing.pem"
    )


def one_line_error(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigurationError) as raised:
        call(*args, **kwargs)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_server_credentials(
    tls_certificate: Certificate, other_certificate: Certificate, bad_files: Any
) -> None:
    cert, key = tls_certificate
    assert server_credentials(None, None) is None
    assert server_credentials(cert, key) is not None
    assert server_credentials(str(cert), str(key)) is not None
    for args in ((cert, None), (None, key)):
        assert one_line_error(server_credentials, *args) == (
            "tls_cert and tls_key go together: give both (PEM files) or neither"
        )
    assert one_line_error(server_credentials, cert, None, ("--tls-cert", "--tls-key")).startswith(
        "--tls-cert and --tls-key go together"
    )
    missing = bad_files.missing
    assert one_line_error(server_credentials, missing, key) == (
        f"cannot read the TLS certificate {missing}: No such file or directory"
    )
    assert one_line_error(server_credentials, cert, missing) == (
        f"cannot read the TLS key {missing}: No such file or directory"
    )
    assert one_line_error(server_credentials, bad_files.folder, key) == (
        f"cannot read the TLS certificate {bad_files.folder}: Is a directory"
    )
    for not_a_certificate in (bad_files.text, bad_files.der, key):
        assert one_line_error(server_credentials, not_a_certificate, key) == (
            f"the TLS certificate {not_a_certificate} is not a PEM certificate "
            "(-----BEGIN CERTIFICATE-----)"
        )
    for not_a_key in (bad_files.text, cert):
        assert one_line_error(server_credentials, cert, not_a_key) == (
            f"the TLS key {not_a_key} is not a PEM private key (-----BEGIN ... PRIVATE KEY-----)"
        )
    assert one_line_error(server_credentials, cert, bad_files.encrypted).startswith(
        f"the TLS key {bad_files.encrypted} is encrypted: gRPC needs it without a passphrase"
    )
    assert one_line_error(server_credentials, cert, other_certificate.key) == (
        f"the TLS key {other_certificate.key} does not match the certificate {cert}"
    )


def test_channel_credentials(tls_certificate: Certificate, bad_files: Any) -> None:
    assert channel_credentials() is not None  # the system's roots
    assert channel_credentials(tls_certificate.cert) is not None
    assert one_line_error(channel_credentials, bad_files.text) == (
        f"the TLS CA file {bad_files.text} is not a PEM certificate (-----BEGIN CERTIFICATE-----)"
    )
    assert one_line_error(channel_credentials, bad_files.missing).startswith(
        f"cannot read the TLS CA file {bad_files.missing}: "
    )


def test_grpc_server_tls_arguments(
    cog_settings: types.ModuleType,
    project_services: types.ModuleType,
    tls_certificate: Certificate,
    bad_files: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = project_services.PlayerAgent
    cert, key = tls_certificate
    assert one_line_error(cogment.GrpcServer, agent, cog_settings, 0, tls_cert=cert) == (
        "GrpcServer: tls_cert and tls_key go together: give both (PEM files) or neither"
    )
    assert one_line_error(
        cogment.GrpcServer, agent, cog_settings, 0, tls_cert=bad_files.missing, tls_key=key
    ).startswith(f"GrpcServer: cannot read the TLS certificate {bad_files.missing}")
    with caplog.at_level(logging.INFO, logger="cogment"):
        server = cogment.GrpcServer(
            agent, cog_settings, 0, host="127.0.0.1", tls_cert=cert, tls_key=key
        )
        with server:
            assert server.tls and "tls" in repr(server)
    assert f"serving PlayerAgent on 127.0.0.1:{server.port} over TLS" in caplog.messages
    plain = cogment.GrpcServer(agent, cog_settings, 0, host="127.0.0.1")
    assert not plain.tls
    plain.stop()


def test_orchestrator_tls_arguments(
    cog_settings: types.ModuleType, tls_certificate: Certificate, bad_files: Any
) -> None:
    assert one_line_error(cogment.Orchestrator, cog_settings, tls_key=tls_certificate.key) == (
        "tls_cert and tls_key go together: give both (PEM files) or neither"
    )
    assert one_line_error(cogment.Orchestrator, cog_settings, tls_ca=bad_files.text) == (
        f"the TLS CA file {bad_files.text} is not a PEM certificate (-----BEGIN CERTIFICATE-----)"
    )
    plain = cogment.Orchestrator(cog_settings)
    assert not plain.tls


def test_connection_tls_arguments(
    cog_settings: types.ModuleType, tls_certificate: Certificate, bad_files: Any
) -> None:
    cert = tls_certificate.cert
    for endpoint in ("127.0.0.1:9000", "grpc://127.0.0.1:9000"):
        assert one_line_error(Connection, cog_settings, endpoint, tls_ca=cert) == (
            "Connection: tls_ca is for an orchestrator called over TLS, at grpcs://host:port; "
            f"got {endpoint!r}"
        )
    assert one_line_error(
        Connection, cog_settings, "grpcs://127.0.0.1:9000", tls_ca=bad_files.missing
    ).startswith(f"cannot read the TLS CA file {bad_files.missing}")
    with Connection(cog_settings, "grpcs://localhost:9000", tls_ca=cert) as conn:
        assert conn.endpoint == "grpcs://localhost:9000"
    with Connection(cog_settings, "grpc://localhost:9000") as conn:
        assert conn.endpoint == "localhost:9000"


def test_one_address_has_a_plaintext_and_a_tls_channel(tls_certificate: Certificate) -> None:
    async def channels() -> None:
        endpoints = Endpoints(tls_certificate.cert)
        plain = endpoints.channel("grpc://127.0.0.1:9001")
        secure = endpoints.channel("grpcs://127.0.0.1:9001")
        assert plain is not secure
        assert endpoints.channel("grpc://127.0.0.1:9001") is plain
        assert endpoints.channel("127.0.0.1:9001") is plain
        assert endpoints.channel("grpcs://127.0.0.1:9001") is secure
        assert endpoints.agent("grpcs://127.0.0.1:9001") is not endpoints.agent(
            "grpc://127.0.0.1:9001"
        )
        assert len(endpoints) == 2
        with pytest.raises(ConfigurationError, match="'human' is not a service endpoint"):
            endpoints.channel("human")
        await endpoints.close()

    asyncio.run(channels())


@pytest.mark.parametrize(
    ("details", "secure", "said"),
    [
        ("failed to connect to all addresses; last error: ...: Socket closed", False, "grpcs://"),
        ("... Connection reset by peer", False, "grpcs://"),
        ("failed to connect to all addresses; Connection refused", False, ""),
        ("... SSL_ERROR_SSL: ...:WRONG_VERSION_NUMBER: ...", True, "does not serve TLS"),
        (
            "Tls handshake failed ...:CERTIFICATE_VERIFY_FAILED: certificate has expired: OK",
            True,
            "not trusted (certificate has expired)",
        ),
        ("Custom verification check failed ... Hostname Verification Check failed.", True, "host"),
        ("Tls handshake failed (TSI_PROTOCOL_FAILURE): something else", True, "handshake"),
        ("failed to connect to all addresses; Connection refused", True, ""),
    ],
)
def test_what_grpc_says_of_tls_is_explained(details: str, secure: bool, said: str) -> None:
    text = explanation(details, secure)
    assert said in text if said else text == ""


def test_a_certificate_of_another_host_is_refused(
    tmp_path: Path,
    cog_settings: types.ModuleType,
    project_services: types.ModuleType,
) -> None:
    from tests.certificates import make_certificate

    cert, key = make_certificate(tmp_path, "elsewhere", hosts="DNS:example.com")
    with cogment.Orchestrator(cog_settings, tls_cert=cert, tls_key=key) as orch:
        conn = Connection(cog_settings, orch.endpoint, tls_ca=cert, timeout=10)
        with conn, pytest.raises(cogment.CogmentRpcError) as info:
            conn.version()
    assert info.value.message.startswith(
        f"cannot reach the orchestrator at {orch.endpoint}: TLS handshake failed: the server's "
        "certificate does not name the host called"
    )
