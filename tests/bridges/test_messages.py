"""The bridge's proto and modules: the committed module matches its .proto, a project's copy
loads beside it, and the extras stay optional."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from cogment.bridges import proto_build
from cogment.protoc import compile_protos
from tests.test_protocol import strip_json_names

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_committed_module_matches_the_proto_file() -> None:
    """Fails when cogment_bridges.proto was edited without `poetry run task api`."""
    from cogment.bridges import cogment_bridges_pb2

    with tempfile.TemporaryDirectory() as tmp:
        descriptors = os.path.join(tmp, "set.pb")
        compile_protos(
            [proto_build.PROTO_NAME],
            [proto_build.BRIDGES_DIR],
            tmp,
            grpc=False,
            descriptor_set_out=descriptors,
        )
        files = descriptor_pb2.FileDescriptorSet()
        with open(descriptors, "rb") as f:
            files.ParseFromString(f.read())
    compiled = next(p for p in files.file if p.name == proto_build.PROTO_NAME)
    compiled.ClearField("source_code_info")
    strip_json_names(compiled.message_type)
    generated = descriptor_pb2.FileDescriptorProto()
    generated.ParseFromString(cogment_bridges_pb2.DESCRIPTOR.serialized_pb)
    assert generated == compiled, "cogment_bridges_pb2.py is stale: run `poetry run task api`"
    assert generated.package == "cogment_bridges" and not generated.dependency


def test_import_cogment_does_not_import_the_extras() -> None:
    result = run_python(
        """
        import sys
        import cogment, cogment.client, cogment.cli
        from cogment.cli import build_parser
        build_parser("gym")  # `cogment gym --help` needs no extra either
        build_parser("pettingzoo")
        loaded = sorted(m for m in ("gymnasium", "numpy", "pettingzoo") if m in sys.modules)
        print(loaded)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


MISSING = [  # (module imported, package blocked, what the error names)
    (
        "cogment.gym",
        "numpy",
        'gymnasium and numpy, which are not installed: pip install "cogment[gym]"',
    ),
    ("cogment.gym", "gymnasium", 'gymnasium, which is not installed: pip install "cogment[gym]"'),
    (
        "cogment.pettingzoo",
        "pettingzoo",
        'pettingzoo, which is not installed: pip install "cogment[pettingzoo]"',
    ),
]


def test_a_missing_extra_is_named_with_its_install_command() -> None:
    """In one fresh interpreter: each package blocked in turn (as if not installed), then the
    CLI with gymnasium blocked (one line on stderr, exit 1)."""
    result = run_python(
        f"""
        import contextlib, importlib, io, sys
        for module, blocked, _ in {MISSING!r}:
            sys.modules.pop(module, None)
            saved = sys.modules.get(blocked)
            sys.modules[blocked] = None
            try:
                importlib.import_module(module)
            except ImportError as error:
                print(error)
            if saved is None:
                del sys.modules[blocked]
            else:
                sys.modules[blocked] = saved
        sys.modules["gymnasium"] = None
        from cogment.cli import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["gym", "serve", "CartPole-v1", "--port", "0"])
        print(code, repr(err.getvalue()))
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[:3] == [f"{module} needs {missing}" for module, _, missing in MISSING]
    expected = (
        'error: cogment gym needs gymnasium, which is not installed: pip install "cogment[gym]"'
    )
    assert lines[3] == f"1 {expected + chr(10)!r}"


def test_another_copy_of_the_proto_is_refused_by_name(tmp_path: Any) -> None:
    """A project's cogment_bridges.proto from another cogment version (here: one more field)
    cannot share the process with the package's: the error says what to do."""
    with open(proto_build.PROTO_PATH, encoding="utf-8") as f:
        text = f.read().replace("  string agent = 8;", "  string agent = 8;\n  int32 extra = 9;")
    (tmp_path / proto_build.PROTO_NAME).write_text(text)
    compile_protos([proto_build.PROTO_NAME], [str(tmp_path)], str(tmp_path), grpc=False)
    result = run_python(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import cogment_bridges_pb2  # the project's (other) copy, loaded first
        from cogment.bridges import messages
        try:
            messages.module()
        except Exception as error:
            print(f"{{type(error).__name__}}: {{error}}")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ConfigurationError: this process already loaded another")
    assert "`cogment gym init` writes it" in result.stdout


@pytest.mark.parametrize("name", ["cogment.gym", "cogment.pettingzoo"])
def test_the_public_names_are_curated(name: str) -> None:
    pytest.importorskip("pettingzoo")
    module = importlib.import_module(name)
    names = list(module.__all__)
    assert names == sorted(names) and len(set(names)) == len(names)
    for public in names:
        assert hasattr(module, public), public
    defined = {k for k in vars(module) if not k.startswith("_")} - {"annotations"}
    assert defined == set(names), defined ^ set(names)
