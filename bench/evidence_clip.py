"""What an evidence clip costs a camera: the ring's work per analysed frame (downscale + JPEG of
the raw frame), its memory, and the rendering of one clip (decode, pixelate each frame with its
own mask, VP8/WebM), against the baseline of the same run: the evidence still every event already
gets (`CameraPrivacy.evidence`: zones, mask pixelated, JPEG at full size).

Frames: vtest.avi (SMARTCITY_DEMO_VIDEO, 768x576), one every 0.2 s (5 analysed frames per
second) for `before_s + after_s` seconds, masks from person boxes of the masker's shape (every
frame's mask a third of the picture: the pixelation cost of a busy scene). Defaults of
`privacy.evidence_clip`: 320 px wide, qscale 6, 5 s + 5 s at 5 fps.

Usage: python bench/evidence_clip.py [--seconds S]. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcity.actors.clip import FrameRing  # noqa: E402
from smartcity.core.privacy_config import ClipConfig, PrivacyConfig  # noqa: E402
from smartcity.core.privacy_mask import PrivacyMask  # noqa: E402
from smartcity.privacy import CameraPrivacy  # noqa: E402
from smartcity.privacy.clip import keep_frame, render_clip  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VTEST = Path(os.environ.get("SMARTCITY_DEMO_VIDEO", REPO / "data" / "vtest.avi"))


def frames(seconds: float, fps: float) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    with av.open(str(VTEST)) as c:
        stream = c.streams.video[0]
        due = 0.0
        for f in c.decode(stream):
            t = float((f.pts or 0) * stream.time_base)
            if t + 1e-6 < due:
                continue
            due += 1.0 / fps
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) >= seconds * fps:
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=None, help="clip length (default before_s + after_s)")
    args = ap.parse_args()
    cfg = ClipConfig()
    seconds = args.seconds or cfg.before_s + cfg.after_s
    images = frames(seconds, cfg.fps)
    h, w = images[0].shape[:2]
    boxes = [(w * x, h * 0.3, w * (x + 0.08), h * 0.9) for x in (0.1, 0.3, 0.5, 0.7)]
    mask = PrivacyMask.from_boxes(boxes, w, h)
    privacy = CameraPrivacy(PrivacyConfig())

    t0 = time.perf_counter()
    for img in images:
        privacy.evidence(img, [], mask)
    still_ms = 1000 * (time.perf_counter() - t0) / len(images)

    ring = FrameRing(cfg.before_s + cfg.after_s + 1.0, cfg.max_ring_bytes)
    t0 = time.perf_counter()
    kept = []
    for i, img in enumerate(images):
        f = keep_frame(img, i / cfg.fps, mask, width=cfg.width, quality=cfg.quality)
        ring.push(f)
        kept.append(f)
    keep_ms = 1000 * (time.perf_counter() - t0) / len(images)

    t0 = time.perf_counter()
    clip = render_clip(kept)
    render_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "ring_ms_per_frame": round(keep_ms, 2),
                "still_ms_baseline": round(still_ms, 2),
                "ring_vs_still": round(keep_ms / still_ms, 3),
                "ring_bytes": ring.bytes,
                "ring_frames": len(ring),
                "ring_kib_per_frame": round(ring.bytes / max(1, len(ring)) / 1024, 1),
                "clip_render_s": round(render_s, 3),
                "clip_render_vs_still": round(render_s * 1000 / still_ms, 1),
                "clip_bytes": len(clip),
                "clip_frames": len(kept),
                "conditions": {"video": VTEST.name, "size": [w, h], "seconds": seconds, **cfg.model_dump(mode="json")},
                "loadavg": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
