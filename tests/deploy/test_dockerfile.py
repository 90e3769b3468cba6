"""deploy/Dockerfile and deploy/city/Dockerfile, read (no Docker engine runs here): the base
image installs the package with the main README's install step, from a pinned Python, as a
non-root user; the city image builds on it."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import dockerfile
from tests.deploy.cluster import (
    BASE_DOCKERFILE,
    BASE_IMAGE,
    CITY_DOCKERFILE,
    CITY_IMAGE,
    REPO,
)

PIP_NEUTRAL = ("--no-cache-dir",)  # options that change how pip installs, not what
INSTALLERS = ("pip", "pip3", "poetry")


def read_pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.9 and 3.10
        tomllib = pytest.importorskip("tomli")
    with (REPO / "pyproject.toml").open("rb") as f:
        return dict(tomllib.load(f))


def readme_install_steps() -> list[list[str]]:
    """The install commands of the main README's Quick start (its set-up line and the pip
    alternative it gives), split into words."""
    text = (REPO / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    steps = [["pip", "install", spec] for spec in re.findall(r'pip install "([^"]+)"', quick_start)]
    steps += [
        line.split("#")[0].split() for line in re.findall(r"^poetry install.*$", quick_start, re.M)
    ]
    assert steps, "the README's Quick start has no install step"
    return steps


def install_steps(path: Path) -> list[list[str]]:
    """The RUN commands of a Dockerfile that install Python packages, as written."""
    steps = []
    for ins in dockerfile.read(path):
        if ins.keyword == "RUN":
            for command in dockerfile.shell_commands(ins):
                if command[:3] in (["python", "-m", "pip"], ["python3", "-m", "pip"]):
                    command = command[2:]
                if command[0] in INSTALLERS:
                    steps.append(command)
    return steps


def test_the_image_installs_the_package_with_the_readme_install_step() -> None:
    (step,) = install_steps(BASE_DOCKERFILE)
    assert "--no-cache-dir" in step  # no pip cache left in the image
    assert [w for w in step if w not in PIP_NEUTRAL] in readme_install_steps()
    spec = step[-1]
    assert spec.startswith(".[") and spec.endswith("]"), "the package, from its source"
    extras = spec[2:-1].split(",")
    assert "web" in extras  # cogment web, for the humans
    assert set(extras) <= set(read_pyproject()["tool"]["poetry"]["extras"])
    # the city image installs nothing more, and no other package manager runs
    assert install_steps(CITY_DOCKERFILE) == []
    for path in (BASE_DOCKERFILE, CITY_DOCKERFILE):
        for ins in dockerfile.read(path):
            if ins.keyword == "RUN":
                for command in dockerfile.shell_commands(ins):
                    assert command[0] in (*INSTALLERS, "cogment", "python", "useradd"), command


def test_the_readme_step_is_found_in_the_readme() -> None:
    # what the check above compares with (it would accept anything if this were empty)
    assert ["pip", "install", ".[web,gym,pettingzoo]"] in readme_install_steps()
    assert ["poetry", "install", "--all-extras"] in readme_install_steps()


def test_the_base_image_is_pinned_and_runs_as_a_user() -> None:
    instructions = dockerfile.read(BASE_DOCKERFILE)
    (base,) = [i.text for i in instructions if i.keyword == "FROM"]
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-[a-z]+", base)
    assert match, f"FROM {base}: not a pinned python:X.Y.Z-slim-DISTRO tag"
    assert (int(match[1]), int(match[2])) >= (3, 9)  # pyproject: python >= 3.9
    users = [i.text for i in instructions if i.keyword == "USER"]
    assert users and users[-1] == "10001:10001"
    runs = [c for i in instructions if i.keyword == "RUN" for c in dockerfile.shell_commands(i)]
    (useradd,) = [c for c in runs if c[0] == "useradd"]
    assert useradd[useradd.index("--uid") + 1] == "10001" and "--user-group" in useradd
    assert ["cogment", "--version"] in runs  # the command works once installed
    assert [i.text for i in instructions if i.keyword == "WORKDIR"][-1] == "/app"
    env = " ".join(i.text for i in instructions if i.keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in env  # each log line reaches `kubectl logs` at once
    for path in (BASE_DOCKERFILE, CITY_DOCKERFILE):
        keywords = {i.keyword for i in dockerfile.read(path)}
        assert "HEALTHCHECK" not in keywords, f"{path}: no health check this image could run"
        assert "ADD" not in keywords, f"{path}: COPY only"


def test_what_building_the_package_needs_is_copied(tmp_path: Path) -> None:
    image = dockerfile.stage(BASE_DOCKERFILE, REPO, tmp_path, lambda command: False)
    ((workdir, _),) = [(w, c) for w, c in image.runs if c[0] == "pip"]
    source = image.path(workdir)
    poetry = read_pyproject()["tool"]["poetry"]
    assert (source / "pyproject.toml").read_bytes() == (REPO / "pyproject.toml").read_bytes()
    assert (source / poetry["readme"]).is_file()
    for package in poetry["packages"]:
        assert (source / package["include"] / "__init__.py").is_file(), package
    for include in poetry["include"]:
        assert list(source.glob(include["path"])), f"{include['path']}: nothing copied"
    # the whole package, no more
    expected = {p.relative_to(REPO) for p in (REPO / "cogment").rglob("*.py")}
    staged = {p.relative_to(source) for p in (source / "cogment").rglob("*.py")}
    assert staged == expected


def _build_tags(path: Path) -> dict[str, str]:
    """The `docker build -f FILE -t TAG .` commands a Dockerfile's comments give."""
    found = re.findall(r"docker build -f (\S+) -t (\S+) \.$", path.read_text(), flags=re.M)
    return dict(found)


