"""Models with roles: the registry keyed by config `type`, `analysis.models` parsing, adding a
model as one module, and the inference actor's logic hosting several models, batched per model."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from example_models import BoxPose, BoxPoseConfig

import smartcity.models
from smartcity.actors.inference import Inference
from smartcity.core.errors import ConfigError
from smartcity.core.vision import Attributes, Detection, Keypoint
from smartcity.models.config import DarknetDetectorConfig
from smartcity.models.registry import (
    MODELS,
    ModelEntry,
    create_pose_model,
    model_type,
    parse_models,
    register_model,
)
from smartcity.models.roles import ModelError, ModelRole, PoseModel


def test_a_model_is_one_module_plus_its_config_entry() -> None:
    models = parse_models([{"role": "detect", "type": "darknet"}, {"role": "pose", "type": "box_pose", "score": 0.5}])
    assert models.detect.type_name == "darknet" and isinstance(models.detect.config, DarknetDetectorConfig)
    assert models.second_stage_roles == {ModelRole.POSE}
    entry = models.get(ModelRole.POSE)
    assert entry == ModelEntry(ModelRole.POSE, "box_pose", BoxPoseConfig(score=0.5), frozenset({"person"}))
    assert models.get(ModelRole.CLASSIFY) is None
    model = create_pose_model(entry)
    assert isinstance(model, BoxPose) and isinstance(model, PoseModel)
    frame = np.zeros((100, 100, 3), dtype=np.uint8)
    [[head_first]] = model.pose([frame], [[(10.0, 20.0, 30.0, 70.0)]])
    assert head_first[0] == Keypoint(20.0, 20.0, 0.5)
    assert head_first[3:] == (Keypoint(10.0, 70.0, 0.5), Keypoint(30.0, 70.0, 0.5))
    # registering the same factory again is a no-op; another one under a taken name is refused
    assert register_model("box_pose", roles=["pose"], config=BoxPoseConfig)(BoxPose) is BoxPose
    with pytest.raises(ModelError, match="already registered"):
        register_model("box_pose", roles=["pose", "classify"], config=BoxPoseConfig)(BoxPose)
    assert MODELS["box_pose"].roles == {ModelRole.POSE}


def test_model_list_errors_name_their_entry_and_field() -> None:
    def errors(items: list[dict[str, object]]) -> list[str]:
        with pytest.raises(ConfigError) as info:
            parse_models(items)
        return info.value.errors

    assert errors(
        [
            {"role": "detect", "type": "darknet", "colour": "blue"},
            {"role": "pose", "type": "darknet"},
            {"role": "pose", "type": "box_pose", "score": 2},
            {"role": "dance", "type": "box_pose"},
            {"role": "classify", "type": "no_such_model"},
            {"role": "detect", "type": "box_pose", "apply_to": ["person"]},
            {"role": "pose", "type": "box_pose", "apply_to": []},
        ]
    ) == [
        "analysis.models[0].colour: unknown field",
        "analysis.models[1].role: model type 'darknet' cannot play 'pose' (only ['detect'])",
        "analysis.models[2].score: Input should be less than or equal to 1",
        "analysis.models[3].role: expected one of ['detect', 'pose', 'classify'], got 'dance'",
        f"analysis.models[4].type: unknown model type 'no_such_model' (known: {', '.join(sorted(MODELS))})",
        "analysis.models[5].role: model type 'box_pose' cannot play 'detect' (only ['pose'])",
        "analysis.models[6].apply_to: expected a non-empty list of class names",
    ]
    assert errors([{"role": "pose", "type": "box_pose"}, {"role": "pose", "type": "box_pose"}]) == [
        "analysis.models: exactly one model with role detect, got 0",
        "analysis.models: at most one model with role pose, got 2",
    ]
    assert errors([{"role": "detect", "type": "darknet", "apply_to": ["car"]}]) == [
        "analysis.models[0].apply_to: a detector looks at whole frames (apply_to is for pose and classify)"
    ]
    assert errors([]) == ["analysis.models: give 1 to 16 models (exactly one with role detect)"]


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder searched as part of the smartcity.models package, as if its files were in it."""
    smartcity.models.__path__.append(str(tmp_path))
    try:
        yield tmp_path
    finally:
        smartcity.models.__path__.remove(str(tmp_path))
        MODELS.pop("tiny_classifier", None)
        sys.modules.pop("smartcity.models.tiny_classifier", None)


