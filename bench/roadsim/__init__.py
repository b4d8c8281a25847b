"""roadsim: independently simulated road traffic filmed by a virtual camera, with detector noise,
for benchmarks of tracking and counting (bench/counting.py).

Import it as `roadsim` with bench/ on sys.path (as the benches and tests/bench do):

    sys.path.insert(0, "bench"); from roadsim import build_runs, iter_runs, scene_names

Pipeline per scene and seed: SUMO (eclipse-sumo, extra `bench`) simulates the traffic of a
network built with netconvert from plain XML (bench/roadsim/scenes.py) at 0.1 s steps and writes
floating car data (cached per scene + seed + duration); a pinhole camera (8 m high, 1280x720 by
default, camera.py) films each road user as a 3D box (length/width/height of its class,
oriented by its SUMO heading), whose 8 projected corners give the 2D box, clipped to the
picture; boxes behind the lens or mostly outside the picture are dropped, boxes >= 70 %
hidden by nearer ones are not detected. Ground truth (truth.py) comes from the TRUE boxes:
crossings of each line_count rule's line by the bottom-centre point (the point the rules
use), at interpolated times; wrong_way and dwell episodes. The detector noise model
(noise.py, levels clean / realistic / hard, documented there) turns the true boxes of each
analysed frame (5 or 10 fps) into detections.

Scenes (scene_names()): junction (signalised 4-way, bicycle lanes, turning traffic and queues),
two_way_parking (parking bay stops and double parking 20-60 s: dwell truth),
one_way_contraflow (cars and motorcycles driving against a one-way street: wrong_way truth),
ped_crossing (pedestrians on a zebra crossing with priority, cars stopping for them).

Truth details: a crossing counts when the object is in the picture 0.2 s before and after it (one
5 fps frame on each side), within the line's extent; TrueCrossing also carries speed_kmh and
box_height_px (added fields, with defaults). Dwell truth is a STOP (< 0.2 m/s) of at least
threshold_s inside the zone (t_alert = stop start + threshold), while the dwell rule times
presence in the zone: a car creeping through a zone for 15 s is a rule alert but no truth.
Zones are drawn where the rules' point of cars standing on the place falls (build.footprint_zone).

API: `build_runs(quick=..., seeds=[...])` -> list[SceneRun] (types.py), `iter_runs(...)` the same
as a generator, with `scenes=` and `cache=` (a full run holds millions of boxes: score each run
and drop it). Quick: 180 s per scene after 60 s warm-up, ~13 s CPU for all 24 runs including
SUMO, ~560 true crossings per fps x noise set; full: 900 s per scene (~65 s CPU per scene and
seed for its 6 runs). SUMO results are cached in $ROADSIM_CACHE (default <tmp>/smartcity-roadsim).
CLI: `python -m roadsim --scene junction --fps 5 --noise realistic --seed 1 --out dets.jsonl
--rules-out rules.yaml --truth-out truth.json` (run from bench/), then
`smartcity replay --rules rules.yaml dets.jsonl`.
"""

from .build import build_runs, camera_id, iter_runs, rules_of, scene_names
from .types import NoiseLevel, SceneRun, TrueCrossing, TrueEpisode, Truth

__all__ = [
    "NoiseLevel",
    "SceneRun",
    "TrueCrossing",
    "TrueEpisode",
    "Truth",
    "build_runs",
    "camera_id",
    "iter_runs",
    "rules_of",
    "scene_names",
]
