"""Fire and smoke footage for bench/emergency.py: real flame and smoke overlays (alpha masks)
composited into street scenes at known places and times, the real fire clip with its per-frame
boxes, and the negatives (vtest.avi, a road scene). Reads ../shared/data; nothing is copied.

`fire_cases(quick)` lists the clips; `frames(case)` yields (t, RGB frame, truth box or None)
at the analysis rate, the truth box being where the composited or annotated fire is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SMARTCITY_SHARED_DATA", ROOT.parent / "shared" / "data"))
FIRE = DATA / "fire"
VTEST = Path(os.environ.get("SMARTCITY_DEMO_VIDEO", ROOT / "data" / "vtest.avi"))
ROAD = DATA / "traffic" / "ckuhn_traffic.mp4"
Frame = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]  # normalised x1, y1, x2, y2


@dataclass(frozen=True)
class Case:
    name: str
    video: Path
    kind: str  # fire, smoke or none (a negative)
    overlay: str | None = None  # e.g. fire-3 (under fire/overlays)
    place: tuple[float, float] = (0.5, 0.8)  # bottom centre of the overlay, normalised
    width: float = 0.18  # overlay width, share of the frame width
    start_s: float = 12.0  # composited from here (the background model settles in 10 s)...
    end_s: float = 24.0  # ...to here
    duration_s: float = 28.0  # frames read from the video


def data_available() -> bool:
    return FIRE.is_dir() and VTEST.is_file()


def decode(path: Path, fps: float, max_s: float | None = None) -> Iterator[tuple[float, Frame]]:
    """(t, RGB frame) at about `fps` (every k-th decoded frame), from t = 0."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        rate = float(stream.average_rate or 25)
        step = max(1, round(rate / fps))
        for i, frame in enumerate(c.decode(stream)):
            t = i / rate
            if max_s is not None and t > max_s:
                return
            if i % step == 0:
                yield t, frame.to_ndarray(format="rgb24")


def _overlay(name: str, width_px: int) -> list[tuple[Frame, npt.NDArray[np.float32]]]:
    """The overlay's frames scaled (nearest) to `width_px`, each with its alpha in [0, 1]."""
    rgb = [f for _, f in decode(FIRE / "overlays" / f"{name}.webm", 30.0)]
    alpha = [f for _, f in decode(FIRE / "overlays" / f"{name}_alpha.mp4", 30.0)]
    n = min(len(rgb), len(alpha))
    h0, w0 = rgb[0].shape[:2]
    height_px = max(1, round(h0 * width_px / w0))
    ys = (np.arange(height_px) * h0 / height_px).astype(int)
    xs = (np.arange(width_px) * w0 / width_px).astype(int)
    return [(rgb[i][ys][:, xs], alpha[i][ys][:, xs, 0].astype(np.float32) / 255.0) for i in range(n)]


def frames(case: Case, fps: float) -> Iterator[tuple[float, Frame, Box | None]]:
    """The case's frames at `fps` with the truth box (None where no fire or smoke is shown)."""
    if case.name == "house6":
        yield from _house6(fps)
        return
    over: list[tuple[Frame, npt.NDArray[np.float32]]] = []
    for t, img in decode(case.video, fps, case.duration_s):
        h, w = img.shape[:2]
        if case.overlay is None or not (case.start_s <= t < case.end_s):
            yield t, img, None
            continue
        if not over:
            over = _overlay(case.overlay, max(8, round(case.width * w)))
        k = int((t - case.start_s) * 30.0)
        period = 2 * len(over) - 2
        k %= max(1, period)
        rgb, a = over[k if k < len(over) else period - k]  # back and forth: the clip is 3 s
        oh, ow = a.shape
        x0 = int(case.place[0] * w - ow / 2)
        y0 = int(case.place[1] * h - oh)
        x0, y0 = max(0, min(w - ow, x0)), max(0, min(h - oh, y0))
        out = img.copy()
        region = out[y0 : y0 + oh, x0 : x0 + ow].astype(np.float32)
        blended = region * (1 - a[..., None]) + rgb.astype(np.float32) * a[..., None]
        out[y0 : y0 + oh, x0 : x0 + ow] = blended.astype(np.uint8)
        ys, xs = np.nonzero(a > 0.3)
        box = (
            ((x0 + xs.min()) / w, (y0 + ys.min()) / h, (x0 + xs.max() + 1) / w, (y0 + ys.max() + 1) / h)
            if len(ys)
            else None
        )
        yield t, out, box


def house6_boxes() -> dict[int, list[tuple[int, int, int, int]]]:
    """Frame number -> flame boxes (x, y, w, h pixels) from house6.xml."""
    text = (FIRE / "house6.xml").read_text()
    out: dict[int, list[tuple[int, int, int, int]]] = {}
    for m in re.finditer(r"<frameNumber>(\d+)</frameNumber>\s*<annotations>(.*?)</annotations>", text, re.S):
        nums = [int(v) for v in re.findall(r"-?\d+", m.group(2))]
        out[int(m.group(1))] = [tuple(nums[i : i + 4]) for i in range(0, len(nums) - 3, 4)]  # type: ignore[misc]
    return out


def _house6(fps: float) -> Iterator[tuple[float, Frame, Box | None]]:
    boxes = house6_boxes()
    for t, img in decode(FIRE / "house6.mp4", fps):
        h, w = img.shape[:2]
        n = round(t * 29.97)
        bs = boxes.get(n) or []
        box = (
            (
                min(b[0] for b in bs) / w,
                min(b[1] for b in bs) / h,
                max(b[0] + b[2] for b in bs) / w,
                max(b[1] + b[3] for b in bs) / h,
            )
            if bs
            else None
        )
        yield t, img, box


def fire_cases(quick: bool) -> tuple[list[Case], list[Case]]:
    """(positives, negatives). Positives: 8 flame and 2 smoke overlays at several places of
    vtest.avi (quick: 4 flames, 1 smoke), and house6; negatives: vtest.avi and the road."""
    places = [
        (0.2, 0.95),
        (0.5, 0.6),
        (0.8, 0.9),
        (0.35, 0.75),
        (0.65, 0.98),
        (0.15, 0.6),
        (0.85, 0.7),
        (0.5, 0.85),
    ]
    fires = range(4) if quick else range(8)
    pos = [
        Case(f"fire-{i}.vtest", VTEST, "fire", f"fire-{i}", places[i], width=0.12 + 0.02 * (i % 3))
        for i in fires
    ]
    pos += [
        Case(
            f"smoke-{i}.vtest",
            VTEST,
            "smoke",
            f"smoke-{i}",
            places[(i + 3) % 8],
            width=0.3,
            start_s=12.0,
            end_s=27.0,
            duration_s=30.0,
        )
        for i in range(1 if quick else 2)
    ]
    pos.append(Case("house6", FIRE / "house6.mp4", "fire", start_s=0.0, end_s=30.0, duration_s=30.0))
    neg = [Case("vtest", VTEST, "none", duration_s=200.0)]
    if ROAD.is_file():
        neg.append(Case("road", ROAD, "none", duration_s=200.0))
    return pos, neg
