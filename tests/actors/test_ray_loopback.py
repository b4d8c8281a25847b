"""The local Ray the server starts listens on loopback only and keeps token auth on."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import textwrap

import psutil
import pytest
from testkit import session_processes

pytestmark = pytest.mark.ray

# Started in its own session (its own Ray), the way `smartcity serve` starts Ray (start_ray with
# no cluster address); it reports its state and waits for stdin to close before stopping Ray.
CHILD = textwrap.dedent(
    """
    import json, os, sys
    from smartcity.actors.runtime import start_ray, stop_ray
    from smartcity.core.config import RayConfig
    import ray

    info = start_ray(RayConfig(num_cpus=1, object_store_mb=96, namespace="loopback-test"))

    @ray.remote
    def ping():
        return os.getpid()

    ray.get(ping.remote())  # a worker process is up too
    print(json.dumps({"address": info.address, "auth": os.environ.get("RAY_AUTH_MODE")}), flush=True)
    sys.stdin.read()
    stop_ray()
    """
)


def _listening(procs: list[psutil.Process]) -> list[tuple[str, str, int]]:
    out = []
    for p in procs:
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    out.append((p.name(), c.laddr.ip, c.laddr.port))
        except psutil.Error:
            continue
    return out


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def test_local_ray_listens_on_loopback_only_with_token_auth() -> None:
    import json

    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, "the child did not start Ray"
        state = json.loads(line)
        sockets = _listening(session_processes(child.pid))
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=120)
    for p in session_processes(child.pid):  # Ray's daemons exit with their driver
        p.wait(timeout=60)
    assert sockets, "no listening socket found: the process listing is broken"
    public = [s for s in sockets if not _is_loopback(s[1])]
    assert public == [], f"Ray listens beyond loopback: {public}"
    assert _is_loopback(state["address"].rsplit(":", 1)[0].strip("[]"))
    # even with RAY_AUTH_MODE=disabled in its environment, the local Ray keeps token auth on
    assert state["auth"] == "token"
