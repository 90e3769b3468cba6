"""The `cogment` containers of the manifests, started for real from the staged city image
(on loopback and free ports instead of 0.0.0.0 and their cluster ports): each one serves,
its readiness probe would pass, and SIGTERM (what Kubernetes sends a pod it stops) ends it
cleanly. The orchestrators load the cluster's project although its DNS names resolve
nowhere here: a service is called when a trial needs it."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.deploy.cluster import NAMESPACE, Cluster, Manifest, container_argv
from tests.deploy.commands import without_advertise
from tests.deploy.dockerfile import StagedImage

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
# what each command prints once it serves: where
LISTENING = re.compile(r"(?:listening on|open) (?:http://)?(?P<host>127\.0\.0\.1):(?P<port>\d+)")


class Process:
    """A started command and the lines it printed, read by a thread as they come."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.argv = argv
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                raise AssertionError(
                    f"{self.argv}: no {pattern.pattern!r} in {timeout} s:\n{''.join(self.seen)}"
                ) from None
            self.seen.append(line)
            match = pattern.search(line)
            if match:
                return match


def _local_argv(
    w: Manifest, container: dict[str, Any], image: StagedImage, volumes: Path
) -> list[str]:
    """The container's command with its listening address on loopback and a free port, and
    its paths in the staged image (or in a folder standing for each mounted volume)."""
    argv = without_advertise(container_argv(container, w.pod_name, NAMESPACE))
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    local = [sys.executable, "-m", "cogment.cli"]
    for previous, word in zip(argv, argv[1:]):
        if previous == "--host":
            word = "127.0.0.1"
        elif previous == "--port":
            word = "0"
        elif word.startswith("/"):
            mount = next((m for m in mounts if m != "/tmp" and word.startswith(m + "/")), None)
            if mount is None:
                word = str(image.path(word))
            else:
                folder = volumes / mounts[mount]
                folder.mkdir(exist_ok=True)
                word = str(folder / word[len(mount) + 1 :])
        local.append(word)
    return local


def _http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return int(reply.status)


def test_the_cogment_containers_serve_pass_their_probes_and_stop_on_sigterm(
    cluster: Cluster, city_image: StagedImage, tmp_path: Path
) -> None:
    started: dict[str, tuple[Process, dict[str, Any], Manifest]] = {}
    try:
        for w in cluster.workloads():
            (container,) = w.containers
            if container["command"][0] != "cogment":
                continue
            workdir = city_image.path(str(container.get("workingDir") or city_image.workdir))
            argv = _local_argv(w, container, city_image, tmp_path)
            started[w.name] = (Process(argv, workdir), container, w)
        assert sorted(started) == ["city-datalog", "city-orchestrator", "city-web"]
        for process, container, w in started.values():
            address = process.wait_for(LISTENING, STARTUP_TIMEOUT)
            host, port = address["host"], int(address["port"])
            probe = container["readinessProbe"]
            if "tcpSocket" in probe:
                socket.create_connection((host, port), timeout=10).close()
            else:
                path = probe["httpGet"]["path"]
                assert _http_status(f"http://{host}:{port}{path}") == 200, w.where
                assert _http_status(f"http://{host}:{port}/") == 200  # the city's page
        assert (tmp_path / "data" / "trials.db").is_file()  # the datalog's store, on its volume
        for process, _, _ in started.values():
            process.popen.send_signal(signal.SIGTERM)
        for process, _, w in started.values():
            grace = w.pod_spec.get("terminationGracePeriodSeconds", 30)
            assert process.popen.wait(timeout=min(grace, STOP_TIMEOUT)) == 0, w.where
    finally:
        for process, _, _ in started.values():
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.wait(timeout=10)
