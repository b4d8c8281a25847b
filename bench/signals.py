"""Traffic-signal control with cameras in the loop, in SUMO: our controllers against SUMO's own
fixed-time plan and SUMO's actuated controller, in the same run.

Scenarios: `junction` (bench/roadsim's signalised 4-way junction: 2 general lanes + a bicycle
lane per arm, turning traffic 420-650 veh/h per approach, pedestrians on signalled crossings;
SUMO's static programme from netconvert) and a RESCO scenario shipped by `sumo-rl`
(`cologne1` by default, its net and routes read from the installed package's data).

Per controller, one SUMO run over the same routes and seed (0.2 s steps):
- fixed: SUMO's static programme of the network, untouched;
- sumo_actuated: the same phases as an `actuated` tlLogic (SUMO's gap-based actuation with its
  own induction loops; greens 5..50 s unless the programme says otherwise);
- ours, cameras in the loop: every 0.2 s the vehicles within 150 m are filmed by one virtual
  camera per approach (10 m high, on the stop line's right, looking upstream; roadsim's pinhole
  model and detector noise, `realistic` by default), tracked and run through an occupancy rule
  (queue zone, 60 m per lane) and a line_count rule (30 m upstream) by smartcity's ByteTracker +
  RuleEngine; the lane measures drive the controller once per second; every command goes
  through the safety layer, then TraCI (setRedYellowGreenState). Ours: `max_pressure` (the
  headline), `actuated` (gap-out / max-out from the cameras' arrivals and queues) and `webster`
  (fixed-time, the static greens first, retimed by Webster's method from the cameras' counts
  every 5 minutes).

Figures: mean_delay_s = mean over every trip that started of SUMO's timeLoss + departDelay
(unfinished trips included), throughput = trips finished, teleports (time-to-teleport 300 s),
collisions, safety_violations = breaches seen by the safety monitor on the states read back from
SUMO every step (conflicting greens, short greens, short amber, green to red without amber,
all-red, overlong green), for every controller.

Usage: python bench/signals.py [--quick] [--scenario junction|cologne1|ingolstadt1 ...] [--noise N] [--seed S]
The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
for _p in (str(BENCH_DIR.parent), str(BENCH_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402
from roadsim.scenes import junction as junction_scene  # noqa: E402
from roadsim.sumo import sumo_binary  # noqa: E402
from signalsim.run import RunResult, Scenario, run  # noqa: E402

OURS = ("max_pressure", "actuated", "webster")
HEADLINE = "max_pressure"
RESCO = {"cologne1": ("GS_cluster_357187_359543", 25200.0), "ingolstadt1": ("gneJ207", 57600.0)}


def resco_dir(name: str) -> Path:
    """The RESCO scenario's folder in the installed sumo-rl package (its data only: sumo_rl is not
    imported, it wants SUMO_HOME and gym at import)."""
    spec = importlib.util.find_spec("sumo_rl")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("sumo-rl is not installed: pip install -e '.[bench]'")
    return Path(next(iter(spec.submodule_search_locations))) / "nets" / "RESCO" / name


def resco(name: str, duration_s: float) -> Scenario:
    d = resco_dir(name)
    tls, begin = RESCO[name]
    return Scenario(name, d / f"{name}.net.xml", (d / f"{name}.rou.xml",), tls, begin, begin + duration_s)


def single_junction(tmp: Path, duration_s: float, seed: int) -> Scenario:
    scene = junction_scene()
    net = scene.network
    (tmp / "n.nod.xml").write_text(net.nodes)
    (tmp / "n.edg.xml").write_text(net.edges)
    subprocess.run(
        [
            sumo_binary("netconvert"),
            "-n",
            "n.nod.xml",
            "-e",
            "n.edg.xml",
            "-o",
            "n.net.xml",
            "--offset.disable-normalization",
            "true",
            "--no-turnarounds",
            "true",
            *net.options,
        ],
        cwd=tmp,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (tmp / "r.rou.xml").write_text(scene.routes(np.random.default_rng(seed), duration_s))
    return Scenario("junction", tmp / "n.net.xml", (tmp / "r.rou.xml",), "C", 0.0, duration_s)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b > 0 else None


def summarise(results: list[RunResult]) -> dict[str, Any]:
    by = {r.controller: r for r in results}
    fixed, act = by.get("fixed"), by.get("sumo_actuated")
    out: dict[str, Any] = {
        "mean_delay_s": {k: r.mean_delay_s for k, r in by.items()},
        "throughput": {k: r.arrived for k, r in by.items()},
        "vehicles": {k: r.vehicles for k, r in by.items()},
        "teleports": {k: r.teleports for k, r in by.items()},
        "collisions": {k: r.collisions for k, r in by.items()},
        "safety_violations": {k: r.safety_violations for k, r in by.items()},
        "camera_frames": {k: r.camera_frames for k, r in by.items() if r.camera_frames},
        "overrides": {k: r.overrides for k, r in by.items() if r.controller in OURS},
        "fallback_steps": {k: r.fallback_steps for k, r in by.items() if r.controller in OURS},
    }
    for label, base in (("delay_ratio_vs_fixed", fixed), ("delay_ratio_vs_sumo_actuated", act)):
        if base is not None:
            out[label] = {k: _ratio(by[k].mean_delay_s, base.mean_delay_s) for k in OURS if k in by}
    ours = by.get(HEADLINE)
    if ours is not None and fixed is not None and act is not None:
        out["ours"] = HEADLINE
        out["goals"] = {
            "delay_ratio_vs_fixed<=0.70": (out["delay_ratio_vs_fixed"][HEADLINE] or 9) <= 0.70,
            "delay_ratio_vs_sumo_actuated<1.0": (out["delay_ratio_vs_sumo_actuated"][HEADLINE] or 9) < 1.0,
            "safety_violations==0": all(by[k].safety_violations == 0 for k in OURS if k in by),
            "teleports==0": all(by[k].teleports == 0 for k in OURS if k in by),
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 simulated minutes per scenario (default: 60)")
    ap.add_argument(
        "--scenario", action="append", choices=["junction", *RESCO], help="default: junction and cologne1"
    )
    ap.add_argument(
        "--controllers", default=None, help="default: fixed, sumo_actuated and ours (--quick: no webster)"
    )
    ap.add_argument("--noise", default="realistic", choices=["clean", "realistic", "hard"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=None, help="simulated seconds per scenario")
    args = ap.parse_args(argv)
    duration = args.duration or (600.0 if args.quick else 3600.0)
    controllers = args.controllers or ",".join(
        ("fixed", "sumo_actuated", *(OURS[:2] if args.quick else OURS))
    )
    scenarios = args.scenario or ["junction", "cologne1"]
    result: dict[str, Any] = {
        "bench": "signals",
        "quick": args.quick,
        "noise": args.noise,
        "seed": args.seed,
        "duration_s": duration,
        "camera_fps": 5,
        "scenarios": {},
    }
    with tempfile.TemporaryDirectory(prefix="signals-bench-") as tmpd:
        for name in scenarios:
            sc = (
                single_junction(Path(tmpd), duration, args.seed)
                if name == "junction"
                else resco(name, duration)
            )
            runs = []
            for ctl in controllers.split(","):
                t0 = time.perf_counter()
                r = run(sc, ctl, seed=args.seed, noise=args.noise)
                runs.append(r)
                print(
                    f"{name:12s} {ctl:14s} delay {r.mean_delay_s:7.2f} s  arrived {r.arrived:5d}/{r.vehicles:5d}  "
                    f"teleports {r.teleports}  violations {r.safety_violations}  ({time.perf_counter() - t0:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            result["scenarios"][name] = summarise(runs)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