def test_the_city_image_is_built_on_the_base_image(city_image: dockerfile.StagedImage) -> None:
    assert _build_tags(BASE_DOCKERFILE) == {"deploy/Dockerfile": BASE_IMAGE}
    assert _build_tags(CITY_DOCKERFILE) == {"deploy/city/Dockerfile": CITY_IMAGE}
    instructions = dockerfile.read(CITY_DOCKERFILE)
    assert dockerfile.args_defaults(instructions)["BASE"] == BASE_IMAGE
    assert [i.text for i in instructions if i.keyword == "FROM"] == ["${BASE}"]
    base_users = [i.text for i in dockerfile.read(BASE_DOCKERFILE) if i.keyword == "USER"]
    assert city_image.user == base_users[-1]  # back to the base's user after building
    assert city_image.workdir == "/app"
    generate = ["cogment", "generate", "--file", "cogment.yaml", "--python_dir", "."]
    assert ("/app", generate) in city_image.runs
    for script in ("environment.py", "pedestrian.py", "hooks.py", "driver.py", "web/index.html"):
        assert city_image.path(f"/app/{script}").is_file(), script


def test_the_build_contexts_leave_out_all_but_what_is_copied() -> None:
    base = dockerfile.Ignore.read(BASE_DOCKERFILE)
    city = dockerfile.Ignore.read(CITY_DOCKERFILE)
    assert base.rules and city.rules
    for ignore in (base, city):
        for left_out in (
            ".git/config",
            ".venv/bin/python",
            "tests/conftest.py",
            "x/__pycache__/a.pyc",
        ):
            assert ignore.ignored(left_out), left_out
    for kept in ("pyproject.toml", "README.md", "cogment/api/agent.proto", "cogment/cli.py"):
        assert not base.ignored(kept), kept
    assert base.ignored("cogment/__pycache__/cli.cpython-311.pyc")
    for kept in ("examples/city/hooks.py", "examples/city/web/city.js", "deploy/city/cogment.yaml"):
        assert not city.ignored(kept), kept
    # what a local run leaves in the example: the image generates its own
    for generated in ("cog_settings.py", "city_pb2.py", "trials.db", "trials.db-wal"):
        assert city.ignored(f"examples/city/{generated}"), generated
    assert city.ignored("examples/gym/cogment.yaml") and city.ignored("deploy/README.md")
