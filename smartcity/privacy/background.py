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
    """Block means of `factor` x `factor` pixels (float32); the edge rows/columns that do not fill
    a block are dropped."""
    if factor <= 1:
        return image.astype(np.float32)
    h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    img = image[:h, :w].astype(np.float32)
    shape = (h // factor, factor, w // factor, factor, *image.shape[2:])
    return img.reshape(shape).mean(axis=(1, 3))


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
        grey = small.mean(axis=2)
        diff = np.abs(grey - self._mean.mean(axis=2))
        std = np.sqrt(self._var)
        moving = diff > np.maximum(c.min_diff, c.sigmas * std)
        fraction = float(moving.mean())
        warm = self.frames >= c.warmup_frames
        if warm and fraction > c.max_foreground_fraction:
            # most of the picture changed at once: not people, a new scene; learn it again
            self.resets += 1
            self._reset(small)
            return None
        learn = ~moving if private is None else ~(moving | private)
        # learn faster while warming up, so that the first seconds converge
        rate = max(c.learning_rate, 1.0 / (self.frames + 1)) if not warm else c.learning_rate
        d = small - self._mean
        self._mean += np.where(learn[..., None], rate * d, 0.0).astype(np.float32)
        var_new = (1 - rate) * self._var + rate * np.minimum(diff, 4 * c.min_diff) ** 2
        self._var = np.where(learn, np.maximum(var_new, c.min_std**2), self._var).astype(np.float32)
        self.frames += 1
        if not warm:
            return None
        return Foreground(moving, self.factor, fraction)

    def background(self) -> np.ndarray | None:
        """The learned static background on the model's grid (uint8 RGB), or None while not warm."""
        if not self.warm or self._mean is None:
            return None
        return np.clip(self._mean + 0.5, 0, 255).astype(np.uint8)
