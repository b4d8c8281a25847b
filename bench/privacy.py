"""The private mask against the by-eye truth: are the annotated people hidden, and at what cost.

Usage: python bench/privacy.py [--quick] [--model-dir DIR] [--video PATH] [--fps F]
Each clip is decoded in order; every frame due at `--fps` (5, the default analysis rate) goes
through the installed detector (YOLOv3-tiny, shipped config: score >= 0.1), the tracker and the
masker, as in a camera actor (the motion gate left out: the detector sees every analysed frame).
The annotated frames are analysed too (live views, snapshots and evidence show analysed frames,
each with its own mask); on them each annotated person's box is compared with the mask of the
operator's default view:

- `persons_exposed`: annotated people with more than 10 % of their box unmasked (goal 0);
- `exposed_area_fraction`: unmasked share of all annotated person-box area;
- `masked_area_fraction`: share of the whole picture masked (the cost of privacy);
- `detector_only_*`: the method before the fail-closed mask (person detections and tracks, grown
  by half their size), same frames, same detector run;
- `ms_per_frame`: the masker's time per analysed frame (background model + mask).

A frame whose mask cannot be trusted (model warming up) is hidden whole and counts as masked.
Truth: vtest.avi (--video, or SMARTCITY_DEMO_VIDEO) every 20th frame (tests/data/annotations/vtest_every20.json) and, when
../shared/data (or SMARTCITY_SHARED_DATA) is present, four UP-Fall clips (upfall_*.json: a fall forward, a fall sideways,
walking, lying down). `--quick`: the frames up to 400 of each clip.
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annotations import ANNOTATIONS_DIR, VTEST, Annotations, load_annotations  # noqa: E402

from smartcity.core.privacy_config import PrivacyConfig  # noqa: E402
from smartcity.models.config import DarknetDetectorConfig  # noqa: E402
from smartcity.models.darknet_detector import DarknetDetector  # noqa: E402
from smartcity.models.install import default_model_dir, install_default_model  # noqa: E402
from smartcity.privacy import PrivacyMask, PrivacyMasker, private_boxes  # noqa: E402
from smartcity.sources import demo_video_path  # noqa: E402
from smartcity.tracking import ByteTracker, TrackerConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SMARTCITY_SHARED_DATA", REPO.parent / "shared" / "data"))
UPFALL = ("upfall_a1_t1.json", "upfall_a4_t1.json", "upfall_a6_t1.json", "upfall_a11_t1.json")
EXPOSED = 0.10


@dataclass
class Tally:
    persons: int = 0
    exposed: int = 0
    box_area: float = 0.0
    unmasked_area: float = 0.0
    masked_area: float = 0.0
    frames: int = 0
    exposed_at: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for f in ("persons", "exposed", "box_area", "unmasked_area", "masked_area", "frames", "exposed_at"):
            setattr(self, f, getattr(self, f) + getattr(other, f))

    def score(self, ann_boxes: list[tuple[int, int, int, int]], masked: np.ndarray, where: str = "") -> None:
        self.frames += 1
        self.masked_area += float(masked.mean())
        for x1, y1, x2, y2 in ann_boxes:
            area = (x2 - x1) * (y2 - y1)
            clear = float((~masked[y1:y2, x1:x2]).sum())
            self.persons += 1
            self.box_area += area
            self.unmasked_area += clear
            if clear > EXPOSED * area:
                self.exposed += 1
                self.exposed_at.append(f"{where} {[x1, y1, x2, y2]} {clear / area:.2f}")

    def as_json(self, prefix: str = "") -> dict[str, float | int]:
        return {
            f"{prefix}persons_exposed": self.exposed,
            f"{prefix}exposed_area_fraction": round(self.unmasked_area / self.box_area, 4)
            if self.box_area
            else 0.0,
            f"{prefix}masked_area_fraction": round(self.masked_area / self.frames, 4) if self.frames else 0.0,
        }


@dataclass
class ClipResult:
    name: str
    mask: Tally = field(default_factory=Tally)
    detector_only: Tally = field(default_factory=Tally)
    untrusted_frames: int = 0
    analysed: int = 0
    mask_s: float = 0.0
    boxes_s: float = 0.0
    detect_s: float = 0.0


def run_clip(
    name: str,
    video: Path,
    ann: Annotations,
    detector: DarknetDetector,
    config: PrivacyConfig,
    fps: float,
    last_frame: int,
) -> ClipResult:
    want = {
        f.index: [o.box for o in f.objects if o.cls == "person"] for f in ann.frames if f.index <= last_frame
    }
    res = ClipResult(name)
    masker = PrivacyMasker(config.mask, config.background)
    tracker = ByteTracker(TrackerConfig())
    full = np.ones((ann.height, ann.width), dtype=bool)
    latest_mask: np.ndarray | None = None
    latest_boxes: np.ndarray | None = None
    next_t = 0.0
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        if (stream.codec_context.width, stream.codec_context.height) != (ann.width, ann.height):
            raise SystemExit(
                f"{video} is not the annotated video of {name} ({ann.width}x{ann.height}): see --video"
            )
        rate = float(stream.average_rate or 25)
        for i, frame in enumerate(container.decode(stream)):
            if i > last_frame:
                break
            t = i / rate
            due = t + 1e-9 >= next_t
            # an annotated frame is analysed too: live views and snapshots show analysed frames
            # (each with its own mask), so that is the picture a viewer could see
            if due or i in want:
                if due:
                    next_t += 1.0 / fps
                image = frame.to_ndarray(format="rgb24")
                t0 = time.perf_counter()
                dets = detector.detect([image])[0]
                res.detect_s += time.perf_counter() - t0
                masker.detector_answered(t)
                tracks = tracker.update(dets, t, (ann.width, ann.height))
                t0 = time.perf_counter()
                mask = masker.update(image, t, dets, tracks)
                res.mask_s += time.perf_counter() - t0
                res.analysed += 1
                res.untrusted_frames += mask is None
                latest_mask = full if mask is None else mask.pixels()
                t0 = time.perf_counter()
                boxes = private_boxes([*dets, *tracks], ann.width, ann.height)
                latest_boxes = PrivacyMask.from_boxes(boxes, ann.width, ann.height, factor=1).pixels()
                res.boxes_s += time.perf_counter() - t0
            if i in want and latest_mask is not None and latest_boxes is not None:
                res.mask.score(want[i], latest_mask, f"{name}#{i}")
                res.detector_only.score(want[i], latest_boxes, f"{name}#{i}")
    return res


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the frames up to 400 of each clip")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--video", type=Path, default=None, help="vtest.avi (default: the demo video)")
    ap.add_argument("--fps", type=float, default=5.0, help="analysed frames per second (default 5)")
    args = ap.parse_args(argv)
    model_dir = install_default_model(args.model_dir or default_model_dir())
    detector = DarknetDetector(
        DarknetDetectorConfig(device="cpu", runtime="onnxruntime", conf_threshold=0.1), model_dir=model_dir
    )
    config = PrivacyConfig()
    clips: list[tuple[str, Path, Annotations, int]] = []
    vtest = load_annotations(VTEST)
    clips.append(("vtest", args.video or demo_video_path(), vtest, 400 if args.quick else 10**9))
    if SHARED.is_dir():
        for name in UPFALL:
            ann = load_annotations(ANNOTATIONS_DIR / name)
            clips.append((name.removesuffix(".json"), SHARED / ann.video, ann, 400 if args.quick else 10**9))
    results = [run_clip(n, v, a, detector, config, args.fps, last) for n, v, a, last in clips]
    total, base = Tally(), Tally()
    for r in results:
        total.add(r.mask)
        base.add(r.detector_only)
        print(
            json.dumps(
                {
                    "clip": r.name,
                    "persons": r.mask.persons,
                    **r.mask.as_json(),
                    **r.detector_only.as_json("detector_only_"),
                    "untrusted_frames": r.untrusted_frames,
                    "analysed": r.analysed,
                    "exposed": r.mask.exposed_at,
                    "detector_only_exposed": r.detector_only.exposed_at,
                }
            )
        )
    analysed = sum(r.analysed for r in results)
    out: dict[str, object] = {
        "persons": total.persons,
        "frames": total.frames,
        **total.as_json(),
        **base.as_json("detector_only_"),
        "ms_per_frame": round(1000 * sum(r.mask_s for r in results) / max(1, analysed), 2),
        "detector_only_ms_per_frame": round(1000 * sum(r.boxes_s for r in results) / max(1, analysed), 2),
        "detector_ms_per_frame": round(1000 * sum(r.detect_s for r in results) / max(1, analysed), 2),
        "analysed_frames": analysed,
        "fps": args.fps,
        "clips": [r.name for r in results],
        "quick": args.quick,
        "default_view": config.default_view,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
