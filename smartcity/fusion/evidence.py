"""The evidence snapshot of a rule event: a JPEG of the frame with the rule geometry drawn and
people pixelated (by default), so the register holds proof of what the rule saw, not identities.

Pure function over a numpy RGB image; JPEG through PyAV's mjpeg encoder (no OpenCV at run time).
"""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels

GEOMETRY_RGB = (255, 200, 0)
_MIN_BLOCK = 8


def _pixelate(img: np.ndarray, box: Box) -> None:
    h, w = img.shape[:2]
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return
    # Blocks of ~1/6 of the box's smaller side: a face spans at most a couple of blocks.
    block = max(_MIN_BLOCK, min(x2 - x1, y2 - y1) // 6)
    region = img[y1:y2, x1:x2].astype(np.float32)
    rh, rw = region.shape[:2]
    for by in range(0, rh, block):
        for bx in range(0, rw, block):
            cell = region[by : by + block, bx : bx + block]
            cell[...] = cell.reshape(-1, 3).mean(axis=0)
    img[y1:y2, x1:x2] = region.astype(np.uint8)


def _segment(img: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], thickness: int) -> None:
    h, w = img.shape[:2]
    n = int(max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 1
    xs = np.linspace(p0[0], p1[0], n)
    ys = np.linspace(p0[1], p1[1], n)
    r = thickness // 2
    offsets = np.arange(-r, thickness - r)
    px = (np.rint(xs)[:, None, None] + offsets[None, :, None]).astype(np.int64)
    py = (np.rint(ys)[:, None, None] + offsets[None, None, :]).astype(np.int64)
    px, py = np.broadcast_arrays(px, py)
    keep = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    img[py[keep], px[keep]] = GEOMETRY_RGB


def render_evidence(
    image: np.ndarray,
    geometry: Sequence[Sequence[Point]],
    person_boxes: Sequence[Box],
    *,
    pixelate: bool = True,
    quality: int = 5,
) -> bytes:
    """A JPEG (bytes) of `image` (H x W x 3 uint8 RGB) with the rule geometry drawn on top.

    `geometry`: shapes in normalised image coordinates (0..1); a shape of two points is a line,
    three or more a closed polygon (zone). `person_boxes`: pixel boxes (x1, y1, x2, y2) that
    are pixelated unless `pixelate` is False. `quality`: mjpeg qscale, 2 (best) .. 31.
    The input array is not modified.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
    if not 2 <= quality <= 31:
        raise ValueError("quality must be in 2..31")
    h, w = image.shape[:2]
    # yuvj420p needs even dimensions: pad by edge replication, the JPEG keeps the padding.
    ph, pw = h + (h % 2), w + (w % 2)
    img = np.ascontiguousarray(image.copy())
    if pixelate:
        for box in person_boxes:
            _pixelate(img, box)
    thickness = max(3, min(h, w) // 120)
    for shape in geometry:
        pts = [(float(x) * (w - 1), float(y) * (h - 1)) for x, y in shape]
        if len(pts) < 2:
            continue
        pairs = list(zip(pts, pts[1:], strict=False))
        if len(pts) >= 3:
            pairs.append((pts[-1], pts[0]))
        for a, b in pairs:
            _segment(img, a, b, thickness)
    if (ph, pw) != (h, w):
        img = np.pad(img, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuvj420p")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = pw, ph
    codec.pix_fmt = "yuvj420p"
    codec.options = {"qmin": str(quality), "qmax": str(quality)}
    packets = [*codec.encode(frame), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)
