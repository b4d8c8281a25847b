"""bench/fire_replay.py: a recorded stream replays to the alerts the detector gives live, scored as
the fire bench scores them (a flame found where it burns; an alert elsewhere is false)."""

from __future__ import annotations

import pickle
from pathlib import Path

import fire_replay
import numpy as np
import pytest

from smartcity.analytics.fire import FireSmokeDetector

W, H, FPS = 200, 150, 5.0


def _scene(rng: np.random.Generator, n: int, flame_from: int | None) -> list[np.ndarray]:
    base = rng.integers(60, 140, size=(H, W, 3), dtype=np.uint8)
    out = []
    for k in range(n):
        img = np.clip(base.astype(int) + rng.integers(-3, 4, size=base.shape), 0, 255).astype(np.uint8)
        if flame_from is not None and k >= flame_from:  # a ragged orange-yellow blob, new every frame
            yy, xx = np.mgrid[0:30, 0:30]
            ragged = rng.random((30, 30)) < 0.65 - 0.5 * np.hypot(xx - 15, yy - 15) / 30
            colour = np.stack(
                [np.full((30, 30), 250), rng.integers(120, 220, (30, 30)), rng.integers(20, 80, (30, 30))], -1
            )
            region = img[100:130, 120:150]
            region[ragged] = colour[ragged]
        out.append(img)
    return out


def _record(
    d: Path, name: str, kind: str, frames: list[np.ndarray], truth: tuple[float, ...] | None, start: int
) -> None:
    np.save(d / f"{name}.npy", np.stack(frames))
    meta = {
        "name": name,
        "kind": kind,
        "held_out": False,
        "t": [k / FPS for k in range(len(frames))],
        "boxes": [[] for _ in frames],
        "seconds": len(frames) / FPS,
        "truths": [(k / FPS, truth if k >= start else None) for k in range(len(frames))],
    }
    with (d / f"{name}.pkl").open("wb") as fh:
        pickle.dump(meta, fh)


def _flame_and_plain(d: Path, seed: int) -> list[float]:
    """Records a flame from frame 50 ("pos") and a plain scene ("neg") under `d`; the times at which
    the live detector shows a fire region on the flame."""
    rng = np.random.default_rng(seed)
    fire = _scene(rng, 100, 50)
    _record(d, "pos", "fire", fire, (120 / W, 100 / H, 150 / W, 130 / H), 50)
    _record(d, "neg", "none", _scene(rng, 100, None), None, 0)
    live = FireSmokeDetector(fps=FPS, smoke=False)
    return [k / FPS for k, img in enumerate(fire) if live.update(img, k / FPS).fire is not None]


def test_a_recorded_flame_replays_to_the_live_alert_and_scores_found(tmp_path: Path) -> None:
    first = _flame_and_plain(tmp_path, 3)[0] * FPS

    row = fire_replay.replay_stream((tmp_path / "pos.pkl", {}))
    assert row["found"] and row["false"] == 0 and row["alerts"] == [round(first / FPS, 1)]
    out = fire_replay.replay(tmp_path, {"fire_body": 100.0}, workers=1)  # no flame is that large
    assert out["defaults"]["fire_recall"] == 1.0 and out["defaults"]["fire_false_alerts"] == 0
    assert out["fire_recall"] == 0.0 and set(out["streams_that_differ"]) == {"pos"}


def test_a_misspelt_tuning_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="fire_bodyy"):
        fire_replay.replay(tmp_path, {"fire_bodyy": 1.0}, workers=1)


def test_episodes_group_the_fire_regions_and_count_them_per_kind(tmp_path: Path) -> None:
    seen = _flame_and_plain(tmp_path, 4)
    out = fire_replay.episodes(tmp_path, {}, workers=1)
    [ep] = out["streams"]["pos"]
    assert ep["start"] == round(seen[0], 2) and ep["end"] == round(seen[-1], 2) and ep["frames"] == len(seen)
    assert ep["on_truth"] and "neg" not in out["streams"]
    assert out["positive_region_frames"] == len(seen) and out["negative_region_frames"] == 0
    # a gap shorter than the frame interval splits every frame into an episode of its own
    assert len(fire_replay.episodes(tmp_path, {}, workers=1, gap=0.1)["streams"]["pos"]) == len(seen)
