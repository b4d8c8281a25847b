"""The fail-closed private mask (smartcity.privacy.mask): what the detector misses but moves is
masked, keypoint hulls and uncertainty widen it, and when it cannot be trusted there is no mask
at all, so every picture made from it is hidden whole."""

from __future__ import annotations

import numpy as np

from smartcity.core.privacy_config import BackgroundConfig, MaskConfig
from smartcity.core.vision import Detection, Keypoint, Track
from smartcity.privacy import PrivacyMask, PrivacyMasker, compose

W, H = 320, 240
WALKER = (10, 140, 30, 200)  # x, y, w, h of the square a detector would miss


def scene(step: int, *, walker: bool = True) -> np.ndarray:
    """Static texture with a bright walker moving 8 px right per frame."""
    img = np.random.default_rng(3).integers(0, 120, (H, W, 3), dtype=np.uint8)
    if walker:
        x, y, w, h = WALKER
        x += 8 * step
        # a bright, textured walker (a face has detail; pixelation must remove it)
        region = img[y : y + h, x : x + w]
        region[:] = np.random.default_rng(5).integers(180, 256, region.shape, dtype=np.uint8)
    return img


def warm(masker: PrivacyMasker, frames: int = 12) -> None:
    for k in range(frames):
        masker.detector_answered(k * 0.2)
        masker.update(scene(0, walker=False), k * 0.2, [])


def unmasked_share(mask: PrivacyMask, box: tuple[int, int, int, int]) -> float:
    x1, y1, x2, y2 = box
    return float((~mask.pixels()[y1:y2, x1:x2]).mean())


def test_no_mask_until_the_background_is_learned_nor_before_the_detector_answers() -> None:
    m = PrivacyMasker(background=BackgroundConfig(warmup_frames=5))
    # the detector has answered, but the background model is still warming up
    m.detector_answered(0.0)
    assert [m.update(scene(0), k * 0.2, []) for k in range(4)] == [None] * 4
    # warm background, no detector answer ever: no mask either
    m2 = PrivacyMasker(background=BackgroundConfig(warmup_frames=3))
    assert all(m2.update(scene(0), k * 0.2, []) is None for k in range(8))
    m2.detector_answered(1.6)
    assert m2.update(scene(0), 1.6, []) is not None


def test_the_detector_going_quiet_ends_the_mask_and_the_picture_is_hidden_whole() -> None:
    m = PrivacyMasker(MaskConfig(detector_timeout_s=2.0))
    warm(m)
    assert m.update(scene(0, walker=False), 2.4, []) is not None
    # three seconds after the detector's last answer (model down): no mask
    assert m.update(scene(0, walker=False), 2.2 + 3.0, []) is None
    img = scene(3)
    hidden = compose(img, None, pixelate_people=True, overlay=None)
    # blocks of a sixth of the smaller side: no pixel of the walker's texture survives
    assert len(np.unique(hidden.reshape(-1, 3), axis=0)) <= 6 * 8


def test_a_walker_the_detector_misses_is_masked_by_what_moves() -> None:
    m = PrivacyMasker()
    warm(m)
    for step in range(1, 6):
        mask = m.update(scene(step), 2.4 + step * 0.2, [])  # the detector sees nobody
        m.detector_answered(2.4 + step * 0.2)
    assert mask is not None
    x, y, w, h = WALKER
    box = (x + 40, y, x + 40 + w, y + h)
    assert unmasked_share(mask, box) == 0.0
    # the rest of the still picture stays clear: privacy costs little here
    assert mask.fraction < 0.1
    picture = compose(scene(5), mask, pixelate_people=True, overlay=None)
    walker = picture[y : y + h, box[0] : box[2]].reshape(-1, 3)
    assert len(np.unique(walker, axis=0)) <= 14 * 5  # one colour per 8 px block, not 3000 pixels of texture
    assert np.array_equal(picture[:100, 200:], scene(5)[:100, 200:])


