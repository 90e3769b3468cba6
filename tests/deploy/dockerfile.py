"""A Dockerfile read the way `docker build` reads the instructions deploy/ uses, and an
image's files staged into a folder by its COPY and RUN steps (no Docker engine runs here).

* `read(path)`: the `Instruction`s, continuation lines joined, comments dropped.
* `shell_commands(instruction)`: the commands of a RUN, as argv lists (split on `&&`).
* `Ignore.read(dockerfile)`: the `<Dockerfile>.dockerignore` next to it (BuildKit's
  per-Dockerfile ignore file), which leaves files out of the build context.
* `stage(path, context, root)`: runs the COPY and WORKDIR instructions into `root` (the
  image's `/`), and runs the RUN commands that `runnable` accepts from their WORKDIR;
  returns a `StagedImage` (where the files are, the last WORKDIR and USER, every RUN
  command with its WORKDIR).
"""

from __future__ import annotations

import dataclasses
import glob
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Callable

_ARG_REF = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    text: str  # the rest of the instruction, continuation lines joined
    line: int  # where it starts (1-based)


@dataclasses.dataclass
class StagedImage:
    root: Path  # the image's /
    workdir: str = "/"  # the last WORKDIR
    user: str = "root"  # the last USER
    runs: list[tuple[str, list[str]]] = dataclasses.field(default_factory=list)  # (WORKDIR, argv)

    def path(self, image_path: str, cwd: str = "/") -> Path:
        """Where the file the image has at `image_path` (relative to `cwd`) was staged."""
        absolute = PurePosixPath(cwd, image_path)
        return self.root.joinpath(*absolute.parts[1:])


def read(path: Path) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, text = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(text.split()), start))
        pending = ""
    assert not pending, f"{path}: the last instruction ends with a continuation"
    return instructions


def args_defaults(instructions: list[Instruction]) -> dict[str, str]:
    """The default of every `ARG NAME=value`."""
    defaults = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.text:
            name, _, value = ins.text.partition("=")
            defaults[name] = value
    return defaults


def expand(text: str, variables: dict[str, str]) -> str:
    return _ARG_REF.sub(lambda m: variables[m.group(1) or m.group(2)], text)


def shell_commands(instruction: Instruction) -> list[list[str]]:
    assert instruction.keyword == "RUN"
    assert not instruction.text.startswith("["), "RUN in exec form: not expected here"
    assert ";" not in instruction.text and "||" not in instruction.text, instruction.text
    return [shlex.split(part) for part in instruction.text.split("&&")]


class Ignore:
    """A .dockerignore's patterns: `*` and `?` within a path segment, `**` across them,
    `!` to take back; a path is left out when the last pattern matching it, or one of its
    parent folders, is not a `!` one."""

    def __init__(self, lines: list[str]) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = str(PurePosixPath(line.lstrip("!").strip("/")))
            self.rules.append((keep, re.compile(_pattern_regex(pattern))))

    @classmethod
    def read(cls, dockerfile: Path) -> Ignore:
        path = dockerfile.with_name(dockerfile.name + ".dockerignore")
        return cls(path.read_text().splitlines() if path.exists() else [])

    def ignored(self, relative: str) -> bool:
        parts = PurePosixPath(relative).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        out = False
        for keep, regex in self.rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                out = not keep
        return out


def _pattern_regex(pattern: str) -> str:
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return regex


def _copy(sources: list[str], dest: str, context: Path, ignore: Ignore, image: StagedImage) -> None:
    target = image.path(dest, image.workdir)
    many = len(sources) > 1 or dest.endswith("/")
    for source in sources:
        matches = [
            Path(m)
            for m in sorted(glob.glob(str(context / source)))
            if not ignore.ignored(str(Path(m).relative_to(context)))
        ]
        assert matches, f"COPY {source}: not in the build context {context} (or ignored)"
        for match in matches:
            if not match.is_dir():
                into = target / match.name if many else target
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(match, into)
                continue
            for file in sorted(p for p in match.rglob("*") if p.is_file()):
                if not ignore.ignored(str(file.relative_to(context))):
                    into = target / file.relative_to(match)
                    into.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, into)


def stage(
    path: Path, context: Path, root: Path, runnable: Callable[[list[str]], bool]
) -> StagedImage:
    """Stages the image of the Dockerfile at `path` into `root`; the RUN commands `runnable`
    accepts are run for real from their WORKDIR (`cogment` and `python` as this
    interpreter's), and must succeed."""
    image = StagedImage(root)
    ignore = Ignore.read(path)
    instructions = read(path)
    variables = args_defaults(instructions)
    for ins in instructions:
        text = expand(ins.text, variables)
        if ins.keyword == "WORKDIR":
            image.workdir = str(PurePosixPath(image.workdir, text))
            image.path(image.workdir).mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "USER":
            image.user = text
        elif ins.keyword == "COPY":
            words = shlex.split(text)
            assert not any(w.startswith("--") for w in words), f"line {ins.line}: COPY {text}"
            _copy(words[:-1], words[-1], context, ignore, image)
        elif ins.keyword == "RUN":
            for command in shell_commands(Instruction(ins.keyword, text, ins.line)):
                image.runs.append((image.workdir, command))
                if runnable(command):
                    _run(command, image.path(image.workdir))
    return image


def _run(command: list[str], cwd: Path) -> None:
    argv = list(command)
    if argv[0] == "cogment":
        argv = [sys.executable, "-m", "cogment.cli", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"RUN {shlex.join(command)} failed:\n{done.stdout}{done.stderr}"
