"""Compiles .proto files in-process with grpcio-tools (no protoc install needed)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from cogment.errors import ConfigurationError


def well_known_protos_dir() -> str:
    """The folder holding google/protobuf/*.proto as bundled with grpcio-tools."""
    import grpc_tools

    return os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")


def compile_protos(
    proto_files: Sequence[str],
    include_dirs: Iterable[str],
    out_dir: str,
    *,
    grpc: bool = True,
    pyi: bool = False,
    descriptor_set_out: str | None = None,
) -> None:
    """Compiles `proto_files` (paths relative to one of `include_dirs`) into `out_dir`.

    Raises:
        ConfigurationError: protoc rejected the files; the message holds its diagnostics.
    """
    import contextlib
    import io
    import sys
    import tempfile

    from grpc_tools import protoc

    args = ["grpc_tools.protoc", f"-I{well_known_protos_dir()}"]
    args += [f"-I{d}" for d in include_dirs]
    args.append(f"--python_out={out_dir}")
    if grpc:
        args.append(f"--grpc_python_out={out_dir}")
    if pyi:
        args.append(f"--pyi_out={out_dir}")
    if descriptor_set_out:
        args += ["--include_imports", f"--descriptor_set_out={descriptor_set_out}"]
    args += list(proto_files)
    # protoc writes its diagnostics to the process's stderr (fd 2); capture them.
    with tempfile.TemporaryFile(mode="w+b") as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(captured.fileno(), 2)
            with contextlib.redirect_stderr(io.StringIO()):
                status = protoc.main(args)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        diagnostics = captured.read().decode(errors="replace").strip()
    if status != 0:
        detail = diagnostics or "protoc failed"
        raise ConfigurationError(f"cannot compile {', '.join(proto_files)}: {detail}")
