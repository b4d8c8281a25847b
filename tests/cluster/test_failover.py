"""Two API servers on one Ray cluster and one PostgreSQL database: a GraphQL subscriber on each
gets every camera event once and in order per camera, the leader is killed with SIGKILL, the
other server takes over (a new fencing epoch) and its subscriber goes on receiving what the
restarted camera actors produce; nothing is left running.

Runs `bench/cluster.py --servers-only` (a Ray node started with `ray start` on loopback, two
`smartcity serve` processes with `cluster.enabled`, a database of its own) in its own process,
as tests/actors/test_node_loss.py does, and checks what it measured."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from testkit import processes_mentioning, run_cluster_bench

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.postgres]



def test_every_server_delivers_every_event_and_a_killed_leader_is_replaced(pg_url: str) -> None:
    del pg_url  # PostgreSQL is there (the fixture skips, or fails in CI, otherwise)
    result = run_cluster_bench("--servers-only", "--quick", "--seconds", "3")
    assert result["servers"] == 2
    assert result["subscription_events_checked"] > 0
    # each server's subscriber: every stored event it could have seen, once, in order per camera
    assert result["subscription_delivery_by_server"] == {"server-0": 1.0, "server-1": 1.0}
    assert result["subscription_delivery_ratio"] == 1.0
    assert result["subscription_duplicates"] == 0
    assert result["subscription_out_of_order"] == 0
    # the leader was killed, the other one leads under the next epoch, and events flow again
    killed = result["killed_leader"]
    survivor = ({"server-0", "server-1"} - {killed}).pop()
    assert result["leader_epochs"][1] > result["leader_epochs"][0]
    assert result["leader_failover_s"] is not None and result["events_resumed_s"] is not None
    assert result["subscribers_ended"][survivor] == ""  # connected to the end
    cluster = result["survivor_cluster"]  # its /healthz, for an admin
    assert (cluster["server"], cluster["leader"], cluster["epoch"]) == (survivor, True, result["leader_epochs"][1])
    assert cluster["feed"]["received"] > 0 and cluster["feed"]["missed"] == 0
    assert result["survivor_metrics_leader"] is True
    assert result["subscribers_ended"][killed] != ""  # its server went away under it
    # nothing left: the servers and the Ray node
    assert [p for p in result["server_pids"] if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"] == []
    assert processes_mentioning(result["cluster_temp_dir"]) == []
    assert not Path(result["cluster_temp_dir"]).exists()
