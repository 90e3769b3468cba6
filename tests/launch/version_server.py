"""A stand-in service for launch tests: answers cogment.TrialHooks/Version and nothing else.

    python version_server.py --port N [--grandchild] [--tls-cert FILE --tls-key FILE]

With --tls-cert and --tls-key its port serves TLS. With --grandchild it also starts a child
process that ignores SIGTERM and prints `grandchild <pid>` once it does (before serving), to
check that `cogment launch` leaves no stray processes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from concurrent import futures

import grpc

from cogment.api import common_pb2

# the grandchild: deaf to SIGTERM, it says so on stderr, then runs until killed (its 120 s
# only bound a leak); its stdout is the service's, as a stray child's would be
_IGNORE_TERM = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ignoring SIGTERM', file=sys.stderr, flush=True); time.sleep(120)"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--grandchild", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    if args.grandchild:
        child = subprocess.Popen([sys.executable, "-c", _IGNORE_TERM], stderr=subprocess.PIPE)
        assert child.stderr is not None
        child.stderr.readline()  # it ignores SIGTERM now
        print(f"grandchild {child.pid}", flush=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(
        lambda request, context: common_pb2.VersionInfo(
            versions=[common_pb2.VersionInfo.Version(name="test", version="1")]
        ),
        request_deserializer=common_pb2.VersionRequest.FromString,
        response_serializer=common_pb2.VersionInfo.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("cogment.TrialHooks", {"Version": handler})]
    )
    if args.port and args.tls_cert:
        with open(args.tls_key, "rb") as key, open(args.tls_cert, "rb") as cert:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        server.add_secure_port(f"[::]:{args.port}", credentials)
    elif args.port:
        server.add_insecure_port(f"[::]:{args.port}")
    server.start()
    print("serving", flush=True)
    threading.Event().wait(120)


if __name__ == "__main__":
    main()
