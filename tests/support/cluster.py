"""A real three-node RabbitMQ cluster on this machine, for the tests that kill a broker node.

Debian's ``rabbitmq-server`` started three times with its own node name, ports and data folder, one Erlang
cookie (in a HOME of its own), the management plugin on each, joined into one cluster. Nothing of it
survives the test: the folder is deleted and the nodes stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts themselves, not Debian's wrapper that changes user
HOST = socket.gethostname().split(".")[0]


class Cluster:
    """Three nodes ``klients-c1..3@host`` on AMQP ports ``base``, ``base + 1``, ``base + 2`` (management on
    ``base + 10000 …``, distribution on ``base + 20000 …``)."""

    def __init__(self, root: Path, base: int = 5701) -> None:
        self.root = root
        self.home = root / "home"
        self.ports = [base + i for i in range(3)]
        self.nodes = [f"klients-c{i + 1}@{HOST}" for i in range(3)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def folder(self, i: int) -> Path:
        return self.root / f"c{i + 1}"

    def management_url(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[i] + 10000}"

    def _env(self, i: int) -> dict[str, str]:
        folder = self.folder(i)
        return {**os.environ, "HOME": str(self.home), "RABBITMQ_NODENAME": self.nodes[i],
                "RABBITMQ_NODE_PORT": str(self.ports[i]), "RABBITMQ_DIST_PORT": str(self.ports[i] + 20000),
                "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"), "RABBITMQ_LOG_BASE": str(folder / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"), "RABBITMQ_PID_FILE": str(folder / "pid")}

    def ctl(self, i: int, *args: str, timeout: float = 120) -> str:
        """Run ``rabbitmqctl`` against node ``i``; return its output (raise on failure)."""
        done = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.nodes[i], *args],
                              env=self._env(i), capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.nodes[i]}: {done.stderr or done.stdout}")
        return done.stdout

    def start(self, i: int) -> None:
        """Start node ``i`` (its data kept from an earlier start) and wait until it serves."""
        with (self.folder(i) / "out.log").open("ab") as out:
            self.procs[i] = subprocess.Popen([str(RABBITMQ_BIN / "rabbitmq-server")], env=self._env(i), stdout=out,
                                             stderr=subprocess.STDOUT)

    def wait(self, i: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctl(i, "await_startup", timeout=30)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline or self.procs[i].poll() is not None:
                    raise
                time.sleep(0.5)

    def kill(self, i: int) -> None:
        """SIGKILL node ``i``'s Erlang VM (no goodbye to the cluster or the clients)."""
        os.kill(int((self.folder(i) / "pid").read_text().strip()), signal.SIGKILL)
        self.procs[i].wait(timeout=30)

    def up(self) -> None:
        """Make the folders and the cookie, start the three nodes, join the second and third to the first."""
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text("KLIENTSTESTCLUSTER")
        cookie.chmod(0o600)
        for i, port in enumerate(self.ports):
            folder = self.folder(i)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "enabled_plugins").write_text("[rabbitmq_management].\n")
            (folder / "rabbitmq.conf").write_text(
                f"listeners.tcp.default = 127.0.0.1:{port}\nmanagement.tcp.ip = 127.0.0.1\n"
                f"management.tcp.port = {port + 10000}\ncollect_statistics_interval = 1000\n")
            self.start(i)
        for i in range(3):
            self.wait(i)
        for i in (1, 2):
            self.ctl(i, "stop_app")
            self.ctl(i, "join_cluster", self.nodes[0])
            self.ctl(i, "start_app")

    def down(self) -> None:
        """Kill every node (nothing of the cluster is kept, so there is nothing to stop cleanly) and delete the
        cluster's folder."""
        for i, proc in self.procs.items():
            if proc.poll() is None:
                self.kill(i)
        shutil.rmtree(self.root, ignore_errors=True)
