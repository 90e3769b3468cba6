"""TLS: certificate files read and checked in one place, and the gRPC credentials made of them.

A port serves TLS with a certificate (chain) and its private key, two PEM files (`tls_cert`,
`tls_key`). A caller of a `grpcs://` endpoint checks the server's certificate against the CA
certificates of a PEM file it names (`tls_ca`) or, by default, the system's CA bundle (what
`ssl.get_default_verify_paths()` finds, `SSL_CERT_FILE` included; gRPC's own bundled roots
where there is none, or when `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` names other roots). The
certificate must name the host the caller writes (a DNS or IP subject alternative name).
Client certificates (mutual TLS) are not asked for.

A file that cannot be read or is not what it must be is a `ConfigurationError` of one line
naming it. `explained` words what gRPC says when a TLS handshake fails, or when a TLS port
closes a plaintext call.
"""

from __future__ import annotations

import functools
import os
import re
import ssl
from typing import Optional, Union

import grpc

from cogment.errors import ConfigurationError

FilePath = Union[str, "os.PathLike[str]"]
"""A file path, as text or as a path object."""

CANNOT_READ = "cannot read the TLS {what} {path}: {reason}"
NOT_PEM = "the TLS {what} {path} is not {expected}"
PAIR = "{cert} and {key} go together: give both (PEM files) or neither"
KEY_MISMATCH = "the TLS key {key} does not match the certificate {cert}"
ENCRYPTED_KEY = (
    "the TLS key {path} is encrypted: gRPC needs it without a passphrase "
    "(openssl pkey -in {path} -out plain-key.pem)"
)

# What a caller is told of a failed TLS handshake, or of a plaintext call a TLS port closed
NOT_TLS = "TLS handshake failed: the port does not serve TLS (a plaintext port is grpc://)"
UNTRUSTED = (
    "TLS handshake failed: the server's certificate is not trusted ({reason}); name the CA "
    "that signed it (tls_ca, --tls-ca)"
)
WRONG_HOST = "TLS handshake failed: the server's certificate does not name the host called"
HANDSHAKE = "TLS handshake failed"
MAYBE_TLS = "the port closed the connection: if it serves TLS, call it with grpcs://"

_PEM_CERTIFICATE = "a PEM certificate (-----BEGIN CERTIFICATE-----)"
_PEM_KEY = "a PEM private key (-----BEGIN ... PRIVATE KEY-----)"
_UNTRUSTED_REASON = re.compile(r"CERTIFICATE_VERIFY_FAILED: ([^:]+)")


def _read(path: FilePath, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise ConfigurationError(
            CANNOT_READ.format(what=what, path=os.fspath(path), reason=error.strerror or error)
        ) from None


def read_certificates(path: FilePath, what: str = "certificate") -> bytes:
    """The bytes of a PEM file of one or more certificates, checked.

    Raises:
        ConfigurationError: it cannot be read or holds no PEM certificate (named).
    """
    data = _read(path, what)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii"))
    except (UnicodeDecodeError, ssl.SSLError, ValueError):
        raise ConfigurationError(
            NOT_PEM.format(what=what, path=os.fspath(path), expected=_PEM_CERTIFICATE)
        ) from None
    return data


def _no_passphrase() -> bytes:
    return b""  # never prompts on a terminal; an encrypted key then fails to load


def server_credentials(
    cert: Optional[FilePath],
    key: Optional[FilePath],
    names: tuple[str, str] = ("tls_cert", "tls_key"),
) -> Optional[grpc.ServerCredentials]:
    """What a port serves TLS with: the certificate (chain) `cert` and its private key `key`,
    PEM files; None when neither is given.

    Args:
        names: how the caller names the two (in the error when only one is given).

    Raises:
        ConfigurationError: one without the other, a file that cannot be read, is not PEM,
            is an encrypted key, or a key of another certificate (named in one line).
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigurationError(PAIR.format(cert=names[0], key=names[1]))
    chain = read_certificates(cert)
    private_key = _read(key, "key")
    key_path = os.fspath(key)
    if b"ENCRYPTED" in private_key:
        raise ConfigurationError(ENCRYPTED_KEY.format(path=key_path))
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
            os.fspath(cert), key_path, password=_no_passphrase
        )
    except (ssl.SSLError, OSError, ValueError) as error:
        # OpenSSL says "PEM lib" when the key does not parse; anything else about a key that
        # parsed (KEY_VALUES_MISMATCH, NO_CERTIFICATE_ASSIGNED for another key type) is a
        # key of another certificate
        if isinstance(error, ssl.SSLError) and "PEM lib" not in str(error):
            raise ConfigurationError(
                KEY_MISMATCH.format(key=key_path, cert=os.fspath(cert))
            ) from None
        raise ConfigurationError(
            NOT_PEM.format(what="key", path=key_path, expected=_PEM_KEY)
        ) from None
    return grpc.ssl_server_credentials([(private_key, chain)])


@functools.lru_cache(maxsize=1)
def add_port(
    server: Union[grpc.Server, grpc.aio.Server],
    address: str,
    credentials: Optional[grpc.ServerCredentials],
) -> int:
    """Has `server` listen on `address` ("host:port"), with TLS when `credentials` are
    given, in plaintext otherwise. Returns the port bound, 0 when the address cannot be
    bound (in use, or invalid)."""
    try:
        if credentials is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, credentials)
    except RuntimeError:
        return 0


def system_roots() -> Optional[bytes]:
    """The system's CA bundle (None: let gRPC use its own roots, or those of
    GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)."""
    if os.environ.get("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"):
        return None
    cafile = ssl.get_default_verify_paths().cafile
    if not cafile:
        return None
    try:
        with open(cafile, "rb") as f:
            return f.read() or None
    except OSError:
        return None


def channel_credentials(ca: Optional[FilePath] = None) -> grpc.ChannelCredentials:
    """What a caller of `grpcs://` endpoints checks servers with: the CA certificates of the
    PEM file `ca`, or the system's roots.

    Raises:
        ConfigurationError: `ca` cannot be read or holds no PEM certificate.
    """
    roots = read_certificates(ca, "CA file") if ca is not None else system_roots()
    return grpc.ssl_channel_credentials(root_certificates=roots)


def explanation(details: str, secure: bool) -> str:
    """What a failed call's gRPC `details` say of TLS ("" when nothing): `secure` tells
    whether the call was made over TLS."""
    if not secure:
        closed = "Socket closed" in details or "Connection reset" in details
        return MAYBE_TLS if closed else ""
    if "WRONG_VERSION_NUMBER" in details or "HTTP_REQUEST" in details:
        return NOT_TLS
    untrusted = _UNTRUSTED_REASON.search(details)
    if untrusted is not None:
        return UNTRUSTED.format(reason=untrusted.group(1).strip())
    if "Hostname Verification" in details or "Peer name" in details:
        return WRONG_HOST
    if "handshake" in details.lower():
        return HANDSHAKE
    return ""


def explained(details: str, secure: bool) -> str:
    """`details` led by what they say of TLS, when they say something."""
    said = explanation(details, secure)
    return f"{said} (gRPC: {details})" if said else details
