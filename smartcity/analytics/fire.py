"""Classical fire and smoke detection on the pixels of one camera (pure numpy, no model).

No permissively licensed fire model exists, so this combines the cues the literature relies on,
each cheap and each rejecting a different look-alike:

- fire: a flame colour model (red over green over blue, bright, red well above blue) on a
  working copy of the frame (about 200 px wide), the drift of the scene's median colour undone
  first (a sunset tints every surface orange, a flame is a local light), on pixels the learnt
  background does not explain (an orange wall is learnt); *flicker*: the flame-coloured mask
  flips from frame to frame with a change of brightness (an orange van or jacket keeps its mask,
  noise crossing a colour threshold changes no brightness); persistence of both in the same grid
  cell over a window (a walker in an orange coat leaves the cell), with at least a quarter of a
  cell of flame pixels around the cell at its fullest (a handful of flickering pixels is a
  surface whose colour sits on the thresholds: a lit tape, a ripple's brightest rows); no
  translation of the last frame explains the change (a vehicle, even one too fast for the flicker's
  motion compensation, is a moving rigid shape; a flame is a new shape every frame); and the change
  is not banded in rows over the window (a lamp's reflection on rippling water breaks into rows
  that shift one by one), nor at a place where it was banded often in the last minute (a
  reflection stays under its lamp, and its random ripples pass for a flame's now and then). Pixels of
  detected people and vehicles keep their previous state (a passer-by makes no flicker), unless
  flame pixels fill a good part of the box: then the detector was shown the fire itself (it boxes
  a rising fireball as a person), and masking it would hide the fire.
- smoke: grey, mid-brightness cells that show the background's own structure (correlated with
  it) at a lower contrast and paler colours (a veil over it, unlike an object that appeared or
  left), or grey cells drained of the background's colour whose brightness or colour clearly
  changed (thick smoke: grey smoke over grass of the same brightness changes only the colour);
  stirring from frame to frame (a ghost of something that left stays still), persisting in place
  over a longer window, and rising: the cell's texture drifts upwards in most of the frames it
  is seen in (buoyancy; a steady plume's outline stays in place while its billows rise, a
  vehicle or a walker does not drift up frame after frame). Growth is no cue of its own: a
  vehicle entering the picture grows too.

`FireSmokeDetector.update(image, t)` returns what it sees in this frame; the `fire` and `smoke`
rules (analytics/rules/fire.py) turn that into events. Each cue's thresholds are in
`DetectorTuning`; the defaults come from bench/emergency.py (composited flames and smoke over
vtest.avi, a real fire clip, street scenes as negatives).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
BoolGrid = npt.NDArray[np.bool_]
MAX_EXCLUDED = 200  # boxes masked out per frame (bounded work)


@dataclass(frozen=True, slots=True)
class DetectorTuning:
    work_width: int = 200  # frames are reduced to about this width (integer factor) first
    cell: int = 8  # grid cell, working pixels
    # fire colour model
    red_min: float = 190.0
    green_min: float = 80.0
    red_minus_blue: float = 80.0
    luma_min: float = 130.0
    fire_change_min: float = 20.0  # |luma - background| of a flame pixel
    # the colour test sees the frame with the change of the scene's illuminant taken out: a sunset
    # or sodium lamps at dusk tint every surface orange together (a red tape, a white van turn
    # flame-coloured), which moves the median colour of the picture; a flame is a local light and
    # does not (the median, not the mean: a fire filling a third of the picture leaves it). The
    # reference is the camera's own median colour learnt over `illuminant_time_s` (a grass or
    # brick scene keeps its colours: only the change is undone), per-channel gains bounded to
    # `illuminant_max_gain`. 0 s: off.
    illuminant_time_s: float = 1800.0
    illuminant_max_gain: float = 2.0
    # fire cell: fraction of flame-coloured pixels, fraction whose mask flipped since last frame
    fire_fraction: float = 0.04
    flicker_fraction: float = 0.012
    flicker_ratio: float = 0.5  # flipped pixels per flame pixel of the cell
    flip_luma_min: float = 12.0  # a flipped pixel's brightness change since the last frame
    # share of the fire window a cell must hold flame pixels: a flame stays in place while it
    # flickers; a beacon or a blinking hazard light is dark half the time
    fire_steady: float = 0.6
    # flips left after the best shift of the last mask (up to `motion_search` px), per flame
    # pixel: a slowly moving or stopping orange vehicle's change is explained by a shift, a
    # flame's is not
    fire_mc_flips: float = 0.25
    motion_search: int = 5
    # share of the cell's changed flame pixels that went the other way than most: a flame
    # brightens here while it darkens there; a lamp, a beacon or a gain change goes all one way
    fire_mixed: float = 0.12
    fire_mixed_share: float = 0.2  # of the fire window's frames (a flame may brighten all at once)
    # flame pixels, in cells, that the cell and its 8 neighbours hold at the fullest frame of the
    # fire window: a flame large enough to be judged (about a cell, see the module docstring) shows
    # a quarter of a cell of them at least; the flicker of a handful of pixels is a surface whose
    # colour sits on the colour test's thresholds (a red stripe of a tape under a beating lamp,
    # the brightest rows of a rippling reflection on a wet road)
    fire_body: float = 0.25
    # smoke pixel and cell
    smoke_saturation_max: float = 0.22
    smoke_luma: tuple[float, float] = (70.0, 230.0)
    smoke_fraction: float = 0.6
    smoke_diff_min: float = 6.0  # mean |luma - background| of the cell
    smoke_soften: float = 0.7  # cell gradient energy below this share of the background's
    smoke_texture_min: float = 6.0  # luma standard deviation of the background cell needed
    smoke_activity_min: float = 2.0  # mean |luma change| of the cell since the last frame
    smoke_desaturation: float = 0.04  # drop of the cell's saturation below the background's
    smoke_structure_min: float = 0.5  # correlation of the cell with its background (seen through)
    # thick smoke (opaque: it hides the background's structure instead of veiling it): grey
    # pixels down to this brightness, a clear change from the background, stirring
    smoke_dark_luma_min: float = 25.0
    smoke_opaque_diff: float = 12.0
    smoke_opaque_activity: float = 3.0
    smoke_grey_background: float = 0.0  # a background this pale cannot turn paler: not asked
    # the clear change of thick smoke is one of colour as well as of brightness: grey smoke over
    # grass or a red wall of the same brightness changes no luma, only the colour (the cell's mean
    # red, green or blue moves by `smoke_opaque_diff` from the background's)
    smoke_colour_change: bool = True
    # smoke is buoyant: its texture drifts upwards from frame to frame, and keeps doing so, even
    # where the plume as a whole stays in place (a chimney's or a fire's steady column, whose
    # outline neither rises nor grows). Per candidate cell and frame, the vertical motion of its
    # texture since the last frame (one gradient-based estimate per cell) counts as rising from
    # `smoke_drift_min` working px upwards (less: the camera's noise). A cell is rising smoke when
    # it rose in at least `smoke_rising_share` of the frames it was a candidate in the smoke
    # window, i.e. more often than not: a vehicle or a swaying tree moves sideways or both ways,
    # a walker going away from the camera shows as much change that is no drift (limbs, the
    # ghost it leaves) and rises in a third of its frames or fewer. 0: no drift test.
    smoke_drift_min: float = 0.2
    smoke_rising_share: float = 0.5
    # a detected person or vehicle whose box is this share flame pixels or more is not masked out of
    # the fire cue: the detector was shown the fire (a rising fireball is boxed as a person, a car
    # ablaze as a car) and masking it would hide the fire itself; a red coat or an orange van fills
    # less of its box with pixels that changed from the background. 0: boxes always masked.
    unmask_flame: float = 0.08
    # a moving object: a flickering cell whose change (with its 8 neighbours) a translation of the
    # last frame explains (up to `rigid_x` working px sideways, `rigid_y` up or down: a vehicle,
    # however fast, at 5 frames a second), leaving under `rigid_max` of the change, is no flame; a
    # flame's change is a new shape every frame. The vertical search stays short: a rising fireball
    # is a translation upwards. 0: off.
    rigid_max: float = 0.6
    rigid_x: int = 12
    rigid_y: int = 2
    # a reflection on rippling water (a lamp's streak on a wet road) breaks into rows that shift and
    # dim one by one: over the fire window, a cell whose change is alike along rows (correlation of
    # neighbouring pixels' change >= `banded_row`) and clearly less so along columns (by
    # `banded_gap`) is no flame, whose tongues change in patches both ways. 0: off.
    banded_row: float = 0.8
    banded_gap: float = 0.4
    # a place where that banding was seen in `banded_memory_frames` frames or more of the last
    # `banded_memory_s` seconds is a known reflection: its random ripples will sooner or later pass
    # for a flame's over one window (a flame shows the banding in under 1 % of its frames). 0: off.
    banded_memory_s: float = 60.0
    banded_memory_frames: int = 10
    background_alpha: float = 0.02  # per analysed frame (never slower under a detection: no lock-in)


@dataclass(frozen=True, slots=True)
class Region:
    """A box in normalised image coordinates with how many grid cells support it."""

    x1: float
    y1: float
    x2: float
    y2: float
    cells: int


@dataclass(frozen=True, slots=True)
class Observation:
    t: float
    fire: Region | None  # cells that showed fire for most of the fire window
    smoke: Region | None
    fire_cells_now: int
    smoke_cells_now: int


def reduce(image: npt.NDArray[np.uint8], work_width: int) -> F32:
    """A copy about `work_width` wide (every k-th pixel: cheap, and flames are big enough), float32 RGB."""
    k = max(1, image.shape[1] // work_width)
    return image[::k, ::k, :3].astype(np.float32)


def _cells(mask: npt.NDArray[np.floating] | BoolGrid, cell: int) -> F32:
    """Mean of `mask` over each cell x cell block of its last two axes (the grid drops a partial
    last row/column); leading axes, if any, are kept (a stack of planes)."""
    *lead, h, w = mask.shape
    gh, gw = h // cell, w // cell
    m = mask[..., : gh * cell, : gw * cell].astype(np.float32)
    out: F32 = m.reshape(*lead, gh, cell, gw, cell).mean(axis=(-3, -1), dtype=np.float32)
    return out


def _around(grid: F32) -> F32:
    """Per cell, the sum of `grid` over the cell and its 8 neighbours (nothing outside the grid),
    over its last two axes."""
    h, w = grid.shape[-2:]
    p = np.pad(grid, [(0, 0)] * (grid.ndim - 2) + [(1, 1), (1, 1)])
    out = np.zeros_like(grid)
    for dy in range(3):
        for dx in range(3):
            out += p[..., dy : dy + h, dx : dx + w]
    return out


_Bounds = tuple[int, int, int, int]  # y0, y1, x0, x1 (ends excluded)


def _cells_box(where: BoolGrid, cell: int) -> tuple[_Bounds, _Bounds] | None:
    """The bounding box of the cells of `where`, in cells and in working pixels; None if it holds none."""
    ys, xs = np.nonzero(where)
    if len(ys) == 0:
        return None
    gy0, gy1, gx0, gx1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    return (gy0, gy1, gx0, gx1), (gy0 * cell, gy1 * cell, gx0 * cell, gx1 * cell)


def _outside(shape: tuple[int, ...], rects: Sequence[_Bounds]) -> BoolGrid:
    """The pixels of a working frame of `shape` outside every one of `rects`."""
    keep = np.ones(shape, dtype=bool)
    for y0, y1, x0, x1 in rects:
        keep[y0:y1, x0:x1] = False
    return keep


def _shifted_flips(now: BoolGrid, prev: BoolGrid, cell: int, search: int, where: BoolGrid) -> F32:
    """Per cell, the share of pixels that differ between `now` and `prev` shifted by the best
    translation of up to `search` pixels (the same shift for the cell: a rigid motion). Measured
    on the cells of `where` (their bounding box: the rest of the picture is not asked; 1.0 there)."""
    best: F32 = np.ones(where.shape, dtype=np.float32)
    box_of = _cells_box(where, cell)
    if box_of is None:
        return best
    (gy0, gy1, gx0, gx1), (y0, y1, x0, x1) = box_of
    p = np.pad(prev, search)
    here = now[y0:y1, x0:x1]
    box = best[gy0:gy1, gx0:gx1]
    for dy in range(-search, search + 1):
        for dx in range(-search, search + 1):
            moved = p[search + dy + y0 : search + dy + y1, search + dx + x0 : search + dx + x1]
            np.minimum(box, _cells(here ^ moved, cell), out=box)
    return best


def _bin2(a: F32) -> F32:
    """`a` at half resolution (the mean of each 2 x 2 block; a partial last row or column dropped)."""
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    out: F32 = 0.25 * (a[0:h:2, 0:w:2] + a[1:h:2, 0:w:2] + a[0:h:2, 1:w:2] + a[1:h:2, 1:w:2])
    return out


def _rigid(now: F32, prev: F32, cell: int, sx: int, sy: int, where: BoolGrid) -> F32:
    """Per cell of `where`, the brightness change over the cell and its 8 neighbours left after the
    best translation of `prev` (up to `sx` working px sideways, `sy` up or down; searched at half
    resolution), as a share of the change without one: near 0 for a moving rigid object (a vehicle,
    whatever its speed), about 1 for a change no motion explains (a flame). 1.0 elsewhere."""
    out: F32 = np.ones(where.shape, dtype=np.float32)
    box_of = _cells_box(where, cell)
    if box_of is None:
        return out
    gh, gw = where.shape
    (gy0, gy1, gx0, gx1), _ = box_of
    gy0, gy1, gx0, gx1 = max(0, gy0 - 1), min(gh, gy1 + 1), max(0, gx0 - 1), min(gw, gx1 + 1)
    c, sx, sy = cell // 2, max(1, sx // 2), max(1, sy // 2)
    y0, y1, x0, x1 = gy0 * c, gy1 * c, gx0 * c, gx1 * c
    half_prev = _bin2(prev)
    p = np.pad(half_prev, ((sy, sy), (sx, sx)), mode="edge")
    here = _bin2(now)[y0:y1, x0:x1]
    base = _around(_cells(np.abs(here - half_prev[y0:y1, x0:x1]), c))
    shifted = np.stack(
        [
            p[sy + dy + y0 : sy + dy + y1, sx + dx + x0 : sx + dx + x1]
            for dy in range(-sy, sy + 1)
            for dx in range(-sx, sx + 1)
        ]
    )
    best = np.minimum(base, _around(_cells(np.abs(here - shifted), c)).min(axis=0))
    out[gy0:gy1, gx0:gx1] = best / np.maximum(base, np.float32(1.0))
    return out


def _banding(step: F32, zone: BoolGrid, cell: int) -> F32:
    """Per cell (with its 8 neighbours), the sums behind the likeness of the brightness change `step`
    between neighbouring pixels of `zone`: along a row (planes 0-2: sum of a*b, a*a, b*b over the
    pairs), then along a column (planes 3-5). gh x gw x 6."""
    full = np.zeros(zone.shape + (6,), dtype=np.float32)
    for k, (a, b, both) in enumerate(
        [
            (step[:, 1:], step[:, :-1], zone[:, 1:] & zone[:, :-1]),
            (step[1:, :], step[:-1, :], zone[1:, :] & zone[:-1, :]),
        ]
    ):
        sub = full[: a.shape[0], : a.shape[1]]
        sub[..., 3 * k] = np.where(both, a * b, 0.0)
        sub[..., 3 * k + 1] = np.where(both, a * a, 0.0)
        sub[..., 3 * k + 2] = np.where(both, b * b, 0.0)
    sums = _cell_means(full, cell)
    out: F32 = np.moveaxis(_around(np.moveaxis(sums, -1, 0)), 0, -1)
    return out


def _cell_means(planes: F32, cell: int) -> F32:
    """Per cell, the mean of each plane of `planes` (h x w x n, e.g. red, green and blue): gh x gw x n."""
    h, w, n = planes.shape
    gh, gw = h // cell, w // cell
    # rows first, then columns: two contiguous reductions (one over both axes is several times slower)
    rows = planes[: gh * cell, : gw * cell].reshape(gh, cell, gw * cell, n).sum(axis=1, dtype=np.float32)
    out: F32 = rows.reshape(gh, gw, cell, n).sum(axis=2) / np.float32(cell * cell)
    return out


def _vertical_drift(now: F32, prev: F32, cell: int, where: BoolGrid) -> F32:
    """Per cell, the vertical motion of the texture from `prev` to `now` in working px per frame
    (negative: upwards), from the least-squares fit of the brightness change to the cell's
    gradients in both directions (Lucas-Kanade over the cell: a sideways motion is not read as a
    vertical one); 0 where the cell has no texture to follow. Measured on the cells of `where`
    (their bounding box; 0 elsewhere)."""
    out: F32 = np.zeros(where.shape, dtype=np.float32)
    box_of = _cells_box(where, cell)
    if box_of is None:
        return out
    (gy0, gy1, gx0, gx1), (y0, y1, x0, x1) = box_of
    # one pixel of margin for the central differences (edge pixels repeated at the picture's edge)
    py0, py1, px0, px1 = max(0, y0 - 1), min(now.shape[0], y1 + 1), max(0, x0 - 1), min(now.shape[1], x1 + 1)
    mean = 0.5 * (now[py0:py1, px0:px1] + prev[py0:py1, px0:px1])
    pad = ((int(y0 == py0), int(y1 == py1)), (int(x0 == px0), int(x1 == px1)))
    mean = np.pad(mean, pad, mode="edge")
    gy = 0.5 * (mean[2:, 1:-1] - mean[:-2, 1:-1])
    gx = 0.5 * (mean[1:-1, 2:] - mean[1:-1, :-2])
    dt = now[y0:y1, x0:x1] - prev[y0:y1, x0:x1]
    sums = _cell_means(np.stack([gx * gx, gy * gy, gx * gy, gx * dt, gy * dt], axis=-1), cell)
    sxx, syy, sxy, sxt, syt = (sums[..., i] for i in range(5))
    # damped (a gradient of one level a pixel is noise): a cell textured one way only (an edge)
    # gives the motion across it and none along it, a flat cell none
    lam = np.float32(1.0) + np.float32(0.01) * (sxx + syy)
    sxx, syy = sxx + lam, syy + lam
    out[gy0:gy1, gx0:gx1] = -(sxx * syt - sxy * sxt) / (sxx * syy - sxy * sxy)
    return out


def _region(grid: BoolGrid) -> Region | None:
    ys, xs = np.nonzero(grid)
    if len(ys) == 0:
        return None
    gh, gw = grid.shape
    return Region(
        float(xs.min()) / gw,
        float(ys.min()) / gh,
        float(xs.max() + 1) / gw,
        float(ys.max() + 1) / gh,
        len(ys),
    )


class _Persistence:
    """Per cell, the share of the last `window` frames a cell was a candidate."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.history: deque[BoolGrid] = deque(maxlen=window)
        self.sum: F32 | None = None

    def push(self, grid: BoolGrid) -> F32:
        g = grid.astype(np.float32)
        if self.sum is None or self.sum.shape != g.shape:
            self.history.clear()
            self.sum = np.zeros_like(g)
        if len(self.history) == self.window:
            self.sum -= self.history[0]
        self.history.append(grid)
        self.sum += g
        return self.sum / float(self.window)

    @property
    def full(self) -> bool:
        return len(self.history) == self.window


