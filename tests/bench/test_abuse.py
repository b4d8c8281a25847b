"""bench/abuse.py's own parts: the attack payloads stay on loopback and are as big as the issue
says, the strict JSON check catches what browsers refuse, and a stall is attributed to every
attack window that its round trip overlaps."""

from __future__ import annotations

import re

import pytest
from abuse import Probe, big_offer, circle, goals_failed, strict_json


def test_the_big_offer_is_over_600_kib_and_names_only_loopback() -> None:
    sdp = big_offer(9000)
    assert len(sdp.encode()) > 600 * 1024
    candidates = [line for line in sdp.split("\r\n") if line.startswith("a=candidate:")]
    assert len(candidates) == 9000
    assert {line.split()[4] for line in candidates} == {"127.0.0.1"}
    addresses = set(re.findall(r"IN IP[46] (\S+)", sdp))
    assert addresses == {"127.0.0.1"}


@pytest.mark.parametrize("text", ['{"until": Infinity}', '{"until": -Infinity}', "[NaN]"])
def test_strict_json_refuses_what_browsers_refuse(text: str) -> None:
    with pytest.raises(ValueError, match="non-standard JSON constant"):
        strict_json(text)


def test_strict_json_reads_standard_json() -> None:
    assert strict_json(b'{"a": [1.5, null, "x"]}') == {"a": [1.5, None, "x"]}


def test_a_round_trip_counts_in_every_window_it_overlaps() -> None:
    p = Probe("t", samples=[(0.0, 1.0, True), (2.0, 2.1, True), (1.5, 5.0, False), (6.0, 6.01, True)])
    assert [round(x) for x in p.window(2.0, 3.0)] == [100, 3500]
    assert p.stats(2.0, 3.0) == {"n": 2, "p50_ms": 3500.0, "max_ms": 3500.0}
    assert p.stats(7.0, 8.0) == {"n": 0}


def test_the_polygon_has_n_distinct_points_inside_the_image() -> None:
    pts = circle(2000)
    assert len({tuple(p) for p in pts}) == 2000
    assert all(0.0 <= c <= 1.0 for p in pts for c in p)


def test_goals_failed_names_each_goal_missed_and_nothing_on_a_clean_run() -> None:
    clean = {"server_errors": 0, "revoked_image_access": 0, "picture_token_misuse": 0, "db_locked_errors": 0,
             "invalid_json_responses": 0, "victim_locked_out": False, "max_loop_stall_ms": 168.0,
             "stop": {"processes_left": []}}
    assert goals_failed(clean) == []
    before = {**clean, "server_errors": 6, "revoked_image_access": 12, "victim_locked_out": True,
              "max_loop_stall_ms": 30004.6, "stop": {"processes_left": ["raylet"]}}
    assert goals_failed(before) == [
        "server_errors = 6", "revoked_image_access = 12", "victim_locked_out",
        "max_loop_stall_ms = 30004.6 > 250", "processes left: ['raylet']",
    ]
