"""A picture of one analysed frame (a ground grid, the boxes, the rules): to check what the camera sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .camera import NEAR_M, Camera
from .types import SceneRun

COLOURS = {"car": (80, 160, 255), "truck": (255, 160, 40), "bus": (255, 60, 60), "motorcycle": (200, 80, 255),
           "bicycle": (60, 220, 120), "person": (255, 255, 80)}


def draw_frame(run: SceneRun, camera: Camera, index: int, path: Path, extent_m: float = 80.0) -> None:
    from PIL import Image, ImageDraw  # pillow comes with the bench extra (supervision)

    img = Image.new("RGB", (run.width, run.height), (35, 35, 35))
    d = ImageDraw.Draw(img)
    for k in np.arange(-extent_m, extent_m + 1, 5.0):  # a 5 m ground grid
        for seg in (((k, -extent_m), (k, extent_m)), ((-extent_m, k), (extent_m, k))):
            pts = np.array([[*seg[0], 0.0], [*seg[1], 0.0]])
            t = np.linspace(0, 1, 60)[:, None]
            line = pts[0] * (1 - t) + pts[1] * t
            u, v, depth = camera.project(line)
            ok = depth > NEAR_M
            xy = [(float(a), float(b)) for a, b in zip(u[ok], v[ok])]
            if len(xy) > 1:
                d.line(xy, fill=(90, 90, 90) if k % 25 else (140, 140, 140), width=1)
    w, h = run.width, run.height
    for r in run.rules:
        p: dict[str, Any] = r["params"]
        if "line" in p:
            (ax, ay), (bx, by) = p["line"]
            d.line([(ax * w, ay * h), (bx * w, by * h)], fill=(255, 255, 255), width=3)
            d.text((ax * w + 4, ay * h + 4), r["id"], fill=(255, 255, 255))
        if "zone" in p:
            d.polygon([(x * w, y * h) for x, y in p["zone"]], outline=(255, 0, 255))
            d.text((p["zone"][0][0] * w + 4, p["zone"][0][1] * h + 4), r["id"], fill=(255, 0, 255))
    frame = run.frames[index]
    for det in frame.detections:
        x1, y1, x2, y2 = det.box
        d.rectangle([x1, y1, x2, y2], outline=COLOURS.get(det.cls, (255, 255, 255)), width=2)
        d.ellipse([(x1 + x2) / 2 - 3, y2 - 3, (x1 + x2) / 2 + 3, y2 + 3], fill=(255, 255, 255))
    d.text((10, 10), f"{run.scene} {run.noise} {run.fps:g} fps t={frame.t - run.frames[0].t:.1f}s", fill=(255, 255, 255))
    img.save(path)
