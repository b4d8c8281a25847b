"""`python -m roadsim`: one scene run written as a detections log, its rules and its truth."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import yaml

from smartcity.sources.detlog import DetectionLogWriter

from .build import iter_runs, scene_names
from .draw import draw_frame
from .scenes import SCENES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m roadsim", description=__doc__)
    ap.add_argument("--scene", choices=scene_names(), required=True)
    ap.add_argument("--fps", type=float, default=5.0, choices=(5.0, 10.0))
    ap.add_argument("--noise", choices=("clean", "realistic", "hard"), default="realistic")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=None, help="analysed seconds (default 180, --full 900)")
    ap.add_argument("--full", action="store_true", help="full-length run (900 s)")
    ap.add_argument("--out", type=Path, required=True, help="detections log (JSON lines, smartcity replay format)")
    ap.add_argument("--rules-out", type=Path, required=True, help="rules file (YAML)")
    ap.add_argument("--truth-out", type=Path, required=True, help="ground truth (JSON)")
    ap.add_argument("--png", type=Path, default=None, help="also draw frame --png-frame to this PNG")
    ap.add_argument("--png-frame", type=int, default=100)
    args = ap.parse_args(argv)
    run = next(iter_runs(quick=not args.full, seeds=[args.seed], fps_list=[args.fps], noise_levels=[args.noise],
                         duration_s=args.duration, scenes=[args.scene]))
    with DetectionLogWriter(args.out, append=False) as w:
        for f in run.frames:
            w.write(f.camera, f.t, f.width, f.height, f.detections)
    args.rules_out.parent.mkdir(parents=True, exist_ok=True)
    args.rules_out.write_text(yaml.safe_dump(run.rules, sort_keys=False))
    args.truth_out.parent.mkdir(parents=True, exist_ok=True)
    args.truth_out.write_text(json.dumps({"scene": run.scene, "camera_id": run.camera_id, "fps": run.fps,
                                          "noise": run.noise, "seed": run.seed, "duration_s": run.duration_s,
                                          "truth": asdict(run.truth), "meta": run.meta}, indent=1))
    if args.png is not None:
        draw_frame(run, SCENES[run.scene]().camera, min(args.png_frame, len(run.frames) - 1), args.png)
    print(json.dumps({"frames": len(run.frames), "crossings": len(run.truth.crossings),
                      "wrong_way": len(run.truth.wrong_way), "dwell": len(run.truth.dwell),
                      "noise": run.meta["noise"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
