"""The background model kept per camera: a low-resolution running mean and variance per pixel
(a one-Gaussian cousin of MOG2, in numpy), what moves against it (the foreground), and the
learned static background that background-mode views show.

Pixels under the private mask are not learned: a person who stands still for a minute does not
become background. A sudden change of most of the picture (lights, a camera moved) resets the
model; until it has seen `warmup_frames` frames again it knows no foreground (`foreground()`
answers None), and the masker then hides the whole picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartcity.core.privacy_config import BackgroundConfig


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """A `factor` times smaller RGB picture (float32): each cell the mean of up to four pixels
    spread over its block (strided views: a full block mean over a full-HD frame costs tens of
    milliseconds, this one or two; the model's noise estimate absorbs the sampling noise)."""
    if factor <= 1:
        return image.astype(np.float32)
    h, w = image.shape[0] // factor, image.shape[1] // factor
    offsets = sorted({factor // 4, (3 * factor) // 4})
    acc = np.zeros((h, w, image.shape[2]), dtype=np.float32)
    for dy in offsets:
        for dx in offsets:
            acc += image[dy : dy + h * factor : factor, dx : dx + w * factor : factor]
    acc *= 1.0 / (len(offsets) ** 2)
    return acc


_GREY = np.full(3, 1.0 / 3.0, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Foreground:
    """What moved in one frame, on the model's grid (`factor` pixels of the frame per cell)."""

    cells: np.ndarray  # bool, gh x gw
    factor: int
    fraction: float  # share of the grid that moved


class BackgroundModel:
    """Running mean/variance per cell of a `factor`-times smaller grid (the factor is chosen from
    the first frame so that the grid is about `config.grid_width` cells wide)."""

    def __init__(self, config: BackgroundConfig | None = None) -> None:
        self.config = config or BackgroundConfig()
        self.factor = 0
        self.frames = 0  # frames learned since the last reset
        self.resets = 0
        self._mean: np.ndarray | None = None  # gh x gw x 3, RGB
        self._var: np.ndarray | None = None  # gh x gw, grey
        self._shape: tuple[int, int] | None = None

    @property
    def warm(self) -> bool:
        return self._mean is not None and self.frames >= self.config.warmup_frames

    def _reset(self, small: np.ndarray) -> None:
        self._mean = small.copy()
        self._var = np.full(small.shape[:2], self.config.min_std**2, np.float32)
        self.frames = 1

    def update(self, image: np.ndarray, private: np.ndarray | None = None) -> Foreground | None:
        """Learn one frame (H x W x 3 uint8) and return what moved in it, or None while the model
        is not warm. `private`: bool cells (the grid's shape) not to learn from (people)."""
        c = self.config
        h, w = image.shape[:2]
        if self._shape != (h, w):
            self._shape = (h, w)
            self.factor = max(1, round(w / c.grid_width))
            self._mean = None
        small = downscale(image, self.factor)
        if self._mean is None or self._var is None:
            self._reset(small)
            return None
        grey = small @ _GREY
        diff = np.abs(grey - self._mean @ _GREY)
        moving = diff > np.maximum(c.min_diff, c.sigmas * np.sqrt(self._var))
        fraction = float(moving.mean())
        warm = self.frames >= c.warmup_frames
        if warm and fraction > c.max_foreground_fraction:
            # most of the picture changed at once: not people, a new scene; learn it again
            self.resets += 1
            self._reset(small)
            return None
        learn = ~moving if private is None else ~(moving | private)
        # learn faster while warming up, so that the first seconds converge
        rate = c.learning_rate if warm else max(c.learning_rate, 1.0 / (self.frames + 1))
        step = (rate * learn).astype(np.float32)
        small -= self._mean
        small *= step[..., None]
        self._mean += small
        np.minimum(diff, 4 * c.min_diff, out=diff)
        diff *= diff
        diff -= self._var
        diff *= step
        self._var += diff
        np.maximum(self._var, c.min_std**2, out=self._var)
        self.frames += 1
        if not warm:
            return None
        return Foreground(moving, self.factor, fraction)

    def background(self) -> np.ndarray | None:
        """The learned static background on the model's grid (uint8 RGB), or None while not warm."""
        if not self.warm or self._mean is None:
            return None
        return np.clip(self._mean + 0.5, 0, 255).astype(np.uint8)
