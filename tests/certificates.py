"""Self-signed certificates for the TLS tests, made with the `openssl` command line.

`make_certificate(folder, name)` writes `<name>-cert.pem` and `<name>-key.pem` (an EC P-256
key: fast to make) for the hosts 127.0.0.1 and localhost, valid for a day, and returns their
paths. A self-signed certificate is its own CA: callers pass the certificate as `tls_ca`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


class Certificate(NamedTuple):
    cert: Path
    key: Path


def make_certificate(
    folder: Path, name: str = "server", hosts: str = "DNS:localhost,IP:127.0.0.1"
) -> Certificate:
    """A self-signed certificate and its key for `hosts` (a subjectAltName value)."""
    cert, key = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    subprocess.run(
        [
            OPENSSL,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName={hosts}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return Certificate(cert, key)
