"""Real Ray nodes on this machine, for tests and benchmarks: a head and worker nodes, each
started by ``ray start`` as its own process group, and stopped by ending exactly those groups.

``ray stop`` would end every Ray process on the host (other users' clusters included), and
ending a node's processes with SIGTERM alone leaves its gcs_server behind, so `stop` sends
SIGTERM, then SIGKILL to whatever of the group is left. Ports are picked free, so two
clusters on one machine do not collide.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getpgid(int(d.name)) == pgid:
                    pids.append(int(d.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


class LocalCluster:
    """``with LocalCluster(cpus=[1, 1]) as c:`` → ``c.address`` (head + one worker node)."""

    def __init__(self, cpus: list[int], env: dict[str, str] | None = None) -> None:
        self.cpus = cpus
        self.env = {**os.environ, **ENV, **(env or {})}
        self.temp = Path(f"/tmp/ekr-{os.getpid()}-{free_port()}")  # Ray's sockets: short path
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.groups: list[int] = []

    def start(self) -> LocalCluster:
        """Start the head and worker nodes; returns self."""
        ray = Path(sys.executable).parent / "ray"
        for i, n in enumerate(self.cpus):
            cmd = [str(ray), "start", "--node-ip-address=127.0.0.1", f"--num-cpus={n}",
                   "--disable-usage-stats", f"--dashboard-agent-listen-port={free_port()}",
                   f"--metrics-export-port={free_port()}"]
            if i == 0:
                cmd += ["--head", f"--port={self.port}", f"--temp-dir={self.temp}",
                        "--include-dashboard=false", f"--ray-client-server-port={free_port()}"]
            else:
                cmd += [f"--address={self.address}"]
            proc = subprocess.Popen(cmd, env=self.env, start_new_session=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.groups.append(proc.pid)
            log, _ = proc.communicate(timeout=300)
            if proc.returncode != 0:
                self.stop()
                raise RuntimeError(f"ray start failed: {log[-2000:]}")
        return self

    def stop(self) -> None:
        """End every process of the nodes this cluster started, and nothing else."""
        for pgid in reversed(self.groups):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for pid in _group_pids(pgid):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
                deadline = time.monotonic() + 5
                while _group_pids(pgid) and time.monotonic() < deadline:
                    time.sleep(0.2)
        self.groups.clear()
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
