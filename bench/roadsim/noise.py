"""The detector noise model: what a real object detector makes of the true boxes of a frame.

Levels (figures per analysed frame unless said otherwise; "gaps" are in seconds so 5 and 10 fps
see the same physical events):

- clean: exact boxes, score 0.9 +- 0.02, no misses beyond physical occlusion, no false
  positives, no class confusion.
- realistic: ~13-16 % missed detections overall (measured on the quick runs): 4 % at random,
  more for small boxes (up to +12 % below 32 px high) and partly hidden ones (+30 % x hidden
  share), plus short gaps (0.04 per object-second start a 0.4-1.0 s gap); box jitter 3.5 % of the box size per edge
  (independent per edge and frame); class confusion car<->truck and motorcycle<->bicycle 5 %
  per frame; 6 false positives per minute (1-3 frames each, random place with a size that
  fits the perspective, plausible classes); scores 0.3-0.95, lower for small and hidden boxes.
- hard: ~21-26 % missed (6 % at random, +18 % small, +40 % x hidden, gaps 0.07/s of 0.4-1.6 s),
  jitter 5.5 %, confusion 10 % (also bus -> truck), 11 false positives per minute, and a
  duplicate box on 15 % of the frames of large vehicles (a bus or truck detected whole and
  again as its rear part, as real detectors do).

At every level an object whose box is >= 70 % covered by nearer objects' boxes is not
detected (physical occlusion, computed by the camera model, not by the noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from smartcity.core.vision import Detection

F64 = npt.NDArray[np.float64]
SMALL_PX = 32.0  # boxes less high than this are missed more often (up to miss_small at 8 px)
OCCLUDED = 0.70  # share of a box hidden by nearer boxes above which it is not detected

CONFUSE = {"car": "truck", "truck": "car", "motorcycle": "bicycle", "bicycle": "motorcycle"}
FP_CLASSES = {"car": 0.45, "person": 0.3, "bicycle": 0.1, "truck": 0.1, "motorcycle": 0.05}
FP_ASPECT = {"car": 1.6, "person": 0.4, "bicycle": 0.7, "truck": 1.4, "motorcycle": 0.7}  # width / height


@dataclass(frozen=True, slots=True)
class NoiseModel:
    miss: float = 0.0  # independent miss probability per frame
    miss_small: float = 0.0  # extra miss probability for a box under SMALL_PX high (full at 8 px)
    miss_hidden: float = 0.0  # extra miss probability per unit of hidden share
    gap_rate: float = 0.0  # gap starts per object-second
    gap_s: tuple[float, float] = (0.4, 1.0)
    jitter: float = 0.0  # sd of each edge, fraction of the box width (x) / height (y)
    confusion: float = 0.0
    bus_to_truck: float = 0.0
    fp_per_min: float = 0.0
    duplicate: float = 0.0  # probability per frame of a second (rear) box on a bus or truck
    exact_scores: bool = True


NOISE: dict[str, NoiseModel] = {
    "clean": NoiseModel(),
    "realistic": NoiseModel(miss=0.04, miss_small=0.12, miss_hidden=0.30, gap_rate=0.04, gap_s=(0.4, 1.0),
                            jitter=0.035, confusion=0.05, fp_per_min=6.0, exact_scores=False),
    "hard": NoiseModel(miss=0.06, miss_small=0.18, miss_hidden=0.40, gap_rate=0.07, gap_s=(0.4, 1.6),
                       jitter=0.055, confusion=0.10, bus_to_truck=0.10, fp_per_min=11.0, duplicate=0.15,
                       exact_scores=False),
}


@dataclass(slots=True)
class NoiseStats:
    seen: int = 0  # visible, not occluded object-frames
    missed: int = 0
    occluded: int = 0
    false_positives: int = 0
    confused: int = 0
    duplicates: int = 0

    def to_dict(self) -> dict[str, float]:
        return {"seen": self.seen, "missed": self.missed, "miss_rate": round(self.missed / max(1, self.seen), 4),
                "occluded": self.occluded, "false_positives": self.false_positives, "confused": self.confused,
                "duplicates": self.duplicates}


class Detector:
    """Turns the true boxes of successive frames into noisy detections (keeps per-object gap state)."""

    def __init__(self, model: NoiseModel, rng: np.random.Generator, fps: float, width: int, height: int) -> None:
        self.m = model
        self.rng = rng
        self.fps = fps
        self.w, self.h = width, height
        self.gap_left: dict[int, int] = {}
        self.fps_alive: list[tuple[int, Detection]] = []  # false positives still showing (frames left, box)
        self.stats = NoiseStats()

    def frame(self, objs: npt.NDArray[np.int64], classes: list[str], box: F64, hidden: F64) -> tuple[Detection, ...]:
        """Detections of one frame; `box` true clipped boxes of the visible objects, `hidden` their hidden share."""
        m, rng = self.m, self.rng
        out: list[Detection] = []
        n = len(objs)
        occluded = hidden >= OCCLUDED
        self.stats.occluded += int(occluded.sum())
        bw = box[:, 2] - box[:, 0]
        bh = box[:, 3] - box[:, 1]
        u = rng.random((n, 4))  # miss, gap start, confusion, duplicate
        jit = rng.normal(0.0, 1.0, (n, 4))
        score_noise = rng.normal(0.0, 1.0, n)
        for i in range(n):
            if occluded[i]:
                continue
            o = int(objs[i])
            self.stats.seen += 1
            left = self.gap_left.get(o, 0)
            if left > 0:
                self.gap_left[o] = left - 1
                self.stats.missed += 1
                continue
            if m.gap_rate > 0 and u[i, 1] < m.gap_rate / self.fps:
                frames = max(1, round(float(rng.uniform(*m.gap_s)) * self.fps))
                self.gap_left[o] = frames - 1
                self.stats.missed += 1
                continue
            p_miss = m.miss + m.miss_small * min(1.0, max(0.0, (SMALL_PX - bh[i]) / 24.0)) + m.miss_hidden * hidden[i]
            if u[i, 0] < p_miss:
                self.stats.missed += 1
                continue
            cls = classes[i]
            if m.confusion > 0 and u[i, 2] < m.confusion and cls in CONFUSE:
                cls = CONFUSE[cls]
                self.stats.confused += 1
            elif cls == "bus" and u[i, 2] < m.bus_to_truck:
                cls = "truck"
                self.stats.confused += 1
            b = box[i].copy()
            if m.jitter > 0:
                b += jit[i] * m.jitter * np.array([bw[i], bh[i], bw[i], bh[i]])
                b = self._clip(b)
            if m.exact_scores:
                score = float(np.clip(0.9 + 0.01 * score_noise[i], 0.85, 0.95))
            else:
                size = min(1.0, float(np.sqrt(bw[i] * bh[i])) / 120.0)
                score = float(np.clip(0.45 + 0.45 * size - 0.3 * hidden[i] + 0.07 * score_noise[i], 0.3, 0.95))
            out.append(Detection(box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), cls=cls, score=score))
            if m.duplicate > 0 and classes[i] in ("bus", "truck") and bw[i] > 60 and u[i, 3] < m.duplicate:
                out.append(self._rear_part(b, o, cls, score))
                self.stats.duplicates += 1
        out.extend(self._false_positives())
        order = rng.permutation(len(out))  # detectors do not list boxes in object order
        return tuple(out[k] for k in order)

    def _clip(self, b: F64) -> F64:
        x1, x2 = sorted((float(np.clip(b[0], 0, self.w)), float(np.clip(b[2], 0, self.w))))
        y1, y2 = sorted((float(np.clip(b[1], 0, self.h)), float(np.clip(b[3], 0, self.h))))
        return np.array([x1, y1, x2, y2])

    def _rear_part(self, b: F64, o: int, cls: str, score: float) -> Detection:
        share = float(self.rng.uniform(0.45, 0.65))
        w = (b[2] - b[0]) * share
        x1, x2 = (b[0], b[0] + w) if o % 2 == 0 else (b[2] - w, b[2])  # a stable side per vehicle
        y1 = b[1] + (b[3] - b[1]) * float(self.rng.uniform(0.0, 0.2))
        return Detection(box=(float(x1), float(y1), float(x2), float(b[3])), cls=cls,
                         score=float(max(0.3, score - self.rng.uniform(0.05, 0.25))))

    def _false_positives(self) -> list[Detection]:
        m, rng = self.m, self.rng
        alive: list[tuple[int, Detection]] = []
        out: list[Detection] = []
        for left, d in self.fps_alive:  # a false positive lingers 1-3 frames, wobbling a little
            b = np.array(d.box) + rng.normal(0.0, 2.0, 4)
            d = Detection(box=tuple(float(v) for v in self._clip(b)), cls=d.cls, score=d.score)  # type: ignore[arg-type]
            out.append(d)
            if left > 1:
                alive.append((left - 1, d))
        if m.fp_per_min > 0:
            for _ in range(int(rng.poisson(m.fp_per_min / 60.0 / self.fps))):
                keys = list(FP_CLASSES)
                cls = keys[int(rng.choice(len(keys), p=np.array(list(FP_CLASSES.values()))))]
                yb = float(rng.uniform(0.35, 1.0)) * self.h  # bottom on the road part of the picture
                hh = max(10.0, (yb / self.h - 0.3) * 0.5 * self.h * float(rng.uniform(0.6, 1.4)))
                ww = hh * FP_ASPECT[cls] * float(rng.uniform(0.8, 1.25))
                xc = float(rng.uniform(0.05, 0.95)) * self.w
                b = self._clip(np.array([xc - ww / 2, yb - hh, xc + ww / 2, yb]))
                d = Detection(box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), cls=cls,
                              score=float(rng.uniform(0.3, 0.6)))
                out.append(d)
                self.stats.false_positives += 1
                frames = int(rng.integers(1, 4))
                if frames > 1:
                    alive.append((frames - 1, d))
        self.fps_alive = alive
        return out
