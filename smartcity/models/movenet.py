"""The `movenet` pose model: MoveNet MultiPose Lightning (17 COCO keypoints) on the detector's person
boxes, plus a frame-wide pass that finds the people the detector missed.

Each person box the detector found is cut out as a square around it (a margin on every side, so
that a person lying across the box still fits, zero-filled beyond the frame), resized to the
network input, and run through MoveNet MultiPose Lightning by LiteRT (`ai-edge-litert`). Of the
up to six people the network finds in the crop, the one whose own box best overlaps the detector's
box gives that box its keypoints; a crop where nobody overlaps enough gives none.

Why crops and not whole frames: in a street camera people are 50-150 px tall, a few pixels once
a whole frame is shrunk to the network's 192-256 px input, and MoveNet then misses their limbs;
a crop keeps them at full resolution. The graph takes one image per call (its batch dimension is
squeezed inside), so a batch of boxes is a loop of calls on one interpreter, with no per-call
allocation. Keypoints come back in pixels of the frame, in COCO order (`COCO_KEYPOINTS`).

The frame-wide pass (`find_people`, `PersonFinder`): YOLOv3-tiny misses most people lying on the
floor, which is what fall rules look for; MoveNet, run once on the whole frame, finds them. The
people it finds that no detector box covers join the frame's detections, with their keypoints.
Only a box the detector scored at least `cover_score` covers: the detector often sees part of a
person lying (the legs, at 0.25-0.35) where the frame-wide pass sees all of them, and such a box
starts no track, so hiding the person behind it loses them (UP-Fall activity 3, trial 3: 3 s of
a fallen person under a weak box, no track, the fall missed).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from smartcity.core.vision import Box, Detection, Keypoint, Keypoints
from smartcity.models.install import default_model_dir
from smartcity.models.pose_install import MOVENET_FILE
from smartcity.models.registry import register_model
from smartcity.models.roles import Image, MissingDependency, ModelError, ModelRole, PoseFound

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
MAX_BOXES_PER_CALL = 256  # a frame with more people than this gets keypoints for the first 256
_ROW = 56  # per person: 17 x (y, x, score), box (ymin, xmin, ymax, xmax), pose score


class MoveNetConfig(BaseModel):
    """MoveNet MultiPose Lightning on person crops, run by LiteRT on the CPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["movenet"] = Field("movenet", description="Pose model type.")
    model: Path | None = Field(
        None, description="The .tflite file. Default: movenet.tflite installed by `smartcity models install`."
    )
    input_size: int = Field(
        192,
        description="Side of the square network input in pixels (multiple of 32). 192 runs ~2x faster than 256 "
        "with the person filling the crop (bench/emergency_falls.py).",
        ge=96,
        le=512,
        multiple_of=32,
    )
    margin: float = Field(
        0.15, description="Crop margin on each side, as a share of the box's longer side.", ge=0, le=1
    )
    min_pose_score: float = Field(
        0.15, description="A pose the network scores below this is ignored.", ge=0, le=1
    )
    min_overlap: float = Field(
        0.3,
        description="Least IoU between a found pose's box and the detector's box for it to count.",
        gt=0,
        le=1,
    )
    num_threads: int = Field(1, description="CPU threads of the LiteRT interpreter.", ge=1, le=64)
    find_people: bool = Field(
        True,
        description="Also run one frame-wide pass per frame and report the people it finds that no detector "
        "box covers: a general detector misses most people lying on the ground.",
    )
    find_input_size: int = Field(
        256,
        description="Side of the square input of the frame-wide pass (multiple of 32).",
        ge=96,
        le=640,
        multiple_of=32,
    )
    find_min_score: float = Field(
        0.2, description="Least pose score of a person the frame-wide pass reports.", ge=0, le=1
    )
    cover_score: float = Field(
        0.45,
        description="Least detector score of a box that hides a person the frame-wide pass finds under it (the "
        "tracker's default new_track_score: a weaker box starts no track of the person it half-sees).",
        ge=0,
        le=1,
    )
    found_score: float = Field(
        0.5,
        description="Detection score given to the people the frame-wide pass reports (MoveNet's pose score is "
        "not a detector's confidence: a clear person lying on the floor scores 0.3-0.45, below the tracker's "
        "new-track score).",
        gt=0,
        le=1,
    )


def _interpreter_class(needed_by: str) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise MissingDependency("ai-edge-litert", needed_by) from exc
    return Interpreter


