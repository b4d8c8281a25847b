"""The compact Kalman filter against the textbook dense one (8x8 matrices) on random tracks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from smartcity.tracking import kalman

F = npt.NDArray[np.float64]


def _dense_initiate(z: F) -> tuple[F, F]:
    n = z.shape[0]
    mean = np.zeros((n, 8))
    mean[:, :4] = z
    w, h = np.maximum(z[:, 2], 1.0), np.maximum(z[:, 3], 1.0)
    scale = np.stack([w, h, w, h], axis=1)
    std = np.concatenate([2.0 * kalman.STD_POSITION * scale, 10.0 * kalman.STD_VELOCITY * scale], axis=1)
    cov = np.zeros((n, 8, 8))
    cov[:, np.arange(8), np.arange(8)] = std**2
    return mean, cov


def _dense_predict(mean: F, cov: F, dt: float, std_velocity: float) -> tuple[F, F]:
    f = np.eye(8)
    f[np.arange(4), np.arange(4) + 4] = dt
    w, h = np.maximum(mean[:, 2], 1.0), np.maximum(mean[:, 3], 1.0)
    scale = np.stack([w, h, w, h], axis=1)
    q = np.concatenate([kalman.STD_POSITION * scale, std_velocity * scale], axis=1) ** 2 * max(dt, 0.0)
    new_mean = mean @ f.T
    new_mean[:, 2:4] = np.maximum(new_mean[:, 2:4], kalman.MIN_SIZE)
    new_cov = f @ cov @ f.T
    new_cov[:, np.arange(8), np.arange(8)] += q
    return new_mean, new_cov


def _dense_update(mean: F, cov: F, z: F) -> tuple[F, F]:
    h = np.hstack([np.eye(4), np.zeros((4, 4))])
    w, hh = np.maximum(mean[:, 2], 1.0), np.maximum(mean[:, 3], 1.0)
    r = (kalman.STD_POSITION * np.stack([w, hh, w, hh], axis=1)) ** 2
    s = h @ cov @ h.T + np.apply_along_axis(np.diag, 1, r)
    gain = cov @ h.T @ np.linalg.inv(s)
    new_mean = mean + (gain @ (z - mean @ h.T)[:, :, None])[:, :, 0]
    new_mean[:, 2:4] = np.maximum(new_mean[:, 2:4], kalman.MIN_SIZE)
    return new_mean, cov - gain @ h @ cov


def _boxes(rng: np.random.Generator, n: int) -> F:
    xy = rng.uniform(0, 1900, (n, 2))
    wh = rng.uniform(0.5, 300, (n, 2))  # below 1 px too: the noise floor of _size_scale
    return np.hstack([xy, xy + wh])


def test_compact_filter_matches_the_dense_one_over_random_sequences() -> None:
    rng = np.random.default_rng(1234)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        z = kalman.boxes_to_measurements(_boxes(rng, n))
        mean, cov = kalman.initiate(z)
        ref_mean, ref_cov = _dense_initiate(z)
        np.testing.assert_array_equal(kalman.dense_covariance(cov), ref_cov)
        for _ in range(30):
            dt = float(rng.choice([1.0, 2.0, 0.5, 0.0, -1.0, rng.uniform(0, 10)]))
            std_v = float(rng.uniform(0.001, 0.05))
            mean, cov = kalman.predict(mean, cov, dt, std_v)
            ref_mean, ref_cov = _dense_predict(ref_mean, ref_cov, dt, std_v)
            measured = rng.random(n) < 0.8
            if measured.any():
                z = kalman.boxes_to_measurements(_boxes(rng, int(measured.sum())))
                mean[measured], cov[measured] = kalman.update(mean[measured], cov[measured], z)
                ref_mean[measured], ref_cov[measured] = _dense_update(
                    ref_mean[measured], ref_cov[measured], z
                )
            # float rounding differs (element-wise products against BLAS and a solve): agreement to
            # about 1e-9 relative, more than enough for a wrong term to show
            np.testing.assert_allclose(mean, ref_mean, rtol=1e-7, atol=1e-7)
            np.testing.assert_allclose(kalman.dense_covariance(cov), ref_cov, rtol=1e-7, atol=1e-7)


def test_boxes_round_trip_and_empty_input() -> None:
    rng = np.random.default_rng(5)
    boxes = _boxes(rng, 17)
    np.testing.assert_allclose(kalman.states_to_boxes(kalman.boxes_to_measurements(boxes)), boxes, atol=1e-9)
    mean, cov = kalman.empty()
    assert kalman.predict(mean, cov, 1.0)[1].shape == (0, 3, 4)
    assert kalman.update(mean, cov, np.zeros((0, 4)))[0].shape == (0, 8)
    # a degenerate box keeps a positive size
    flat = kalman.states_to_boxes(np.array([[10.0, 10.0, 0.0, -5.0, 0, 0, 0, 0]]))
    assert flat[0, 2] > flat[0, 0] and flat[0, 3] > flat[0, 1]
