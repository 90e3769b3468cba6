"""`cogment orchestrator` reports a broken project in one line, without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_PROTO = Path(__file__).resolve().parents[1] / "project" / "data.proto"
YAML = """
import:
  proto: [data.proto]
  python: [boom]
actor_classes:
  - id: player
    action: {space: testproject.Move}
    observation: {space: testproject.Board}
"""


def test_a_project_module_failing_at_import_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data.proto").write_text(PROJECT_PROTO.read_text())
    (tmp_path / "cogment.yaml").write_text(YAML)
    (tmp_path / "boom.py").write_text('raise RuntimeError("oops at import")\n')
    result = subprocess.run(
        [sys.executable, "-m", "cogment.cli", "orchestrator", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'cogment.yaml'}: cannot load the project's settings "
        "(RuntimeError: oops at import)"
    )