def test_a_still_person_in_a_box_is_not_learned_into_the_background() -> None:
    m = PrivacyMasker()
    still = (200.0, 40.0, 240.0, 120.0)
    img = scene(0, walker=False)
    img[40:120, 200:240] = 255
    person = [Detection(still, "person", 0.3)]
    for k in range(12):  # the empty scene, then a person standing there for a long time
        m.detector_answered(k * 0.2)
        m.update(scene(0, walker=False), k * 0.2, [])
    for k in range(12, 200):
        m.detector_answered(k * 0.2)
        m.update(img, k * 0.2, person)
    bg = m.background.background()
    assert bg is not None
    f = m.background.factor
    # the background behind the person is still the empty scene, not the person
    assert bg[60 // f : 100 // f, 210 // f : 230 // f].mean() < 150


def test_keypoint_hulls_and_staleness_widen_the_mask() -> None:
    m = PrivacyMasker(
        MaskConfig(box_margin=0.0, low_score_margin=0.0, stale_margin_per_s=0.5, max_margin=2.0)
    )
    warm(m)
    box = (100.0, 100.0, 120.0, 140.0)
    # a person lying with an arm out: keypoints well left of the detector's box
    kps = (Keypoint(60, 130, 0.9), Keypoint(100, 125, 0.9), Keypoint(118, 138, 0.9), Keypoint(70, 138, 0.9))
    m.detector_answered(2.4)
    mask = m.update(scene(0, walker=False), 2.4, [Detection(box, "person", 1.0, keypoints=kps)])
    assert mask is not None
    assert mask.pixels()[133, 66]  # inside the hull, outside the box
    fresh = mask.fraction
    # the same box two seconds after the detector last answered: a wider mask
    track = Track(1, "person", box, 1.0, t=4.4, time_since_update=10)
    stale = m.update(scene(0, walker=False), 4.4, [], [track])
    assert stale is not None
    x1, y1, x2, y2 = box
    grown = stale.pixels()
    assert grown[int(y1) - 20, int(x1) + 5] and grown[int(y2) + 20, int(x2) - 5]
    assert stale.fraction > 0 and fresh > 0


def test_a_changed_scene_is_learned_again_and_hidden_meanwhile() -> None:
    m = PrivacyMasker(background=BackgroundConfig(warmup_frames=4))
    warm(m, 8)
    m.detector_answered(1.6)
    assert m.update(scene(0, walker=False), 1.6, []) is not None
    lights_off = (scene(0, walker=False) // 4).astype(np.uint8)
    m.detector_answered(1.8)
    assert m.update(lights_off, 1.8, []) is None
    assert m.background.resets == 1


def test_mask_pixels_scale_to_any_picture_size() -> None:
    mask = PrivacyMask.from_boxes([(32.0, 16.0, 64.0, 48.0)], W, H)
    small = mask.pixels(W // 2, H // 2)
    assert small.shape == (H // 2, W // 2)
    assert small[16, 24] and not small[100, 100]


def test_background_view_shows_the_empty_scene_and_blobs_where_it_is_private() -> None:
    m = PrivacyMasker()
    warm(m)
    for step in range(1, 4):
        m.detector_answered(2.4 + step * 0.2)
        mask = m.update(scene(step), 2.4 + step * 0.2, [])
    bg = m.background.background()
    assert mask is not None and bg is not None
    frame = scene(3)
    view = compose(frame, mask, pixelate_people=True, overlay=None, background=bg)
    empty = scene(0, walker=False)
    private = mask.pixels()
    # outside the mask: the learned scene (grid upscaled, so close to it, not the frame's pixels)
    assert np.abs(view[~private].astype(int) - empty[~private].astype(int)).mean() < 40
    # the walker's bright square is only a coarse blob: far fewer distinct colours than the frame
    x, y, w, h = WALKER
    x += 24
    blob = view[y : y + h, x : x + w].reshape(-1, 3)
    assert len(np.unique(blob, axis=0)) <= 16
    # no mask: the background view is refused too, the whole picture is hidden
    hidden = compose(frame, None, pixelate_people=True, overlay=None, background=bg)
    assert len(np.unique(hidden.reshape(-1, 3), axis=0)) <= 48
