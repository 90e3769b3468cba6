"""`cogment launch` with TLS: the `tls` section, its placeholders and checks, the in-process
orchestrator serving TLS, and the Version checks of services on TLS ports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cogment.launch_config import LaunchConfig, LaunchError, endpoint_warnings, load_launch_config
from tests.certificates import Certificate
from tests.conftest import PROJECT_DIR
from tests.launch.conftest import run_launch, write_launch_file

CLIENT = "client:\n  command: python client.py\n"

# a client of the in-process orchestrator: what it answers, over TLS
CLIENT_SCRIPT = """\
import sys

import cog_settings
from cogment.client import Connection

with Connection(cog_settings, sys.argv[1], tls_ca=sys.argv[2], timeout=10) as conn:
    print("api", conn.version()["cogment-api"])
    print("environment", conn.get_trial_params().environment.endpoint)
"""


def tls_folder(tmp_path: Path, certificate: Certificate) -> Path:
    """A folder with the certificate as cert.pem and key.pem."""
    shutil.copy(certificate.cert, tmp_path / "cert.pem")
    shutil.copy(certificate.key, tmp_path / "key.pem")
    return tmp_path


def load(tmp_path: Path, text: str) -> LaunchConfig:
    path = tmp_path / "launch.yaml"
    path.write_text(text, encoding="utf-8")
    return load_launch_config(str(path))


def test_the_tls_section(tmp_path: Path, tls_certificate: Certificate) -> None:
    folder = tls_folder(tmp_path, tls_certificate)
    config = load(
        folder,
        "tls: {cert: cert.pem, key: key.pem, ca: cert.pem}\n"
        "orchestrator: {port: 9000}\n"
        "services:\n"
        "  - {name: env, command: x, port: 9001}\n"
        "  - {name: plain, command: x, port: 9002, tls: false}\n" + CLIENT,
    )
    assert config.tls is not None
    assert (config.tls.cert, config.tls.key, config.tls.ca) == (
        str(folder / "cert.pem"),
        str(folder / "key.pem"),
        str(folder / "cert.pem"),
    )
    assert config.orchestrator_tls
    assert [(s.name, s.tls) for s in config.services] == [("env", True), ("plain", False)]
    assert config.tls_ports() == {9000, 9001}
    assert config.tls.placeholders() == {
        "tls_cert": str(folder / "cert.pem"),
        "tls_key": str(folder / "key.pem"),
        "tls_ca": str(folder / "cert.pem"),
    }
    plain = load(
        folder, "orchestrator: {port: 9000}\nservices:\n  - {name: a, command: x}\n" + CLIENT
    )
    assert plain.tls is None and not plain.orchestrator_tls and not plain.services[0].tls
    no_ca = load(
        folder,
        "tls: {cert: cert.pem, key: key.pem}\norchestrator: {port: 9000, tls: false}\n" + CLIENT,
    )
    assert no_ca.tls is not None and no_ca.tls.ca is None and not no_ca.orchestrator_tls
    assert "tls_ca" not in no_ca.tls.placeholders()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls: {cert: cert.pem}\n", "tls: missing key 'key'"),
        ("tls: {key: key.pem}\n", "tls: missing key 'cert'"),
        ("tls: cert.pem\n", "tls: must be a map, not str"),
        ("tls: {cert: cert.pem, key: key.pem, crt: x}\n", "tls: unknown key 'crt'"),
        (
            "tls: {cert: missing.pem, key: key.pem}\n",
            "tls: cannot read the TLS certificate {folder}/missing.pem: No such file",
        ),
        (
            "tls: {cert: key.pem, key: key.pem}\n",
            "tls: the TLS certificate {folder}/key.pem is not a PEM certificate",
        ),
        (
            "tls: {cert: cert.pem, key: cert.pem}\n",
            "tls: the TLS key {folder}/cert.pem is not a PEM private key",
        ),
        (
            "tls: {cert: cert.pem, key: key.pem, ca: key.pem}\n",
            "tls: the TLS CA file {folder}/key.pem is not a PEM certificate",
        ),
        (
            "orchestrator: {port: 9000, tls: true}\n",
            "orchestrator.tls: needs the `tls` section (its cert and key)",
        ),
        (
            "tls: {cert: cert.pem, key: key.pem}\nservices:\n  - {name: a, command: x, tls: yes please}\n",
            "services[0].tls: must be true or false, not 'yes please'",
        ),
    ],
)
def test_tls_mistakes_are_one_line(
    tmp_path: Path, tls_certificate: Certificate, text: str, message: str
) -> None:
    folder = tls_folder(tmp_path, tls_certificate)
    with pytest.raises(LaunchError) as raised:
        load(folder, text + CLIENT)
    error = str(raised.value)
    assert error.startswith(f"{folder / 'launch.yaml'}: "), error
    assert message.format(folder=folder) in error
    assert "\n" not in error


def test_warnings_name_an_endpoint_of_the_other_scheme(
    tmp_path: Path, tls_certificate: Certificate
) -> None:
    folder = tls_folder(tmp_path, tls_certificate)
    (folder / "cogment.yaml").write_text(
        "actor_classes:\n"
        "  - {id: player, action: {space: game.Move}, observation: {space: game.Board}}\n"
        "trial_params:\n"
        "  environment: {endpoint: 'grpc://localhost:9102'}\n"
        "  actors:\n"
        "    - {actor_class: player, endpoint: 'grpcs://localhost:9101'}\n",
        encoding="utf-8",
    )
    config = load(
        folder,
        "tls: {cert: cert.pem, key: key.pem}\n"
        "orchestrator: {port: 9100}\n"
        "services:\n"
        "  - {name: agents, command: x, port: 9101, tls: false}\n"
        "  - {name: environment, command: x, port: 9102}\n" + CLIENT,
    )
    client = ["python", "client.py", "localhost:9100"]
    assert endpoint_warnings(config, client) == [
        "cogment.yaml: the endpoint of the environment is grpc://localhost:9102, but "
        "environment serves TLS on port 9102 (call it at grpcs://)",
        "cogment.yaml: the endpoint of actor 0 (player) is grpcs://localhost:9101, but agents "
        "serves plaintext on port 9101 (call it at grpc://, or set its tls)",
        "the client command connects to localhost:9100, but orchestrator serves TLS on port "
        "9100 (call it at grpcs://)",
    ]
    client = ["python", "client.py", "grpcs://localhost:9100"]
    assert len(endpoint_warnings(config, client)) == 2


def test_launch_serves_and_checks_tls(tmp_path: Path, tls_certificate: Certificate) -> None:
    folder = tls_folder(tmp_path, tls_certificate)
    for name in ("data.proto", "delta.py"):
        shutil.copy(PROJECT_DIR / name, folder / name)
    project = (PROJECT_DIR / "cogment.yaml").read_text(encoding="utf-8")
    assert "grpc://127.0.0.1:9002" in project
    (folder / "cogment.yaml").write_text(project.replace("grpc://", "grpcs://"))
    (folder / "client.py").write_text(CLIENT_SCRIPT, encoding="utf-8")
    write_launch_file(
        folder,
        "generate: {python_dir: .}\n"
        "tls: {cert: cert.pem, key: key.pem, ca: cert.pem}\n"
        "orchestrator: {port: 9000}\n"
        "startup_timeout: 20\n"
        "services:\n"
        "  - name: environment\n"
        "    command: python version_server.py --port {port} --tls-cert {tls_cert} "
        "--tls-key {tls_key}\n"
        "    port: 9002\n"
        "  - {name: plain, command: 'python version_server.py --port {port}', port: 9005, "
        "tls: false}\n"
        "client:\n"
        "  command: python client.py grpcs://localhost:{orchestrator_port} {tls_ca}\n",
    )
    run = run_launch(str(folder / "launch.yaml"), "--free-ports", timeout=90)
    assert run.returncode == 0, run.stdout + run.stderr
    launch = run.lines("launch")
    assert any(
        line.startswith("environment answers on port ") and "(TLS)" in line for line in launch
    )
    assert any(line.startswith("plain answers on port ") and "TLS" not in line for line in launch)
    assert any(line.startswith("orchestrator listening on grpcs://") for line in launch), launch
    client = run.lines("client")
    assert client[0].startswith("api v")
    # --free-ports moved the project's grpcs:// endpoint to the environment's port, still TLS
    assert client[1].startswith("environment grpcs://127.0.0.1:"), client
    assert client[1] != "environment grpcs://127.0.0.1:9002"


def test_a_plaintext_service_where_tls_is_expected_stops_launch_at_once(
    tmp_path: Path, tls_certificate: Certificate
) -> None:
    folder = tls_folder(tmp_path, tls_certificate)
    write_launch_file(
        folder,
        "tls: {cert: cert.pem, key: key.pem, ca: cert.pem}\n"
        "startup_timeout: 60\n"  # not waited for: the handshake's failure is final
        "services:\n"
        "  - {name: env, command: 'python version_server.py --port {port}', port: 9002}\n"
        "client:\n  command: python -c pass\n",
    )
    run = run_launch(str(folder / "launch.yaml"), "--free-ports", timeout=50)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("cogment launch: error: service 'env' on port "), lines[0]
    assert "TLS handshake failed: the port does not serve TLS" in lines[0]
    assert (
        f"; services[0].tls is true in {folder / 'launch.yaml'} (`tls: false` marks a plaintext "
        "port)" in lines[0]
    )
