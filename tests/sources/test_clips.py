"""Generated test clips and the demo clip lookup."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from smartcity.sources import demo_video_path, generate_test_clip, read_frame_counter
from smartcity.sources.clips import DEMO_VIDEO_ENV


@pytest.mark.parametrize(
    ("name", "codec", "pattern"),
    [("a.mp4", "libx264", "moving_boxes"), ("b.ts", "libx264", "static"), ("c.avi", "mpeg4", "noise")],
)
def test_generated_clip_has_requested_geometry_and_numbered_frames(
    tmp_path: Path, name: str, codec: str, pattern: str
) -> None:
    path = generate_test_clip(
        tmp_path / name, width=160, height=96, fps=12, seconds=1.5, codec=codec, pattern=pattern
    )  # type: ignore[arg-type]
    assert path == tmp_path / name
    assert not list(tmp_path.glob("*.partial*"))
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == ("h264" if codec == "libx264" else "mpeg4")
        assert float(stream.average_rate) == pytest.approx(12, rel=0.01)
        images = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    assert len(images) == 18
    assert images[0].shape == (96, 160, 3)
    assert [read_frame_counter(im) for im in images] == list(range(18))


def test_moving_boxes_move_and_static_does_not(tmp_path: Path) -> None:
    def frames(pattern: str) -> list[np.ndarray]:
        p = generate_test_clip(
            tmp_path / f"{pattern}.mp4", width=160, height=120, fps=10, seconds=1, pattern=pattern
        )  # type: ignore[arg-type]
        with av.open(str(p)) as c:
            # Below the counter bar, which changes in every clip.
            return [f.to_ndarray(format="rgb24")[20:].astype(np.int16) for f in c.decode(video=0)]

    moving = frames("moving_boxes")
    static = frames("static")
    assert np.abs(moving[0] - moving[-1]).mean() > 2.0
    assert np.abs(static[0] - static[-1]).mean() < 1.0


def test_start_index_offsets_the_counter(tmp_path: Path) -> None:
    p = generate_test_clip(tmp_path / "s.mp4", width=64, height=48, fps=5, seconds=1, start_index=300)
    with av.open(str(p)) as c:
        counters = [read_frame_counter(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    assert counters == [300, 301, 302, 303, 304]


def test_generate_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        generate_test_clip(tmp_path / "x.mp4", width=161, height=120, fps=10, seconds=1)
    with pytest.raises(ValueError, match="suffix"):
        generate_test_clip(tmp_path / "x.gif", width=160, height=120, fps=10, seconds=1)
    with pytest.raises(ValueError, match="positive"):
        generate_test_clip(tmp_path / "x.mp4", width=160, height=120, fps=0, seconds=1)


def test_demo_video_prefers_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = generate_test_clip(tmp_path / "mine.mp4", width=64, height=48, fps=5, seconds=1)
    monkeypatch.setenv(DEMO_VIDEO_ENV, str(chosen))
    assert demo_video_path() == chosen


def test_demo_video_finds_data_vtest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEMO_VIDEO_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "vtest.avi").write_bytes(b"stand-in bytes; only the lookup is under test")
    assert demo_video_path() == Path("data/vtest.avi")


def test_demo_video_falls_back_to_a_generated_clip(tmp_path: Path) -> None:
    nowhere = [tmp_path / "missing.avi", tmp_path / "data" / "vtest.avi"]
    path = demo_video_path(data_dir=tmp_path / "data", search=nowhere)
    assert path == tmp_path / "data" / "demo_fallback.mp4"
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (640, 480)
        assert c.duration is not None and abs(c.duration / 1e6 - 10.0) < 0.5
    mtime = path.stat().st_mtime_ns
    assert demo_video_path(data_dir=tmp_path / "data", search=nowhere) == path
    assert path.stat().st_mtime_ns == mtime  # generated once, then reused


def test_fetched_vtest_is_a_real_video() -> None:
    repo_vtest = Path(__file__).resolve().parents[2] / "data" / "vtest.avi"
    if not repo_vtest.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("data/vtest.avi not fetched by scripts/setup.sh (required when CI=true)")
        pytest.skip("data/vtest.avi not fetched (scripts/fetch_demo_video.sh)")
    with av.open(str(repo_vtest)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (768, 576)
        first = next(c.decode(s)).to_ndarray(format="rgb24")
    assert first.std() > 10  # a real scene, not a blank frame