def test_an_unknown_type_is_looked_for_in_the_module_of_its_name(plugin_dir: Path) -> None:
    (plugin_dir / "tiny_classifier.py").write_text(
        "from typing import Literal\n"
        "from pydantic import BaseModel\n"
        "from smartcity.core.vision import Attributes\n"
        "from smartcity.models.registry import register_model\n\n"
        "class Config(BaseModel):\n"
        "    type: Literal['tiny_classifier'] = 'tiny_classifier'\n\n"
        "@register_model('tiny_classifier', roles=['classify'], config=Config)\n"
        "class Tiny:\n"
        "    def __init__(self, config: Config) -> None: ...\n"
        "    def classify(self, frames, regions):\n"
        "        return [[Attributes({'wide': float(b[2] - b[0] > b[3] - b[1])}) for b in rs] for rs in regions]\n"
    )
    assert "tiny_classifier" not in MODELS
    models = parse_models([{"role": "detect", "type": "darknet"}, {"role": "classify", "type": "tiny_classifier",
                                                                     "apply_to": ["car", "bus"]}])  # fmt: skip
    entry = models.get(ModelRole.CLASSIFY)
    assert entry is not None and entry.apply_to == {"car", "bus"}
    assert model_type("tiny_classifier").roles == {ModelRole.CLASSIFY}
    with pytest.raises(ModelError, match="unknown model type 'tiny_classifierx'"):
        model_type("tiny_classifierx")


async def test_inference_hosts_several_models_and_batches_each_on_its_own() -> None:
    inference = Inference(
        {
            "max_batch": 4,
            "max_wait_ms": 1000,  # a batch fills up (4 requests) long before
            "models": [{"role": "detect", "type": "bright_box"}, {"role": "pose", "type": "box_pose"}],
        }
    )
    try:
        frames = []
        for k in range(4):
            f = np.zeros((60, 80, 3), dtype=np.uint8)
            f[0, 0, 0] = k
            f[10 + k : 50, 20 : 30 + k] = 255
            frames.append(f)
        detected = await asyncio.gather(*(inference.detect(f) for f in frames))
        assert [d.box for [d] in detected] == [(20.0, 10.0 + k, 30.0 + k, 50.0) for k in range(4)]
        assert all(d.keypoints == () for [d] in detected)
        car = Detection((0.0, 0.0, 5.0, 5.0), "car", 0.8, attributes=Attributes({"colour": "red"}))
        refined = await asyncio.gather(
            *(inference.refine(f, [*dets, car], ["pose", "classify"]) for f, dets in zip(frames, detected))
        )
        pose = inference.models[ModelRole.POSE]
        assert isinstance(pose, BoxPose)
        for k, (person, car_after) in enumerate(refined):
            assert person.keypoints == pose.keypoints((20.0, 10.0 + k, 30.0 + k, 50.0))
            assert car_after == car  # pose looks at people only; no classify model is configured
        # one batch of four per model, and the pose model saw each frame once
        stats = inference.model_stats()
        assert sorted(stats) == ["detect", "pose"]
        assert [(s.batches, s.frames, s.batch_sizes) for s in stats.values()] == [(1, 4, {4: 1})] * 2
        assert pose.batch_sizes == [4] and sorted(pose.frames_seen) == [0, 1, 2, 3]
        info = await inference.info()
        assert info["batches"] == 1 and info["models"]["pose"]["frames"] == 4
    finally:
        await inference.close()
