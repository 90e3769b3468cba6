"""`cogment launch --web` and the launch file's `web:` section (the city page in a browser is
tested in tests/web/test_browser.py): every mistake is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cogment.launch_config import LaunchError, load_launch_config
from tests.launch.conftest import CITY, CITY_LAUNCH, run_launch, write_launch_file

CLIENT = "client:\n  command: python driver.py\n"


def test_the_city_launch_file_serves_its_page() -> None:
    config = load_launch_config(str(CITY_LAUNCH))
    assert config.web is not None
    assert (config.web.port, config.web.static) == (8080, str(CITY / "web"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CLIENT + "web: {}\n", "web: missing key 'port'"),
        (
            CLIENT + "web: {port: 8080, page: x}\n",
            "web: unknown key 'page' (allowed: port, static)",
        ),
        (CLIENT + "web: {port: 8080, static: nowhere}\n", "web.static: no index.html in"),
        (CLIENT + "orchestrator: {port: 9000}\nweb: {port: 9000}\n", "port 9000 is used twice"),
    ],
)
def test_web_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "launch.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LaunchError) as raised:
        load_launch_config(str(path))
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        (CLIENT, ["--web"], "web: missing (needed by --web)"),
        (CLIENT + "web: {port: 8080}\n", ["--web"], "orchestrator: missing (--web serves"),
        (
            CLIENT + "orchestrator: {port: 9000}\nweb: {port: 8080}\n",
            ["--web", "--interactive"],
            "--web and --interactive: choose one",
        ),
    ],
)
def test_web_run_time_mistakes_are_one_line(
    tmp_path: Path, text: str, args: list[str], message: str
) -> None:
    write_launch_file(tmp_path, text)
    run = run_launch(str(tmp_path / "launch.yaml"), *args, timeout=30)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cogment launch: error: "), run.stderr
    assert message in lines[0]
    assert run.pids == {}
