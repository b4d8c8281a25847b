"""The picture an operator sees, composed in one place for live views, snapshots and evidence:
people pixelated, rule geometry drawn over them (never blurred), and, for stills, a JPEG encoded
in memory through PyAV's mjpeg encoder (no OpenCV at run time)."""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np

from smartcity.core.vision import Box
from smartcity.privacy.mask import PrivacyMask
from smartcity.privacy.overlay import OverlayRaster, OverlayShape, rasterise
from smartcity.privacy.pixelate import pixelate


def _check_rgb(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")


def _block(w: int, h: int, block: int) -> int:
    return block if block > 0 else max(8, min(w, h) // 40)


def _pixelated_whole(img: np.ndarray, block: int) -> np.ndarray:
    """The whole picture in block means (`block` 0: a sixth of its smaller side)."""
    out = np.array(img, copy=True)
    h, w = out.shape[:2]
    pixelate(out, (0.0, 0.0, float(w), float(h)), block=block)
    return out


def _blocky(img: np.ndarray, block: int) -> np.ndarray:
    """The whole picture in blocks of `block` pixels, each the colour of its centre pixel: as
    coarse as block means for a viewer, and a few milliseconds for every live frame instead of
    tens (no float copy of the picture)."""
    h, w = img.shape[:2]
    small = img[block // 2 :: block, block // 2 :: block]
    out: np.ndarray = np.repeat(np.repeat(small, block, axis=0), block, axis=1)[:h, :w]
    if out.shape[:2] != (h, w):  # a last partial block without a centre pixel: edge-padded
        out = np.pad(out, ((0, h - out.shape[0]), (0, w - out.shape[1]), (0, 0)), mode="edge")
    return out


def _upscale(small: np.ndarray, w: int, h: int) -> np.ndarray:
    """Nearest-cell upscaling of the background model's grid to a w x h picture."""
    gh, gw = small.shape[:2]
    rows = np.minimum((np.arange(h) * gh) // h, gh - 1)
    cols = np.minimum((np.arange(w) * gw) // w, gw - 1)
    out: np.ndarray = small[rows[:, None], cols[None, :]]
    return out


def _apply_mask(img: np.ndarray, mask: PrivacyMask, block: int) -> None:
    """Pixelate `mask` in `img` in place: person boxes with blocks scaled to their size, the rest
    of the mask (what moves, keypoint hulls, margins) with blocks of `block` pixels."""
    h, w = img.shape[:2]
    sx, sy = w / mask.width, h / mask.height
    rest = mask.pixels(w, h)
    if not rest.any():
        return
    rest = rest.copy()
    source = img.copy() if len(mask.boxes) else img
    for b in mask.boxes:
        box = (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)
        pixelate(img, box)
        x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        rest[y1 : int(np.ceil(box[3])), x1 : int(np.ceil(box[2]))] = False
    rows, cols = np.flatnonzero(rest.any(axis=1)), np.flatnonzero(rest.any(axis=0))
    if len(rows):
        # only the rows and columns the rest of the mask spans, on the picture's block grid
        y0, x0 = rows[0] // block * block, cols[0] // block * block
        y1, x1 = rows[-1] + 1, cols[-1] + 1
        region = img[y0:y1, x0:x1]
        np.copyto(region, _blocky(source[y0:y1, x0:x1], block), where=rest[y0:y1, x0:x1, None])


def compose(
    image: np.ndarray,
    person_boxes: Sequence[Box] | PrivacyMask | None,
    *,
    pixelate_people: bool,
    overlay: OverlayRaster | None,
    background: np.ndarray | None = None,
    block: int = 0,
) -> np.ndarray:
    """The picture a viewer sees: a new array (the input is not modified).

    With `pixelate_people`, the private part is hidden: `person_boxes` is the private mask (or
    plain person boxes, pixels of `image`); None (nobody can be located) pixelates the whole
    picture. With a `background` (the background model's picture, any size: background mode), the
    picture shown is that background with the private part drawn as coarse blobs of the frame.
    `block`: pixelation block outside person boxes (0: 1/40 of the smaller side, 8 at least). The
    overlay is drawn last, so it is never blurred.
    """
    _check_rgb(image)
    h, w = image.shape[:2]
    block = _block(w, h, block)
    if not pixelate_people:
        img = np.array(image, copy=True, order="C")
    elif person_boxes is None:
        # nobody can be located: the whole picture in coarse blocks (a sixth of its smaller side)
        img = _pixelated_whole(image, 0)
    else:
        mask = person_boxes if isinstance(person_boxes, PrivacyMask) else PrivacyMask.from_boxes(person_boxes, w, h)
        if background is not None:
            img = np.ascontiguousarray(_upscale(background, w, h))
            private = mask.pixels(w, h)
            np.copyto(img, _blocky(image, 2 * block), where=private[..., None])
        else:
            img = np.array(image, copy=True, order="C")
            _apply_mask(img, mask, block)
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
    return mjpeg(av.VideoFrame.from_ndarray(img, format="rgb24"), pw, ph, quality)


def mjpeg(frame: av.VideoFrame, width: int, height: int, quality: int) -> bytes:
    """JPEG bytes of `frame` scaled to `width` x `height` (even) by swscale; `quality`: qscale."""
    yuv = frame.reformat(width=width, height=height, format="yuvj420p")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuvj420p"
    codec.options = {"qmin": str(quality), "qmax": str(quality)}
    packets = [*codec.encode(yuv), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)


def render_evidence(
    image: np.ndarray,
    geometry: Sequence[OverlayShape | Sequence[Sequence[float]]],
    person_boxes: Sequence[Box] | PrivacyMask | None,
    *,
    pixelate: bool = True,
    quality: int = 5,
    background: np.ndarray | None = None,
) -> bytes:
    """A JPEG of `image` (H x W x 3 uint8 RGB) with people pixelated and the rule geometry drawn.

    `person_boxes`: the private mask, or plain person boxes; `background`: background mode (see
    `compose`). `geometry`: shapes in normalised image coordinates (0..1); a plain shape of two points is a
    line, three or more a closed polygon (zone). `person_boxes`: pixel boxes pixelated unless
    `pixelate` is False; None (nobody can be located) hides the whole picture. The input array
    is not modified.
    """
    _check_rgb(image)
    h, w = image.shape[:2]
    overlay = rasterise(geometry, w, h) if geometry else None
    picture = compose(image, person_boxes, pixelate_people=pixelate, overlay=overlay, background=background)
    return encode_jpeg(picture, quality=quality)
