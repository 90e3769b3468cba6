"""Runs the city's scripts as a container would (`python SCRIPT ARGS` from its folder), up to
the server or connection they open, and prints what they opened as JSON.

    python run_scripts.py APP_DIR < [["environment.py", "--port", "9002"], ...]

Each script runs as `__main__` with its folder first on sys.path (its cog_settings.py and
city_pb2.py are there), through its own argument parser. `cogment.GrpcServer` and
`cogment.client.Connection` are replaced by recorders that take the real classes'
signatures (defaults included) and stop the script there instead of binding a port or
calling an orchestrator. One JSON object per script, in order: `{"server": {"service":
class name, "port": .., "host": ..}}`, `{"connection": {"endpoint": ...}}`, or `{"error":
what the script printed, "exit": status}` when it exited first (its parser refused the
arguments, say).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import runpy
import sys
from typing import Any


class Opened(Exception):
    """What a script opened, raised where it would have started serving or calling."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record)
        self.record = record


def _recorders() -> None:
    import cogment
    import cogment.client
    from cogment.endpoint import parse_orchestrator_endpoint
    from cogment.servicers import make_servicer

    server_signature = inspect.signature(cogment.GrpcServer)
    connection_signature = inspect.signature(cogment.client.Connection)

    class RecordingServer:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            bound = server_signature.bind(*args, **kwargs)
            bound.apply_defaults()
            call = bound.arguments
            make_servicer(call["service_type"], call["settings"])  # the class serves them
            raise Opened(
                {
                    "server": {
                        "service": call["service_type"].__name__,
                        "port": call["port"],
                        "host": call["host"],
                    }
                }
            )

    class RecordingConnection:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            bound = connection_signature.bind(*args, **kwargs)
            endpoint = bound.arguments["endpoint"]
            parse_orchestrator_endpoint(endpoint)  # a valid endpoint, or ConfigurationError
            raise Opened({"connection": {"endpoint": endpoint}})

    cogment.GrpcServer = RecordingServer  # type: ignore[misc,assignment]
    cogment.client.Connection = RecordingConnection  # type: ignore[misc,assignment]


def run(app_dir: str, argv: list[str]) -> dict[str, Any]:
    script = os.path.join(app_dir, argv[0])
    sys.argv = [script, *argv[1:]]
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            runpy.run_path(script, run_name="__main__")
    except Opened as opened:
        return opened.record
    except SystemExit as exit:
        return {"error": output.getvalue(), "exit": exit.code}
    return {"error": output.getvalue() + "the script returned without opening anything"}


def main() -> None:
    app_dir = os.path.abspath(sys.argv[1])
    sys.path[0] = app_dir  # as `python SCRIPT` from app_dir has it (not this file's folder)
    os.chdir(app_dir)
    _recorders()
    print(json.dumps([run(app_dir, argv) for argv in json.load(sys.stdin)]))


if __name__ == "__main__":
    main()
