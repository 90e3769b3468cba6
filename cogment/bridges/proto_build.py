"""Regenerates cogment/bridges/cogment_bridges_pb2.py(i) from cogment_bridges.proto.

Run with `poetry run task api` (with the Cogment API modules). The file is compiled under its
bare name, `cogment_bridges.proto`, as `cogment generate` compiles the copy a project holds
(see `cogment.bridges.messages`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from cogment.errors import ConfigurationError
from cogment.protoc import compile_protos

BRIDGES_DIR = os.path.dirname(os.path.abspath(__file__))
PROTO_NAME = "cogment_bridges.proto"
PROTO_PATH = os.path.join(BRIDGES_DIR, PROTO_NAME)
MODULE_STEM = "cogment_bridges_pb2"


def build(out_dir: str = BRIDGES_DIR) -> None:
    """Compiles cogment_bridges.proto into `out_dir` (module and .pyi stub)."""
    with tempfile.TemporaryDirectory() as tmp:
        compile_protos([PROTO_NAME], [BRIDGES_DIR], tmp, grpc=False, pyi=True)
        for suffix in (".py", ".pyi"):
            shutil.copy(os.path.join(tmp, MODULE_STEM + suffix), out_dir)


def main() -> int:
    try:
        build()
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"generated {os.path.join(BRIDGES_DIR, MODULE_STEM)}.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
