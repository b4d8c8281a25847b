"""bench/counting.py's scoring: the count error, the episode matching, the stored read-back and
the peer's direction mapping, on small hand-made inputs whose answers are known."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from counting import (
    EpisodeScore,
    RunScore,
    count_error,
    match_episodes,
    merge_classes,
    per_class,
    prepare_rules,
    run_pipeline,
    storage_gap,
    stored_counts,
    true_counts,
)
from counting_peer import direction_map, peer_counts
from roadsim.types import SceneRun, TrueCrossing, TrueEpisode, Truth

from smartcity.core.events import CountBucket
from smartcity.core.vision import Detection
from smartcity.sources.detlog import FrameRecord
from smartcity.storage.db import Database, migrate

W, H, FPS = 640, 480, 5.0
# supervision 0.29 warns about its own deprecations (sv.ByteTrack, numpy 2-D cross) on every frame
pytestmark = [
    pytest.mark.filterwarnings("ignore:The `ByteTrack` was deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors are deprecated:DeprecationWarning"),
]


def test_count_error_sums_absolute_differences_over_true_total() -> None:
    true = {("l", "in", "car"): 10, ("l", "out", "car"): 5, ("l", "in", "bicycle"): 5}
    pred = {("l", "in", "car"): 8, ("l", "out", "car"): 6, ("l", "in", "motorcycle"): 2, ("l", "in", "bicycle"): 5}
    # |8-10| + |6-5| + |2-0| + |5-5| = 5 over 20 true crossings
    assert count_error(pred, true) == pytest.approx(0.25)
    # merged per line x direction: in 15 vs 15, out 6 vs 5
    assert count_error(merge_classes(pred), merge_classes(true)) == pytest.approx(1 / 20)
    assert count_error({("l", "in", "car"): 3}, {}) is None
    classes = per_class(pred, true)
    assert classes["car"] == {"true": 15, "pred": 14, "error": pytest.approx(3 / 15, abs=1e-4)}
    assert classes["motorcycle"] == {"true": 0, "pred": 2, "error": None}


def _episode(rule: str, t_start: float, t_alert: float, t_end: float) -> TrueEpisode:
    return TrueEpisode(rule, f"{rule}-{t_start}", "car", t_start, t_alert, t_end)


def test_episode_matching_window_and_one_event_per_episode() -> None:
    episodes = [_episode("ww", 10, 12, 15), _episode("ww", 40, 42, 45), _episode("other", 10, 12, 15)]
    events = [
        ("ww", 9.2),  # t_start - 0.8: matches the first episode
        ("ww", 13.0),  # a second alert for the same episode: a false positive
        ("ww", 47.9),  # t_end + 2.9: matches the second
        ("ww", 48.5),  # nothing left to match
        ("ww", 60.0),  # after every window
    ]
    score = match_episodes(events, episodes)
    assert score == EpisodeScore(matched=2, events=5, episodes=3)
    assert score.precision == 0.4
    assert score.recall == pytest.approx(0.6667)
    # a window is [t_start - 1 s, t_end + 3 s], and the rule must be the episode's
    assert match_episodes([("ww", 8.9), ("ww", 18.1), ("nope", 12.0)], episodes[:1]).matched == 0
    assert match_episodes([("other", 12.0)], episodes).matched == 1


def _box(x: float, y_bottom: float, w: float = 60, h: float = 40) -> tuple[float, float, float, float]:
    return (x - w / 2, y_bottom - h, x + w / 2, y_bottom)


def tiny_run(in_direction: list[int]) -> SceneRun:
    """A vertical counting line at x = 0.5 (rule counts cars only): two cars drive right across it
    (y = 150 and 260 px), one drives left (y = 370 px), a person walks right (not counted)."""
    frames = []
    for k in range(40):
        t = 100.0 + k / FPS
        frames.append(FrameRecord("cam", t, W, H, (
            Detection(_box(100 + 12 * k, 150), "car", 0.9),
            Detection(_box(80 + 13 * k, 260), "car", 0.9),
            Detection(_box(560 - 12 * k, 370), "car", 0.85),
            Detection(_box(150 + 10 * k, 450, 20, 60), "person", 0.8),
        )))
    rule = {"id": "line", "camera_id": "cam", "type": "line_count", "classes": ["car"],
            "params": {"line": [[0.5, 0.05], [0.5, 0.98]], "in_direction": in_direction,
                       "in_name": "east", "out_name": "west"}}
    east, west = ("east", "west") if in_direction[0] > 0 else ("west", "east")
    truth = Truth(crossings=[TrueCrossing("line", "c1", "car", east, 0.0), TrueCrossing("line", "c2", "car", east, 0.0),
                             TrueCrossing("line", "c3", "car", west, 0.0), TrueCrossing("line", "p1", "person", east, 0.0)],
                  objects=4)
    return SceneRun("tiny", "cam", W, H, FPS, "clean", 1, 8.0, [rule], frames, truth)


@pytest.mark.parametrize("in_direction", [[1, 0], [-1, 0]])
def test_peer_direction_mapping_matches_the_rule(in_direction: list[int]) -> None:
    run = tiny_run(in_direction)
    specs = prepare_rules(run.rules)
    sv_in, sv_out = direction_map(specs[0], W, H)
    assert {sv_in, sv_out} == {"east", "west"}
    truth, excluded = true_counts(run, specs)
    going_right = "east" if in_direction[0] > 0 else "west"
    going_left = "west" if going_right == "east" else "east"
    assert truth == Counter({("line", going_right, "car"): 2, ("line", going_left, "car"): 1})
    assert excluded == 1  # the person: the rule counts cars only
    assert peer_counts(specs, run.frames, W, H, FPS) == truth
    ours = run_pipeline(run, specs, flush_s=10.0)
    assert ours.crossings(specs) == truth
    assert sum(b.n for b in ours.flushes[-1]) == 3  # all three crossings are in the last flush's buckets


def _bucket(rule: str, cls: str, direction: str, start: float, n: int) -> CountBucket:
    from smartcity.analytics.counts import bucket_id

    return CountBucket(event_id=bucket_id("cam", rule, cls, direction, start, 60), camera_id="cam", t=start,
                       rule_id=rule, object_class=cls, direction=direction, bucket_start=start, bucket_s=60, n=n)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path}/counts.db"
    await migrate(url)
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()


async def test_stored_counts_reads_back_running_totals_per_rule_class_direction(sqlite_db: Database) -> None:
    flushes = [
        [_bucket("line", "car", "in", 60.0, 2), _bucket("line", "bicycle", "out", 60.0, 1)],
        [_bucket("line", "car", "in", 60.0, 5), _bucket("line", "car", "in", 120.0, 1)],  # running total 2 -> 5
        [],
        [_bucket("other", "car", "in", 180.0, 4)],
    ]
    stored = await stored_counts(sqlite_db, "cam", flushes)
    assert stored == Counter({("line", "in", "car"): 6, ("line", "out", "bicycle"): 1, ("other", "in", "car"): 4})
    # a second run starts from an empty table
    assert await stored_counts(sqlite_db, "cam", [[_bucket("line", "car", "in", 60.0, 1)]]) == Counter(
        {("line", "in", "car"): 1}
    )


def _score(ours: dict[tuple[str, str, str], int], stored: dict[tuple[str, str, str], int]) -> RunScore:
    return RunScore(scene="s", seed=1, fps=5.0, noise="realistic", frames=0, duration_s=0.0, truth=Counter(),
                    ours=Counter(ours), stored=Counter(stored), peer=None, wrong_way=EpisodeScore(),
                    dwell=EpisodeScore(), truth_excluded=0, ours_s=0.0, peer_s=0.0)


def test_storage_gap_counts_losses_per_key_so_a_surplus_does_not_hide_them() -> None:
    car_in, car_out = ("l", "in", "car"), ("l", "out", "car")
    scores = [_score({car_in: 5, car_out: 3}, {car_in: 2, car_out: 4}), _score({car_in: 1}, {car_in: 1})]
    assert storage_gap(scores) == (3, 1)  # 3 car/in lost, 1 car/out stored without being emitted


def test_scenes_option_picks_roadsim_scenes_and_rejects_unknown_ones(capsys: pytest.CaptureFixture[str]) -> None:
    from counting import all_runs, main

    calls: list[dict[str, object]] = []

    def build(**kw: object) -> list[SceneRun]:
        calls.append(kw)
        return []

    assert list(all_runs(build, True, [1], None, ["junction", "ped_crossing"])) == []
    assert [c["scenes"] for c in calls] == [["junction", "ped_crossing"]] * 2  # 5 fps, then 10 fps
    calls.clear()
    list(all_runs(build, True, [1], None))
    assert all("scenes" not in c for c in calls)  # every scene: the builder's default
    with pytest.raises(SystemExit):
        main(["--quick", "--no-peer", "--scenes", "junction,roundabout"])
    assert "--scenes: unknown ['roundabout']" in capsys.readouterr().err
