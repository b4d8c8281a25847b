"""Constant-velocity Kalman filter over many boxes at once (state cx, cy, w, h and their velocities).

All tracks of a camera share the same time step, so prediction and correction are done
on arrays of all tracks at once instead of one filter object per track. Time is measured in
"steps" (one nominal frame interval); the tracker converts seconds into steps. Noise scales with
the box size, as in SORT/ByteTrack, so the filter behaves the same for a near truck and a far
pedestrian.

The covariance is kept compact. Every coordinate (cx, cy, w, h) moves only with its own velocity
(the transition is [[I, dt I], [0, I]]), the measurement reads the four positions (H = [I 0]) and
the initial and process noises are diagonal: so the 8x8 covariance of a track is four independent
2x2 blocks (coordinate, its velocity) and stays so exactly, whatever the sequence of predictions
and corrections. A track's covariance is stored as a (3, 4) array: the variance of each coordinate,
its covariance with its velocity, and the variance of the velocity. The filter then costs a few
element-wise operations on (N, 4) arrays per call instead of batched 8x8 matrix products and
solves; `dense_covariance` rebuilds the 8x8 form.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from smartcity.tracking import kernels

FloatArray = npt.NDArray[np.float64]

# Standard deviations relative to the box size (those of ByteTrack / BoT-SORT, tuned on MOT).
STD_POSITION = 1.0 / 20.0
STD_VELOCITY = 1.0 / 160.0
MIN_SIZE = 1e-3

# Rows of a compact covariance (N, 3, 4): per coordinate cx, cy, w, h.
PP, PV, VV = 0, 1, 2


def empty() -> tuple[FloatArray, FloatArray]:
    """States and covariances of no track."""
    return np.zeros((0, 8)), np.zeros((0, 3, 4))


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
    half = np.maximum(mean[:, 2:4], MIN_SIZE)
    half *= 0.5
    out = np.empty((mean.shape[0], 4))
    np.subtract(mean[:, 0:2], half, out=out[:, 0:2])
    np.add(mean[:, 0:2], half, out=out[:, 2:4])
    return out


def _size_scale(wh: FloatArray) -> FloatArray:
    """(N, 2) w, h -> (N, 4) scale for cx, cy, w, h (x-like terms scale with w, y-like with h)."""
    out = np.empty((wh.shape[0], 4))
    np.maximum(wh, 1.0, out=out[:, 0:2])
    out[:, 2:4] = out[:, 0:2]
    return out


def initiate(measurements: FloatArray) -> tuple[FloatArray, FloatArray]:
    """New states from (N, 4) measurements: zero velocity, wide velocity uncertainty."""
    n = measurements.shape[0]
    mean = np.zeros((n, 8))
    mean[:, :4] = measurements
    scale = _size_scale(measurements[:, 2:4])
    cov = np.zeros((n, 3, 4))
    cov[:, PP] = (2.0 * STD_POSITION * scale) ** 2
    cov[:, VV] = (10.0 * STD_VELOCITY * scale) ** 2
    return mean, cov


def predict(
    mean: FloatArray, cov: FloatArray, dt: float, std_velocity: float = STD_VELOCITY
) -> tuple[FloatArray, FloatArray]:
    """Advance every state by `dt` steps (dt may be fractional); `std_velocity` is the random walk
    of the velocity per step, relative to the box size.

    Per (coordinate, velocity) block: F P F^T, then the random-walk noise, whose variance grows
    linearly with the elapsed time (kernels.kalman_predict)."""
    if mean.shape[0] == 0:
        return mean, cov
    noise = max(dt, 0.0)
    new_mean: FloatArray
    new_cov: FloatArray
    new_mean, new_cov = kernels.kalman_predict(
        mean, cov, float(dt), STD_POSITION**2 * noise, std_velocity**2 * noise, MIN_SIZE
    )
    return new_mean, new_cov


def update(mean: FloatArray, cov: FloatArray, measurements: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Correct (N, 8) states with (N, 4) measurements (row k measures state k): innovation variance
    S = P_pp + R, gain (K_p, K_v) = (P_pp, P_pv) / S per block (kernels.kalman_update)."""
    if mean.shape[0] == 0:
        return mean, cov
    new_mean: FloatArray
    new_cov: FloatArray
    new_mean, new_cov = kernels.kalman_update(mean, cov, measurements, STD_POSITION**2, MIN_SIZE)
    return new_mean, new_cov


def dense_covariance(cov: FloatArray) -> FloatArray:
    """(N, 3, 4) compact covariances -> (N, 8, 8) full ones (state cx, cy, w, h, vcx, vcy, vw, vh)."""
    out = np.zeros((cov.shape[0], 8, 8))
    i = np.arange(4)
    out[:, i, i] = cov[:, PP]
    out[:, i, i + 4] = cov[:, PV]
    out[:, i + 4, i] = cov[:, PV]
    out[:, i + 4, i + 4] = cov[:, VV]
    return out
