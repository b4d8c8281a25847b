"""bench/signalsim's own parts on a real SUMO run: a traffic light becomes a valid junction model
(conflicts = groups never green together in SUMO's programme), aspects round-trip through the
state string, SUMO's own programme scores as the figures say, and a short run with cameras in
the loop commands the light through the extension's runtime without a breach."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
from roadsim.sumo import sumo_available

from smartcity.core.video import SignalState

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
if not sumo_available():  # pragma: no cover - depends on the machine
    if IN_CI:
        raise RuntimeError("eclipse-sumo is missing (pip install -e '.[bench]')")
    pytest.skip("eclipse-sumo not installed", allow_module_level=True)
traci = pytest.importorskip("traci")

from signals import single_junction  # noqa: E402
from signalsim.run import run  # noqa: E402
from signalsim.tls import junction_of  # noqa: E402


def test_the_junction_model_of_a_sumo_light(tmp_path: Path) -> None:
    from roadsim.sumo import sumo_binary

    sc = single_junction(tmp_path, 60.0, 1)
    label = f"t-{uuid.uuid4().hex[:8]}"
    traci.start([sumo_binary("sumo"), "-n", str(sc.net), "--no-step-log", "true"], label=label)
    conn = traci.getConnection(label)
    try:
        j = junction_of(conn, sc.tls)
        programme = [ph.state for ph in conn.trafficlight.getAllProgramLogics(sc.tls)[0].phases]
    finally:
        conn.close()
    cfg = j.config
    assert len(cfg.phases) >= 2 and cfg.conflicts
    assert any(g.kind == "pedestrian" for g in cfg.signal_groups)  # the signalled crossings
    for phase in cfg.phases:  # a phase's groups green: exactly its links green, nothing conflicting
        states = {
            g.id: SignalState.GREEN if g.id in phase.groups else SignalState.RED for g in cfg.signal_groups
        }
        s = j.state_string(states)
        assert j.read_states(s) == states
        # the links green are exactly those green in one of SUMO's own phases
        assert any(all((a in "Gg") == (b in "Gg") for a, b in zip(s, p, strict=True)) for p in programme)


def test_a_short_run_with_cameras_in_the_loop_is_safe() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sc = single_junction(Path(tmp), 40.0, 1)
        fixed = run(sc, "fixed")
        ours = run(sc, "max_pressure")
    assert fixed.vehicles > 5 and fixed.camera_frames == 0
    assert ours.camera_frames == 4 * 200  # 4 approaches, 5 fps, 40 s
    assert ours.safety_violations == 0 and ours.teleports == 0 and ours.collisions == 0
    assert ours.vehicles > 5 and ours.mean_delay_s >= 0