class FireSmokeDetector:
    """Fire and smoke cues of one camera across frames (state: the background, the windows)."""

    def __init__(
        self,
        *,
        fps: float = 5.0,
        fire_window_s: float = 2.0,
        smoke_window_s: float = 3.0,
        fire_persistence: float = 0.5,
        smoke_persistence: float = 0.6,
        tuning: DetectorTuning | None = None,
        fire: bool = True,
        smoke: bool = True,
        smoke_min_cells: int = 3,
    ) -> None:
        self.smoke_min_cells = smoke_min_cells
        self.tuning = tuning or DetectorTuning()
        self.fire_on, self.smoke_on = fire, smoke
        self.fire_persistence = fire_persistence
        self.smoke_persistence = smoke_persistence
        self._fire = _Persistence(max(2, round(fire_window_s * fps)))
        self._present = _Persistence(max(2, round(fire_window_s * fps)))
        self._mixed = _Persistence(max(2, round(fire_window_s * fps)))
        self._bandings: deque[F32] = deque(maxlen=max(2, round(fire_window_s * fps)))
        self._banded_long = _Persistence(max(2, round(self.tuning.banded_memory_s * fps)))
        self._bodies: deque[F32] = deque(maxlen=max(2, round(fire_window_s * fps)))
        self._smoke = _Persistence(max(2, round(smoke_window_s * fps)))
        self._prev_flame: BoolGrid | None = None
        self._prev_colour: BoolGrid | None = None
        self._bg: F32 | None = None  # per working pixel luma
        self._bg_sat: F32 | None = None  # per cell saturation
        self._bg_rgb: F32 | None = None  # per cell mean colour
        self._prev_luma: F32 | None = None
        self._seen = 0
        self._fps = fps
        self._ref_colour: F32 | None = None  # the camera's median colour, learnt slowly
        self._rising = _Persistence(max(2, round(smoke_window_s * fps)))  # candidate cells drifting up

    def _illuminant_corrected(self, img: F32) -> tuple[F32, F32, F32]:
        """The red, green and blue planes of `img` with the drift of its median colour from the
        camera's learnt one undone."""
        tu = self.tuning
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        if tu.illuminant_time_s <= 0:
            return r, g, b
        med = np.maximum(np.median(img[::4, ::4].reshape(-1, 3), axis=0).astype(np.float32), 1.0)
        if self._ref_colour is None:
            self._ref_colour = med
        gains = self._ref_colour / med
        # a change of brightness alone is no tint; the channels the tint suppressed are lifted back
        # rather than the one it raised dimmed: that one is often clipped at 255 on a flame
        gains = np.clip(gains / gains.min(), 1.0, tu.illuminant_max_gain).astype(np.float32)
        self._ref_colour += (med - self._ref_colour) / np.float32(tu.illuminant_time_s * self._fps)
        return r * gains[0], g * gains[1], b * gains[2]

    def _fire_cells(
        self,
        img: F32,
        luma: F32,
        change: F32,
        keep: BoolGrid | None,
        step: F32,
        rects: Sequence[_Bounds],
        prev_luma: F32,
    ) -> tuple[BoolGrid, BoolGrid, BoolGrid, F32, F32 | None]:
        """(cells showing flickering flame now, cells holding flame pixels now, cells whose flame
        pixels changed both ways now, each cell's share of flame pixels, the sums behind the banding
        of the change of flame pixels now (see `_banding`; None when that cue is off))."""
        tu = self.tuning
        r, g, b = self._illuminant_corrected(img)
        colour = (r >= tu.red_min) & (g >= tu.green_min) & (r >= g) & (g >= b) & (r - b >= tu.red_minus_blue)
        colour &= luma >= tu.luma_min
        # flame-coloured pixels that the background does not explain (an orange wall is learnt)
        flame = colour & (change >= tu.fire_change_min)
        prev, prev_colour = self._prev_flame, self._prev_colour
        moved = np.abs(step) >= tu.flip_luma_min
        if prev is not None and prev_colour is not None and prev.shape == flame.shape:
            if keep is not None and tu.unmask_flame > 0:
                keep = self._unmasked(flame, keep, rects)
            if keep is not None:  # hidden pixels keep their state: a passer-by makes no flicker
                flame = np.where(keep, flame, prev)
                colour = np.where(keep, colour, prev_colour)
            # a real flip changes the brightness too (not noise crossing a colour threshold)
            flipped = (flame ^ prev) & moved
        else:
            prev, prev_colour, flipped = None, None, flame
        self._prev_flame, self._prev_colour = flame, colour
        frac, flips = _cells(flame, tu.cell), _cells(flipped, tu.cell)
        present: BoolGrid = frac >= tu.fire_fraction
        # a flame's mask changes a lot between frames; a red coat's or a brake light's hardly
        flicker = (flips >= tu.flicker_fraction) & (flips >= tu.flicker_ratio * frac)
        out: BoolGrid = present & flicker
        mixed: BoolGrid = present.copy()
        zone = flame | prev if prev is not None else flame
        banding = None
        if tu.banded_row > 0:  # with no flame pixel, every sum is 0
            gh, gw = zone.shape[0] // tu.cell, zone.shape[1] // tu.cell
            banding = _banding(step, zone, tu.cell) if zone.any() else np.zeros((gh, gw, 6), np.float32)
        if tu.fire_mixed > 0 and present.any():
            up = _cells(zone & (step >= tu.flip_luma_min), tu.cell)
            down = _cells(zone & (step <= -tu.flip_luma_min), tu.cell)
            mixed &= np.minimum(up, down) >= tu.fire_mixed * np.maximum(up + down, 1e-6)
        if tu.fire_mc_flips > 0 and prev_colour is not None and out.any():
            # on the colour mask alone: the background test does not move with a vehicle
            out &= (
                _shifted_flips(colour, prev_colour, tu.cell, tu.motion_search, out) >= tu.fire_mc_flips * frac
            )
        if tu.rigid_max > 0 and out.any():
            out &= _rigid(luma, prev_luma, tu.cell, tu.rigid_x, tu.rigid_y, out) >= tu.rigid_max
        return out, present, mixed, frac, banding

    def _unmasked(self, flame: BoolGrid, keep: BoolGrid, rects: Sequence[_Bounds]) -> BoolGrid:
        """The pixels left to the fire cue: `keep` (outside every box of `rects`), or, where boxes are
        mostly flame, outside the other boxes only."""
        masked = [
            (y0, y1, x0, x1)
            for y0, y1, x0, x1 in rects
            if not (inside := flame[y0:y1, x0:x1]).size or float(inside.mean()) < self.tuning.unmask_flame
        ]
        return keep if len(masked) == len(rects) else _outside(flame.shape, masked)

    def _smoke_cells(self, img: F32, luma: F32, delta: F32, activity: F32) -> BoolGrid:
        """Grey cells that show the background's structure at a lower contrast (semi-transparent
        smoke over it), unlike an object that appeared or left (its texture is its own); or thick
        smoke: grey cells, clearly changed, drained of the background's colour and stirring
        (`activity`: the cell's change since the last frame above the camera's noise)."""
        tu = self.tuning
        assert self._bg is not None
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        mx = np.maximum(np.maximum(r, g), b)
        mn = np.minimum(np.minimum(r, g), b)
        sat = (mx - mn) / np.maximum(mx, 1.0)
        grey = (sat <= tu.smoke_saturation_max) & (luma >= tu.smoke_luma[0]) & (luma <= tu.smoke_luma[1])
        c = tu.cell
        gh, gw = luma.shape[0] // c, luma.shape[1] // c
        cur = luma[: gh * c, : gw * c].reshape(gh, c, gw, c)
        bg = self._bg[: gh * c, : gw * c].reshape(gh, c, gw, c)
        cur = cur - cur.mean(axis=(1, 3), keepdims=True)
        bg = bg - bg.mean(axis=(1, 3), keepdims=True)
        var_c = (cur * cur).sum(axis=(1, 3))
        var_b = (bg * bg).sum(axis=(1, 3))
        ncc = (cur * bg).sum(axis=(1, 3)) / np.sqrt(np.maximum(var_c * var_b, 1e-6))
        n = float(c * c)
        textured = var_b / n >= tu.smoke_texture_min**2  # softening is only measurable on texture
        soft = var_c < (tu.smoke_soften**2) * var_b
        diff = np.abs(_cells(delta, c))  # the mean of a coherent change, not of pixel noise
        sat_c = _cells(sat, c)
        if self._bg_sat is None or self._bg_sat.shape != sat_c.shape:
            self._bg_sat = sat_c
        # smoke veils the colours behind it; a ghost of something that left does not
        paler = self._bg_sat - sat_c >= tu.smoke_desaturation
        changed = diff >= tu.smoke_opaque_diff
        if tu.smoke_colour_change:
            rgb_c = _cell_means(img, c)
            if self._bg_rgb is None or self._bg_rgb.shape != rgb_c.shape:
                self._bg_rgb = rgb_c
            shift = rgb_c - self._bg_rgb
            # a camera's gain or white balance shifts every cell's colour: only a local change counts
            shift -= np.median(shift.reshape(-1, 3), axis=0).astype(np.float32)
            changed |= np.abs(shift).max(axis=2) >= tu.smoke_opaque_diff
            self._bg_rgb += tu.background_alpha * (rgb_c - self._bg_rgb)
        veil = (
            paler
            & (_cells(grey, c) >= tu.smoke_fraction)
            & (diff >= tu.smoke_diff_min)
            & soft
            & textured
            & (ncc >= tu.smoke_structure_min)
            & (activity >= tu.smoke_activity_min)
        )
        dark_grey = (
            (sat <= tu.smoke_saturation_max) & (luma >= tu.smoke_dark_luma_min) & (luma <= tu.smoke_luma[1])
        )
        thick = (
            (paler | (self._bg_sat <= tu.smoke_grey_background))
            & (_cells(dark_grey, c) >= tu.smoke_fraction)
            & changed
            & (activity >= tu.smoke_opaque_activity)
        )
        self._bg_sat += tu.background_alpha * (sat_c - self._bg_sat)
        out: BoolGrid = veil | thick
        return out

    def update(
        self,
        image: npt.NDArray[np.uint8],
        t: float,
        exclude: Sequence[tuple[float, float, float, float]] = (),
    ) -> Observation:
        """What this frame shows; `exclude`: normalised boxes whose pixels are not judged (the
        people and vehicles the detector found: a red coat, a brake light)."""
        img = reduce(image, self.tuning.work_width)
        luma = (0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]).astype(np.float32)
        if self._bg is None or self._bg.shape != luma.shape:
            self._bg, self._prev_flame, self._seen, self._ref_colour = luma.copy(), None, 0, None
        self._seen += 1
        delta = luma - self._bg
        # a camera's gain or the sun changes the whole picture: only local change counts
        change = np.abs(delta - np.float32(np.median(delta[::4, ::4])))
        h, w = luma.shape
        rects = [
            (max(0, int(y1 * h)), int(np.ceil(y2 * h)), max(0, int(x1 * w)), int(np.ceil(x2 * w)))
            for x1, y1, x2, y2 in exclude[:MAX_EXCLUDED]
        ]
        keep = _outside((h, w), rects) if rects else None
        prev_luma = (
            self._prev_luma if self._prev_luma is not None and self._prev_luma.shape == luma.shape else luma
        )
        signed_step = luma - prev_luma
        step = np.abs(signed_step)
        self._prev_luma = luma
        if self.fire_on:
            fire_now, present, mixed, frac, banding = self._fire_cells(
                img, luma, change, keep, signed_step, rects, prev_luma
            )
        else:
            fire_now = present = mixed = np.zeros((1, 1), dtype=bool)
            frac, banding = np.zeros((1, 1), dtype=np.float32), None
        warm = self._seen * self.tuning.background_alpha >= 1.0  # the background has settled
        if warm and self.smoke_on:
            # smoke drifts and billows: a cell that stays still is a ghost of something that left;
            # stirring is measured above the camera's noise (the median cell: most of it is still)
            activity = _cells(step, self.tuning.cell)
            activity -= np.float32(np.median(activity))
            smoke_now = self._smoke_cells(img, luma, delta - np.float32(np.median(delta[::4, ::4])), activity)
            if keep is not None:  # nor next to a detected person (a dark coat spills over its box)
                hidden = (_cells(keep, self.tuning.cell) < 1.0).astype(np.float32)
                smoke_now &= _around(hidden) == 0
            if fire_now.shape == smoke_now.shape:
                smoke_now &= ~fire_now
        else:
            smoke_now = np.zeros((1, 1), dtype=bool)
        self._bg += self.tuning.background_alpha * (luma - self._bg)
        fire_share = self._fire.push(fire_now)
        steady = self._present.push(present) >= self.tuning.fire_steady
        steady &= self._mixed.push(mixed) >= self.tuning.fire_mixed_share
        steady &= self._body(frac) >= self.tuning.fire_body
        if banding is not None:
            banded = self._banded(banding)
            steady &= ~banded
            if self.tuning.banded_memory_s > 0:
                seen = self._banded_long.push(banded) * np.float32(self._banded_long.window)
                steady &= seen < self.tuning.banded_memory_frames - 0.5  # counts, summed in float
        smoke_share = self._smoke.push(smoke_now)
        fire = _region((fire_share >= self.fire_persistence) & steady) if self._present.full else None
        up_share = self._rising.push(self._drifting_up(luma, prev_luma, smoke_now))
        smoke = self._smoke_region(smoke_share, up_share) if self._smoke.full else None
        return Observation(t, fire, smoke, int(fire_now.sum()), int(smoke_now.sum()))

    def _banded(self, sums: F32) -> BoolGrid:
        """Per cell, whether its change over the fire window was alike along rows and not along
        columns (a reflection on rippling water: rows shifted and dimmed one by one)."""
        if self._bandings and self._bandings[0].shape != sums.shape:
            self._bandings.clear()
        self._bandings.append(sums)
        w = np.sum(np.stack(self._bandings), axis=0)
        eps = np.float32(1e-6)
        along = w[..., 0] / np.sqrt(np.maximum(w[..., 1] * w[..., 2], eps))
        across = w[..., 3] / np.sqrt(np.maximum(w[..., 4] * w[..., 5], eps))
        out: BoolGrid = (along >= self.tuning.banded_row) & (along - across >= self.tuning.banded_gap)
        return out

    def _body(self, frac: F32) -> F32:
        """Per cell, the most flame pixels (in cells) it and its 8 neighbours held in one frame of
        the fire window."""
        near = _around(frac)
        if self._bodies and self._bodies[0].shape != near.shape:
            self._bodies.clear()
        self._bodies.append(near)
        out: F32 = np.max(np.stack(self._bodies), axis=0)
        return out

    def _drifting_up(self, luma: F32, prev_luma: F32, smoke_now: BoolGrid) -> BoolGrid:
        """The smoke cells of this frame whose texture moved up since the last one."""
        if not smoke_now.any() or self.tuning.smoke_rising_share <= 0:
            return np.zeros_like(smoke_now)
        drift = _vertical_drift(luma, prev_luma, self.tuning.cell, smoke_now)
        out: BoolGrid = smoke_now & (drift <= -self.tuning.smoke_drift_min)
        return out

    def _smoke_region(self, present: F32, rising: F32) -> Region | None:
        """The persistent smoke cells (`present`: each cell's share of the smoke window it was a
        candidate) that drift upwards (`rising`: its share of the window it was one drifting up);
        None under `smoke_min_cells`. Growth is no cue of its own: a vehicle entering the picture
        grows too, and a growing plume rises."""
        grid = present >= self.smoke_persistence
        if self.tuning.smoke_rising_share > 0 and rising.shape == grid.shape:
            grid &= rising >= self.tuning.smoke_rising_share * present
        return _region(grid) if grid.sum() >= self.smoke_min_cells else None
