"""A worker node dies mid-stream: its camera groups restart on the other worker and every
event recorded in their outboxes reaches the database exactly once.

Runs `bench/cluster.py` (a head and two workers started with `ray start` on loopback, token
auth on, outboxes in PostgreSQL) in its own process: a Ray driver attaches to one cluster per
process, and this one may already run the suite's local Ray. The bench stops its nodes and
drops its database; the test checks that no process of its cluster is left."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import processes_mentioning, run_cluster_bench

pytestmark = [pytest.mark.ray, pytest.mark.slow]



def test_a_killed_worker_node_loses_and_repeats_no_event(pg_url: str) -> None:
    del pg_url  # PostgreSQL is there (the fixture skips, or fails in CI, otherwise)
    result = run_cluster_bench(
        "--quick", "--cameras", "4", "--groups", "4", "--seconds", "4",
        # the servers phase is tests/cluster/test_failover.py's; capacity is a bench figure
        "--no-servers", "--no-capacity",
    )  # fmt: skip
    assert result["nodes"] == 3
    assert result["groups_moved"] >= 1  # the killed worker ran groups (spread over both)
    assert result["events_stored"] > 0
    assert result["events_lost"] == 0
    assert result["events_duplicated"] == 0
    assert result["outbox_left"] == 0  # everything acknowledged once stored
    assert result["events_per_s"] > 0  # the moved groups produce again
    assert processes_mentioning(result["cluster_temp_dir"]) == []
    assert not Path(result["cluster_temp_dir"]).exists()