@register_model("movenet", roles=[ModelRole.POSE], config=MoveNetConfig)
class MoveNetPose:
    """Role `pose`: 17 COCO keypoints per person box (empty where no pose matches the box)."""

    def __init__(self, config: MoveNetConfig) -> None:
        self.config = config
        path = config.model or default_model_dir() / MOVENET_FILE
        if not path.is_file():
            raise ModelError(f"MoveNet model {path} does not exist: run `smartcity models install`")
        interpreter = _interpreter_class("the movenet pose model")
        self._crops = _Net(interpreter, path, config.input_size, config.num_threads)
        # the frame-wide pass has its own interpreter: resizing one back and forth reallocates it
        self._frames = (
            _Net(interpreter, path, config.find_input_size, config.num_threads)
            if config.find_people
            else None
        )
        self.calls = 0

    def pose_and_find(
        self,
        frames: Sequence[Image],
        boxes: Sequence[Sequence[Box]],
        scores: Sequence[Sequence[float]] | None = None,
    ) -> list[PoseFound]:
        keypoints = self.pose(frames, boxes)
        if self._frames is None:
            return [PoseFound(tuple(k)) for k in keypoints]
        if scores is not None and len(scores) != len(boxes):
            raise ModelError(f"pose_and_find: {len(boxes)} box lists but {len(scores)} score lists")
        return [
            PoseFound(
                tuple(k),
                self._find(frame, covering(frame_boxes, None if scores is None else scores[i], self.config)),
            )
            for i, (frame, frame_boxes, k) in enumerate(zip(frames, boxes, keypoints))
        ]

    def _find(self, frame: Image, boxes: Sequence[Box]) -> tuple[Detection, ...]:
        h, w = frame.shape[:2]
        return people_from_rows(self.frame_rows(frame), w, h, boxes, self.config)

    def frame_rows(self, frame: Image) -> np.ndarray:
        """The raw [6, 56] output of the frame-wide pass (the frame centred in a square of its
        longer side): what `people_from_rows` reads."""
        if self._frames is None:
            raise ModelError("this movenet model has no frame-wide pass (find_people is off)")
        h, w = frame.shape[:2]
        side = float(max(w, h))
        self.calls += 1
        return self._frames.run(
            _square_crop(frame, (w - side) / 2.0, (h - side) / 2.0, side, self.config.find_input_size)
        )

    def pose(self, frames: Sequence[Image], boxes: Sequence[Sequence[Box]]) -> list[list[Keypoints]]:
        if len(frames) != len(boxes):
            raise ModelError(f"pose: {len(frames)} frames but {len(boxes)} box lists")
        return [
            [self._one(f, b) for b in frame_boxes[:MAX_BOXES_PER_CALL]]
            for f, frame_boxes in zip(frames, boxes)
        ]

    def _one(self, frame: Image, box: Box) -> Keypoints:
        cfg = self.config
        h, w = frame.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        if not (x2 > x1 and y2 > y1):
            return ()
        side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * cfg.margin)
        ox, oy = (x1 + x2 - side) / 2.0, (y1 + y2 - side) / 2.0
        rows = self._crops.run(_square_crop(frame, ox, oy, side, cfg.input_size))
        self.calls += 1
        target = ((x1 - ox) / side, (y1 - oy) / side, (x2 - ox) / side, (y2 - oy) / side)
        best = _best_row(rows, target, cfg.min_pose_score, cfg.min_overlap)
        if best is None:
            return ()
        return _keypoints(best, ox, oy, side, w, h)


def covering(boxes: Sequence[Box], scores: Sequence[float] | None, cfg: MoveNetConfig) -> list[Box]:
    """The boxes that hide a person the frame-wide pass finds under them: those the detector
    scored at least `cover_score` (every box when the scores are not given)."""
    if scores is None:
        return list(boxes)
    if len(scores) != len(boxes):
        raise ModelError(f"{len(boxes)} boxes but {len(scores)} scores")
    return [b for b, s in zip(boxes, scores) if s >= cfg.cover_score]


