"""The `cogment` command's own parsers, for the commands the manifests and the README give.

* `parse_cogment(argv)`: `cogment ...` parsed as the command parses it (a refusal fails the
  test with what argparse printed).
* `has_advertise()`: whether `cogment orchestrator` has `--advertise` (issue 16) yet;
  `without_advertise(argv)` drops it from a command where it has not.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex

from cogment.cli import build_parser
from cogment.orchestrator.cli import build_parser as orchestrator_parser

ADVERTISE = "--advertise"
NO_ADVERTISE = (
    "`cogment orchestrator --advertise HOST:PORT` is not in this checkout yet (issue 16's "
    "routing, merged by the lead): the orchestrators' --advertise is checked once it is"
)


def has_advertise() -> bool:
    _, unknown = orchestrator_parser().parse_known_args([ADVERTISE, "host:9000"])
    return not unknown


def parse_cogment(argv: list[str]) -> argparse.Namespace:
    """`cogment ...` parsed by the `cogment` command's own parser; a refusal fails the test
    with what argparse printed."""
    assert argv[0] == "cogment", argv
    parser = build_parser(argv[1])
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed), contextlib.redirect_stdout(printed):
            return parser.parse_args(argv[1:])
    except SystemExit:
        raise AssertionError(f"{shlex.join(argv)}: refused:\n{printed.getvalue()}") from None


def without_advertise(argv: list[str]) -> list[str]:
    if ADVERTISE not in argv or has_advertise():
        return argv
    i = argv.index(ADVERTISE)
    return argv[:i] + argv[i + 2 :]
