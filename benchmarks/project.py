"""The benchmark project (benchmarks/project/): generated settings and per-scenario YAML.

At run time the project is copied into a temporary folder, its settings generated there
with `cogment.generate`, and each cogment scenario gets its own cogment.yaml with the real
endpoints, the actor list and the environment config of that scenario. The soak's project
(benchmarks/soak_project/) is handled the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Optional

import yaml

PROJECT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "project")


class BenchProject:
    """A temporary copy of a benchmark project (the files of `source`) with its settings
    generated."""

    def __init__(self, source: str = PROJECT_DIR) -> None:
        self.source = source
        self.root = tempfile.mkdtemp(prefix="cogment-bench-")
        self.project_dir = os.path.join(self.root, "project")
        self.settings_dir = os.path.join(self.root, "settings")
        os.makedirs(self.project_dir)
        for name in sorted(os.listdir(source)):
            if os.path.isfile(os.path.join(source, name)):
                shutil.copy(os.path.join(source, name), self.project_dir)
        self._count = 0
        self._generated = False

    def settings(self) -> str:
        """Generates cog_settings.py (once) and returns the folder that holds it."""
        if not self._generated:
            from cogment.generate import generate

            generate(os.path.join(self.project_dir, "cogment.yaml"), self.settings_dir)
            self._generated = True
        return self.settings_dir

    def write_yaml(
        self,
        *,
        env_port: int,
        agent_port: int,
        agents: int,
        human: bool,
        payload: int = 16,
        delta: bool = False,
        datalog: Optional[dict[str, Any]] = None,
    ) -> str:
        """A cogment.yaml for one scenario (with that `datalog:` section, if any); returns
        its path."""
        doc = self.template()
        actors: list[dict[str, Any]] = []
        if human:
            actors.append({"actor_class": "player", "endpoint": "human"})
        actors += [
            {"actor_class": "player", "endpoint": f"grpc://127.0.0.1:{agent_port}"}
            for _ in range(agents)
        ]
        doc["trial_params"] = {
            "max_steps": 0,
            "max_inactivity": 0,
            "environment": {
                "endpoint": f"grpc://127.0.0.1:{env_port}",
                "config": {"payload": payload, "delta": delta},
            },
            "actors": actors,
        }
        if datalog is not None:
            doc["datalog"] = datalog
        return self.write_doc(doc)

    def template(self) -> dict[str, Any]:
        """The project's own cogment.yaml, parsed."""
        with open(os.path.join(self.source, "cogment.yaml"), encoding="utf-8") as f:
            doc: dict[str, Any] = yaml.safe_load(f)
        return doc

    def write_doc(self, doc: dict[str, Any]) -> str:
        """Writes `doc` as a new cogment.yaml next to the project's files; returns its path."""
        self._count += 1
        path = os.path.join(self.project_dir, f"scenario{self._count}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        return path

    def new_store(self) -> str:
        """The path of a new (absent) datalog store in the temporary folder."""
        self._count += 1
        return os.path.join(self.root, f"trials{self._count}.db")

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
