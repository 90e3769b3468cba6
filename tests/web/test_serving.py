"""What `cogment web` serves over HTTP, its command line (a real process), the optional
extra, and the protocol's documentation (one source of truth: cogment/web/protocol.py)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import aiohttp
import pytest

import cogment
from cogment.errors import ConfigurationError
from cogment.web import MISSING_EXTRA
from cogment.web import protocol as p
from cogment.web.server import WebBridge
from tests.web.conftest import Tab, run

Start = Callable[..., Any]
Bridge = Callable[..., WebBridge]
REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "tests" / "project" / "cogment.yaml"
STATIC = REPO / "cogment" / "web" / "static"


async def fetch(url: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text(), dict(response.headers)


def test_pages_and_the_module_are_served(orchestrator: Start, bridge: Bridge) -> None:
    web = bridge(orchestrator())

    async def body() -> None:
        status, page, headers = await fetch(web.url)
        assert status == 200 and 'src="/_cogment/default.js"' in page
        assert headers["Cache-Control"] == "no-cache"
        status, module, headers = await fetch(web.url + "cogment.js")
        assert status == 200 and "export async function connect" in module
        assert "javascript" in headers["Content-Type"]
        for asset in ("_cogment/", "_cogment/default.js", "_cogment/default.css"):
            assert (await fetch(web.url + asset))[0] == 200, asset
        for outside in ("_cogment/../server.py", "%2e%2e/pyproject.toml", "nothing-here.txt"):
            assert (await fetch(web.url + outside))[0] == 404, outside

    run(body())


def test_a_project_page_replaces_the_default_one(
    orchestrator: Start, bridge: Bridge, tmp_path: Path
) -> None:
    (tmp_path / "index.html").write_text("<title>mine</title>", encoding="utf-8")
    (tmp_path / "game.js").write_text("export const x = 1;", encoding="utf-8")
    web = bridge(orchestrator(), static_dir=tmp_path)

    async def body() -> None:
        assert (await fetch(web.url))[1] == "<title>mine</title>"
        assert (await fetch(web.url + "game.js"))[1] == "export const x = 1;"
        assert "export async function connect" in (await fetch(web.url + "cogment.js"))[1]
        assert (await fetch(web.url + "_cogment/"))[0] == 200  # the default page stays
        assert (await fetch(web.url + "../" + Path(__file__).name))[0] == 404

    run(body())


def test_bad_settings_are_configuration_errors(cog_settings: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"no index\.html"):
        WebBridge(cog_settings, "127.0.0.1:9000", static_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="invalid orchestrator endpoint"):
        WebBridge(cog_settings, "nowhere")
    with pytest.raises(ConfigurationError, match="max_tabs"):
        WebBridge(cog_settings, "127.0.0.1:9000", max_tabs=0)
    with WebBridge(cog_settings, "127.0.0.1:9000", port=0) as first:
        taken = WebBridge(cog_settings, "127.0.0.1:9000", port=first.port)
        with pytest.raises(ConfigurationError, match=f"cannot serve on 127.0.0.1:{first.port}"):
            taken.start()


def test_the_command_serves_until_sigterm(orchestrator: Start, cog_settings: Any) -> None:
    orch = orchestrator()
    command = [sys.executable, "-m", "cogment.cli", "web", "--file", str(PROJECT)]
    command += ["--orchestrator", orch.endpoint, "--port", "0", "--log-level", "warning"]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # bounded by the test's timeout
        match = re.fullmatch(
            r"cogment web: open (http://127\.0\.0\.1:\d+/) \(orchestrator (.*)\)\n", line
        )
        assert match, line + process.stderr.read() if process.stderr else line
        assert match.group(2) == orch.endpoint
        url = match.group(1)

        class Address:  # what Tab.open needs of a bridge
            pass

        Address.url = url  # type: ignore[attr-defined]

        async def body() -> None:
            async with await Tab.open(Address()) as tab:  # type: ignore[arg-type]
                joined = await tab.request({"type": "start"})
                assert joined["type"] == p.JOINED
                await tab.request({"type": "end"})

        run(body())
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_without_aiohttp_the_command_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "from cogment.cli import main\n"
        f"sys.exit(main(['web', '--file', {str(PROJECT)!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"cogment web: error: {MISSING_EXTRA}"]
    assert 'pip install "cogment[web]"' in MISSING_EXTRA
    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "from cogment.errors import ConfigurationError\n"
        "try:\n    from cogment.web import WebBridge\n"
        "except ConfigurationError as error:\n    print(error)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == MISSING_EXTRA, done.stderr


def test_import_cogment_never_imports_aiohttp() -> None:
    code = (
        "import sys, cogment, cogment.client, cogment.cli, cogment.web, cogment.web.protocol, "
        "cogment.web.cli\n"
        "from cogment.cli import build_parser\n"
        "build_parser('web')\n"
        "print('aiohttp' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "False", done.stderr
    assert cogment.__name__ == "cogment"


def test_the_readme_and_the_module_name_every_message_and_error() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## `cogment web`") :]
    section = section[: section.index("\n## ", 4)]
    for name in p.REQUESTS + p.EVENTS + p.ERROR_CODES:
        assert f"`{name}`" in section, f"the README's `cogment web` section lacks `{name}`"
    module = (STATIC / "cogment.js").read_text(encoding="utf-8")
    for event in (p.WELCOME, p.JOINED, p.TICK, p.ENDED, p.ERROR):
        assert f'"{event}"' in module, event
    for request in p.REQUESTS:
        assert f'type: "{request}"' in module, request
    methods = re.findall(r"^  (?:async )?([a-z]\w*)\(", module, re.MULTILINE)
    for method in set(methods) - {"constructor"}:
        assert f"`{method}(" in section, f"the README does not document Session.{method}()"
    assert f"PROTOCOL = {p.PROTOCOL_VERSION};" in module
