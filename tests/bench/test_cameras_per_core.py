"""bench/cameras_per_core.py's profile summary: py-spy's raw stacks as shares per function."""

from __future__ import annotations

import pytest
from cameras_per_core import summarise_stacks


def test_stacks_summarise_to_self_and_inclusive_shares_without_waits() -> None:
    root = "_run (/srv/x/smartcity/sources/camera.py:300)"
    lines = [
        f"{root};_decode (/srv/x/smartcity/sources/camera.py:500) 60",
        f"{root};_publish (/srv/x/smartcity/sources/camera.py:600);now (/usr/lib/python3.11/time.py:1) 20",
        "Worker.main_loop (/venv/ray/_private/worker.py:900) 500",  # blocked in Ray's core worker
        f"{root};Condition.wait (/usr/lib/python3.11/threading.py:320) 300",  # a decode thread pacing
    ]
    out = summarise_stacks(lines, slots=400)
    assert out["samples"] == 80
    assert out["active_threads"] == pytest.approx(0.2)
    assert out["self"] == {"smartcity/sources/camera.py:_decode": 0.75, "time.py:now": 0.25}
    assert out["inclusive"]["smartcity/sources/camera.py:_run"] == 1.0
    assert out["inclusive"]["smartcity/sources/camera.py:_publish"] == 0.25
