"""The services of the test project as a user serves them: one script, GrpcServers, blocks.

python tests/e2e/serve_services.py GENERATED_DIR

Prints `hooks grpc://127.0.0.1:<port>` once everything serves (the hook points trials at the
environment and agents, which listen on free ports), then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [sys.argv[1], os.path.join(os.path.dirname(HERE), "project")]

import cog_settings  # noqa: E402
from services import BoardEnv, Hooks, PlayerAgent, WatcherAgent  # noqa: E402

import cogment  # noqa: E402


def main() -> int:
    def serve(service_class: type) -> cogment.GrpcServer:
        return cogment.GrpcServer(service_class, cog_settings, port=0, host="127.0.0.1").start()

    env, player, watcher = serve(BoardEnv), serve(PlayerAgent), serve(WatcherAgent)
    hooks = cogment.GrpcServer(
        Hooks.pointing_to(
            environment=f"grpc://127.0.0.1:{env.port}",
            agents={
                "player": f"grpc://127.0.0.1:{player.port}",
                "watcher": f"grpc://127.0.0.1:{watcher.port}",
            },
        ),
        cog_settings,
        port=0,
        host="127.0.0.1",
    )
    print(f"hooks grpc://127.0.0.1:{hooks.port}", flush=True)
    hooks.serve()  # until SIGINT/SIGTERM
    for server in (env, player, watcher):
        server.stop()
    print("services stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
