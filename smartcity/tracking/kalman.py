"""Constant-velocity Kalman filter over many boxes at once (state cx, cy, w, h and their velocities).

All tracks of a camera share the same time step, so prediction and correction are done
as batched matrix products over arrays of shape (N, 8) and (N, 8, 8) instead of one
filter object per track. Time is measured in "steps" (one nominal frame interval); the
tracker converts seconds into steps. Noise scales with the box size, as in SORT/ByteTrack,
so the filter behaves the same for a near truck and a far pedestrian.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Standard deviations relative to the box size (those of ByteTrack / BoT-SORT, tuned on MOT).
STD_POSITION = 1.0 / 20.0
STD_VELOCITY = 1.0 / 160.0
MIN_SIZE = 1e-3


def boxes_to_measurements(boxes: FloatArray) -> FloatArray:
    """(N, 4) x1, y1, x2, y2 -> (N, 4) cx, cy, w, h."""
    out = np.empty_like(boxes)
    out[:, 0] = (boxes[:, 0] + boxes[:, 2]) * 0.5
    out[:, 1] = (boxes[:, 1] + boxes[:, 3]) * 0.5
    out[:, 2] = boxes[:, 2] - boxes[:, 0]
    out[:, 3] = boxes[:, 3] - boxes[:, 1]
    return out


def states_to_boxes(mean: FloatArray) -> FloatArray:
    """(N, >=4) states -> (N, 4) x1, y1, x2, y2 boxes."""
    half_w = np.maximum(mean[:, 2], MIN_SIZE) * 0.5
    half_h = np.maximum(mean[:, 3], MIN_SIZE) * 0.5
    return np.stack(
        [mean[:, 0] - half_w, mean[:, 1] - half_h, mean[:, 0] + half_w, mean[:, 1] + half_h], axis=1
    )


def _size_scale(wh: FloatArray) -> FloatArray:
    """(N, 2) w, h -> (N, 4) scale for cx, cy, w, h (x-like terms scale with w, y-like with h)."""
    w = np.maximum(wh[:, 0], 1.0)
    h = np.maximum(wh[:, 1], 1.0)
    return np.stack([w, h, w, h], axis=1)


def initiate(measurements: FloatArray) -> tuple[FloatArray, FloatArray]:
    """New states from (N, 4) measurements: zero velocity, wide velocity uncertainty."""
    n = measurements.shape[0]
    mean = np.zeros((n, 8))
    mean[:, :4] = measurements
    scale = _size_scale(measurements[:, 2:4])
    std = np.concatenate([2.0 * STD_POSITION * scale, 10.0 * STD_VELOCITY * scale], axis=1)
    cov = np.zeros((n, 8, 8))
    idx = np.arange(8)
    cov[:, idx, idx] = std**2
    return mean, cov


def predict(
    mean: FloatArray, cov: FloatArray, dt: float, std_velocity: float = STD_VELOCITY
) -> tuple[FloatArray, FloatArray]:
    """Advance every state by `dt` steps (dt may be fractional); `std_velocity` is the random walk
    of the velocity per step, relative to the box size."""
    if mean.shape[0] == 0:
        return mean, cov
    transition = np.eye(8)
    transition[np.arange(4), np.arange(4) + 4] = dt
    scale = _size_scale(mean[:, 2:4])
    std = np.concatenate([STD_POSITION * scale, std_velocity * scale], axis=1)
    new_mean = mean @ transition.T
    new_mean[:, 2:4] = np.maximum(new_mean[:, 2:4], MIN_SIZE)
    new_cov = transition @ cov @ transition.T
    idx = np.arange(8)
    # Random-walk noise: its variance grows linearly with the elapsed time.
    new_cov[:, idx, idx] += (std**2) * max(dt, 0.0)
    return new_mean, new_cov


def update(mean: FloatArray, cov: FloatArray, measurements: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Correct (N, 8) states with (N, 4) measurements (row k measures state k)."""
    if mean.shape[0] == 0:
        return mean, cov
    scale = _size_scale(mean[:, 2:4])
    idx = np.arange(4)
    innovation_cov = cov[:, :4, :4].copy()
    innovation_cov[:, idx, idx] += (STD_POSITION * scale) ** 2
    cross = cov[:, :, :4]  # P H^T with H = [I 0]
    # gain = cross @ S^-1, computed as a solve because S is symmetric positive definite
    gain = np.linalg.solve(innovation_cov, cross.transpose(0, 2, 1)).transpose(0, 2, 1)
    innovation = measurements - mean[:, :4]
    new_mean = mean + (gain @ innovation[:, :, None])[:, :, 0]
    new_mean[:, 2:4] = np.maximum(new_mean[:, 2:4], MIN_SIZE)
    new_cov = cov - gain @ cov[:, :4, :]
    return new_mean, new_cov