def people_from_rows(
    rows: np.ndarray, w: int, h: int, boxes: Sequence[Box], cfg: MoveNetConfig
) -> tuple[Detection, ...]:
    """People of a frame-wide pass (`rows`, on the frame centred in a square of its longer side)
    that no box in `boxes` covers (IoU under min_overlap), as person detections with keypoints."""
    side = float(max(w, h))
    ox, oy = (w - side) / 2.0, (h - side) / 2.0
    found: list[Detection] = []
    for row in rows:
        if float(row[55]) < cfg.find_min_score:
            continue
        y1, x1, y2, x2 = (float(v) for v in row[51:55])
        box = (
            min(max(ox + x1 * side, 0.0), w - 1.0), min(max(oy + y1 * side, 0.0), h - 1.0),
            min(max(ox + x2 * side, 0.0), w - 1.0), min(max(oy + y2 * side, 0.0), h - 1.0),
        )  # fmt: skip
        if box[2] <= box[0] or box[3] <= box[1] or any(_iou(box, b) >= cfg.min_overlap for b in boxes):
            continue
        found.append(Detection(box, "person", cfg.found_score, _keypoints(row, ox, oy, side, w, h)))
    return tuple(found)


class _Net:
    """One LiteRT interpreter of MoveNet MultiPose at a fixed square input size."""

    def __init__(self, interpreter: Any, path: Path, size: int, num_threads: int) -> None:
        try:
            self._it = interpreter(model_path=str(path), num_threads=num_threads)
            self._it.resize_tensor_input(self._it.get_input_details()[0]["index"], (1, size, size, 3))
            self._it.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{path}: LiteRT cannot load it as MoveNet MultiPose: {exc}") from exc
        self._input = int(self._it.get_input_details()[0]["index"])
        out = self._it.get_output_details()[0]
        if tuple(out["shape"])[-1] != _ROW:
            raise ModelError(f"{path}: output {list(out['shape'])} is not MoveNet MultiPose's [1, 6, 56]")
        self._output = int(out["index"])
        self._lock = threading.Lock()  # one interpreter, one caller at a time

    def run(self, image: np.ndarray) -> np.ndarray:
        """The [6, 56] rows of one square uint8 RGB image of the interpreter's size."""
        with self._lock:
            self._it.set_tensor(self._input, image[None])
            self._it.invoke()
            return np.array(self._it.get_tensor(self._output)[0], dtype=np.float32)


def _keypoints(row: np.ndarray, ox: float, oy: float, side: float, w: int, h: int) -> Keypoints:
    """The 17 keypoints of one output row, from crop units back to frame pixels."""
    yxs = row[:51].reshape(17, 3)
    px = np.clip(ox + yxs[:, 1] * side, 0, w - 1)
    py = np.clip(oy + yxs[:, 0] * side, 0, h - 1)
    return tuple(Keypoint(float(x), float(y), float(s)) for x, y, s in zip(px, py, yxs[:, 2]))


def _iou(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _square_crop(frame: Image, ox: float, oy: float, side: float, size: int) -> np.ndarray:
    """The square [ox, ox + side) x [oy, oy + side) of `frame` resized to size x size (black outside)."""
    h, w = frame.shape[:2]
    s = max(1, round(side))
    x0, y0 = round(ox), round(oy)
    canvas = np.zeros((s, s, 3), dtype=np.uint8)
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + s), min(h, y0 + s)
    if fx1 > fx0 and fy1 > fy0:
        canvas[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] = frame[fy0:fy1, fx0:fx1]
    if s == size:
        return canvas
    import torch  # here, not at import: checking a configuration that names movenet stays light
    import torch.nn.functional as F

    t = torch.from_numpy(canvas).permute(2, 0, 1)[None].float()
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=s > size)
    return np.ascontiguousarray(out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy())


def _best_row(
    rows: np.ndarray, target: tuple[float, float, float, float], min_score: float, min_iou: float
) -> np.ndarray | None:
    """The detected pose that best matches `target` (x1, y1, x2, y2 in crop units), by IoU x score."""
    tx1, ty1, tx2, ty2 = target
    best, best_key = None, 0.0
    for row in rows:
        score = float(row[55])
        if score < min_score:
            continue
        y1, x1, y2, x2 = (float(v) for v in row[51:55])
        iw = max(0.0, min(x2, tx2) - max(x1, tx1))
        ih = max(0.0, min(y2, ty2) - max(y1, ty1))
        inter = iw * ih
        union = (x2 - x1) * (y2 - y1) + (tx2 - tx1) * (ty2 - ty1) - inter
        iou = inter / union if union > 0 else 0.0
        if iou >= min_iou and iou * score > best_key:
            best, best_key = row, iou * score
    return best
