"""A Ray cluster of several nodes on one machine: a head and worker nodes started with
`ray start` (through `actors.ray_start`), every socket on loopback, token authentication on,
each node with its own name, CPUs and custom resources. For tests, benchmarks and a single
box that wants node isolation; a node can be killed (SIGKILL to its whole process group) to
show what a machine loss does.

Only the processes this object started are ever signalled: each node's `ray start --block`
leads its own process group (its GCS or raylet and agents; Ray's workers start sessions of
their own), stopped with SIGTERM (Ray drains the node) and then SIGKILL for anything below it
that is left (checked by pid and start time, so that a reused pid is never hit). `ray stop` is never
used: it would stop every Ray of the user on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from smartcity.actors.ray_start import CLUSTER_ENV

LOOPBACK = "127.0.0.1"
_READY_LINE = "This command will now block forever"
WORKER_PORTS_PER_NODE = 40
START_ATTEMPTS = 3
# A killed node is declared dead after about period x threshold (Ray's default: 3 s x 5): its
# raylet refuses connections, so each check fails at once. A live node on a loaded machine may
# answer slowly: a short timeout would declare it dead while it registers.
FAST_NODE_DEATH = {
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 10000,
    "health_check_failure_threshold": 5,
}


class ClusterStartError(RuntimeError):
    """A node of the local cluster did not start; the message carries the end of its log."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node: its name (Ray's node name), CPUs, custom resources and object store."""

    name: str
    num_cpus: int = 1
    resources: Mapping[str, float] = field(default_factory=dict)
    object_store_mb: int = 80


@dataclass
class _Node:
    spec: NodeSpec
    process: subprocess.Popen[bytes]
    log: Path
    killed: bool = False


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a process, from /proc; None when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[19])


