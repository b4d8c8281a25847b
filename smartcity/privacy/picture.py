"""The picture an operator sees, composed in one place for live views, snapshots and evidence:
people pixelated, rule geometry drawn over them (never blurred), and, for stills, a JPEG encoded
in memory through PyAV's mjpeg encoder (no OpenCV at run time)."""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np

from smartcity.core.vision import Box
from smartcity.privacy.overlay import OverlayRaster, OverlayShape, rasterise
from smartcity.privacy.pixelate import pixelate


def _check_rgb(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")


def compose(
    image: np.ndarray,
    person_boxes: Sequence[Box] | None,
    *,
    pixelate_people: bool,
    overlay: OverlayRaster | None,
) -> np.ndarray:
    """The picture a viewer sees: a new array (the input is not modified).

    With `pixelate_people`, each person box is pixelated; `person_boxes` None (nobody can be
    located) pixelates the whole picture. The overlay is drawn last, so it is never blurred.
    """
    _check_rgb(image)
    img = np.array(image, copy=True, order="C")
    h, w = img.shape[:2]
    if pixelate_people:
        for box in person_boxes if person_boxes is not None else [(0.0, 0.0, float(w), float(h))]:
            pixelate(img, box)
    if overlay is not None:
        if (overlay.width, overlay.height) != (w, h):
            raise ValueError(f"overlay rasterised for {overlay.width}x{overlay.height}, picture is {w}x{h}")
        overlay.draw(img)
    return img


def encode_jpeg(image: np.ndarray, *, quality: int = 5) -> bytes:
    """JPEG bytes of an H x W x 3 uint8 RGB image; `quality`: mjpeg qscale, 2 (best) .. 31."""
    _check_rgb(image)
    if not 2 <= quality <= 31:
        raise ValueError("quality must be in 2..31")
    h, w = image.shape[:2]
    # yuvj420p needs even dimensions: pad by edge replication, the JPEG keeps the padding
    ph, pw = h + (h % 2), w + (w % 2)
    img = np.ascontiguousarray(image)
    if (ph, pw) != (h, w):
        img = np.pad(img, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuvj420p")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = pw, ph
    codec.pix_fmt = "yuvj420p"
    codec.options = {"qmin": str(quality), "qmax": str(quality)}
    packets = [*codec.encode(frame), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)


def render_evidence(
    image: np.ndarray,
    geometry: Sequence[OverlayShape | Sequence[Sequence[float]]],
    person_boxes: Sequence[Box] | None,
    *,
    pixelate: bool = True,
    quality: int = 5,
) -> bytes:
    """A JPEG of `image` (H x W x 3 uint8 RGB) with people pixelated and the rule geometry drawn.

    `geometry`: shapes in normalised image coordinates (0..1); a plain shape of two points is a
    line, three or more a closed polygon (zone). `person_boxes`: pixel boxes pixelated unless
    `pixelate` is False; None (nobody can be located) hides the whole picture. The input array
    is not modified.
    """
    _check_rgb(image)
    h, w = image.shape[:2]
    overlay = rasterise(geometry, w, h) if geometry else None
    return encode_jpeg(compose(image, person_boxes, pixelate_people=pixelate, overlay=overlay), quality=quality)
