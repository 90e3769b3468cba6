"""Regenerates cogment/api/*_pb2*.py from the protocol's .proto files.

Run with `poetry run task api`. `.cogment-api.yaml` at the project root names the protocol
version and, with `cogment_api_path`, an alternative folder holding the .proto files.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import yaml

from cogment.errors import ConfigurationError
from cogment.protoc import compile_protos

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
API_DIR = os.path.join(PACKAGE_DIR, "api")
ROOT_DIR = os.path.dirname(PACKAGE_DIR)
API_FILES = ("common", "agent", "environment", "orchestrator", "hooks", "data")
# cogment-py's own extensions: always built from cogment/api (never from cogment_api_path)
EXTENSION_FILES = ("datalog_ext", "stream")


def read_api_config(root: str = ROOT_DIR) -> dict[str, str]:
    """Reads .cogment-api.yaml; returns {} when the file is absent (e.g. an installed wheel)."""
    path = os.path.join(root, ".cogment-api.yaml")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: expected a map of settings")
    return {str(k): str(v) for k, v in data.items()}


def build(proto_dir: str | None = None, out_dir: str = API_DIR) -> None:
    """Compiles the six API .proto files of `proto_dir`, and cogment-py's extensions, into
    `out_dir` (with .pyi stubs)."""
    if proto_dir is None:
        config = read_api_config()
        path = config.get("cogment_api_path")
        proto_dir = os.path.join(ROOT_DIR, path) if path else API_DIR
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "cogment", "api")
        os.makedirs(target)
        for name in API_FILES:
            source = os.path.join(proto_dir, f"{name}.proto")
            if not os.path.exists(source):
                raise ConfigurationError(f"{source}: missing API proto file")
            shutil.copy(source, target)
        for name in EXTENSION_FILES:
            shutil.copy(os.path.join(API_DIR, f"{name}.proto"), target)
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        names = API_FILES + EXTENSION_FILES
        compile_protos(
            [f"cogment/api/{name}.proto" for name in names], [tmp], out, grpc=True, pyi=True
        )
        generated = os.path.join(out, "cogment", "api")
        for name in sorted(os.listdir(generated)):
            shutil.copy(os.path.join(generated, name), out_dir)
        if os.path.abspath(proto_dir) != os.path.abspath(out_dir):
            for name in API_FILES:
                shutil.copy(os.path.join(target, f"{name}.proto"), out_dir)


def main() -> int:
    try:
        build()
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"generated the API modules in {API_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