def _descendants(pid: int) -> dict[int, int]:
    """Every process below `pid` with its start time (Linux /proc): Ray's workers start their
    own sessions, so a node's process group alone misses them."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            children.setdefault(st[0], []).append((int(entry.name), st[1]))
    found: dict[int, int] = {}
    todo = [pid]
    while todo:
        for child, started in children.get(todo.pop(), []):
            if child not in found:
                found[child] = started
                todo.append(child)
    return found


def _kill_all(pids: dict[int, int]) -> None:
    """SIGKILL each process still running with the start time it had: a pid reused meanwhile
    by someone else's process is left alone."""
    for pid, started in pids.items():
        st = _stat(pid)
        if st is not None and st[1] == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _free_ports(n: int) -> list[int]:
    """n distinct ports free on loopback now (held open together so that none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _free_range(count: int, avoid: set[int]) -> int:
    """The first port of `count` consecutive ports free on loopback now (for Ray's workers)."""
    for _ in range(200):
        base = random.randrange(30_000, 60_000 - count)
        span = range(base, base + count)
        if not avoid.intersection(span) and all(_port_free(p) for p in span):
            return base
    raise ClusterStartError(f"no {count} consecutive free ports on loopback")


class LocalCluster:
    """Head + workers on loopback. `start()` returns the GCS address that a server attaches to
    (`ray.address`), with `env()` in its environment (the token)."""

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        *,
        system_config: Mapping[str, int] | None = None,
        token: str | None = None,
        python: str = sys.executable,
    ) -> None:
        if not nodes:
            raise ValueError("a cluster needs at least a head node")
        names = [n.name for n in nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"node names repeat: {names}")
        self.specs = tuple(nodes)
        self.system_config = dict(system_config or {})
        self.token = token or secrets.token_hex(32)
        self._python = python
        # short: Ray's unix sockets live under it and a socket path has at most 107 bytes
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))
        self._nodes: dict[str, _Node] = {}
        self.port = 0
        self._used: set[int] = set()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def env(self) -> dict[str, str]:
        """What a process attaching to this cluster (a server, a test) needs in its environment."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, CLUSTER_ENV: "0"}

    def start(self, timeout_s: float = 120.0) -> str:
        head, *workers = self.specs
        try:
            self._start_node(head, head=True, timeout_s=timeout_s)
            for spec in workers:  # one at a time: a loaded GCS times a registering raylet out
                self._start_node(spec, head=False, timeout_s=timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.address

    def _start_node(self, spec: NodeSpec, *, head: bool, timeout_s: float) -> None:
        """Start a node; again (fresh ports) when Ray gave up on it: `ray start` waits only 30 s
        for its raylet to register, which a loaded machine can miss."""
        for attempt in range(1, START_ATTEMPTS + 1):
            if head:
                self.port = _free_ports(1)[0]
                self._used.add(self.port)
            self._launch(spec, head=head)
            try:
                self._wait_ready(spec.name, timeout_s)
                return
            except ClusterStartError:
                self._stop_node(self._nodes.pop(spec.name), 10.0)
                if attempt == START_ATTEMPTS:
                    raise

    def add_node(self, spec: NodeSpec, timeout_s: float = 120.0) -> None:
        """Start one more worker node (a replacement after a kill, or more capacity)."""
        if spec.name in self._nodes and not self._nodes[spec.name].killed:
            raise ValueError(f"node {spec.name} runs already")
        self._start_node(spec, head=False, timeout_s=timeout_s)

    def node_names(self) -> tuple[str, ...]:
        return tuple(name for name, n in self._nodes.items() if not n.killed and n.process.poll() is None)

    def pids(self) -> dict[str, int]:
        """The `ray start` process (process-group leader) of every running node, by name."""
        return {name: n.process.pid for name, n in self._nodes.items() if not n.killed}

    def kill_node(self, name: str) -> None:
        """Kill a node at once, as a machine loss would: every process of its group, SIGKILL."""
        node = self._nodes[name]
        if node.spec is self.specs[0]:
            raise ValueError("the head node holds the cluster's state: kill a worker node")
        node.killed = True
        below = _descendants(node.process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        _kill_all(below)
        node.process.wait(timeout=10)

    def stop(self, timeout_s: float = 40.0) -> None:
        """Stop the workers, then the head; remove the temp dir. Safe to call twice."""
        for name in reversed(list(self._nodes)):
            self._stop_node(self._nodes.pop(name), timeout_s)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- internals ------------------------------------------------------------------------
    def _stop_node(self, node: _Node, timeout_s: float) -> None:
        below = _descendants(node.process.pid)  # before anything exits and is reparented
        if not node.killed and node.process.poll() is None:
            node.process.send_signal(signal.SIGTERM)  # Ray drains the node, then stops its processes
            try:
                node.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)
        # anything of that node still running (a worker that outlived its raylet)
        _kill_all(below)

    def _launch(self, spec: NodeSpec, *, head: bool) -> None:
        ports = _free_ports(7)
        self._used.update(ports)
        worker_base = _free_range(WORKER_PORTS_PER_NODE, self._used)
        self._used.update(range(worker_base, worker_base + WORKER_PORTS_PER_NODE))
        args = [
            self._python, "-m", "smartcity.actors.ray_start", "start", "--block",
            "--node-name", spec.name,
            "--num-cpus", str(spec.num_cpus),
            "--num-gpus", "0",
            "--resources", json.dumps(dict(spec.resources)),
            "--object-store-memory", str(spec.object_store_mb * 1024 * 1024),
            "--temp-dir", str(self.temp_dir),
            "--disable-usage-stats",
            "--node-manager-port", str(ports[0]),
            "--object-manager-port", str(ports[1]),
            "--dashboard-agent-listen-port", str(ports[2]),
            "--dashboard-agent-grpc-port", str(ports[3]),
            "--runtime-env-agent-port", str(ports[4]),
            "--metrics-export-port", str(ports[5]),
            "--min-worker-port", str(worker_base),
            "--max-worker-port", str(worker_base + WORKER_PORTS_PER_NODE - 1),
        ]  # fmt: skip
        if head:
            client_port = _free_ports(2)
            args += [
                "--head", "--node-ip-address", LOOPBACK, "--port", str(self.port),
                "--include-dashboard=false", "--dashboard-port", str(client_port[0]),
                "--ray-client-server-port", str(client_port[1]),
            ]  # fmt: skip
            if self.system_config:
                args += ["--system-config", json.dumps(self.system_config)]
        else:
            args += ["--address", self.address]
        log = self.temp_dir / f"{spec.name}.log"
        env = {**os.environ, **self.env(), "RAY_USAGE_STATS_ENABLED": "0"}
        with log.open("ab") as out:
            process = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self._nodes[spec.name] = _Node(spec, process, log)

    def _wait_ready(self, name: str, timeout_s: float) -> None:
        node = self._nodes[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = node.log.read_text(errors="replace")
            if _READY_LINE in text:
                return
            if node.process.poll() is not None:
                raise ClusterStartError(f"node {name} exited ({node.process.returncode}): {text[-2000:]}")
            time.sleep(0.2)
        raise ClusterStartError(f"node {name} not ready after {timeout_s}s: {node.log.read_text()[-2000:]}")
