"""Model roles and the protocol a backend implements for each: detect, pose, classify (no torch).

A detector finds the objects of a frame; a second-stage model looks only inside the boxes the
detector found (a pose model at people, a classifier at vehicles...) and its findings ride on
those detections: `Detection.keypoints` for pose, `Detection.attributes` for classify. Batching
is the caller's: every method takes a batch of frames, one entry per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from smartcity.core.errors import SmartcityError
from smartcity.core.vision import Attributes, Box, Detection, Keypoints

Image = npt.NDArray[np.uint8]
"""An HxWx3 uint8 RGB frame."""


class ModelRole(StrEnum):
    DETECT = "detect"  # frames -> detections
    POSE = "pose"  # frame + boxes (people) -> keypoints per box
    CLASSIFY = "classify"  # frame + regions -> attributes per region


SECOND_STAGE_ROLES = frozenset({ModelRole.POSE, ModelRole.CLASSIFY})
"""Roles that run on the detector's boxes, only for cameras whose rules need them."""


class ModelError(SmartcityError):
    """A model that cannot be created (unknown type, missing file, wrong role...) or run."""


class MissingDependency(ModelError, ImportError):
    """An optional package that a model type needs is not installed; `package` names it."""

    def __init__(self, package: str, needed_by: str) -> None:
        super().__init__(f"{needed_by} needs the Python package {package!r}: pip install {package}")
        self.package = package


@runtime_checkable
class Detector(Protocol):
    """Role `detect`: finds objects in RGB frames; boxes come back in each frame's own pixels."""

    @property
    def names(self) -> list[str]:
        """Class names by class index."""
        ...

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input (height, width)."""
        ...

    @property
    def device(self) -> str:
        """Where the network runs: `cpu`, `cuda`, `cuda:1`..."""
        ...

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """One list of detections per HxWx3 uint8 RGB frame (frames may differ in size)."""
        ...


@runtime_checkable
class PoseModel(Protocol):
    """Role `pose`: keypoints of the object in each box (a model may crop the box or read the
    whole frame); keypoints are in the frame's pixels."""

    def pose(self, frames: Sequence[Image], boxes: Sequence[Sequence[Box]]) -> list[list[Keypoints]]:
        """Per frame, one keypoints tuple per box given for it, in the same order."""
        ...


@dataclass(frozen=True, slots=True)
class PoseFound:
    """What a people-finding pose model saw in one frame: keypoints for each box it was given
    (same order) and the people it found that none of those boxes covers."""

    keypoints: tuple[Keypoints, ...]
    people: tuple[Detection, ...] = ()


@runtime_checkable
class PersonFinder(Protocol):
    """A pose model that also finds people on its own, frame-wide. A general detector misses many
    people lying on the ground (YOLOv3-tiny: most frames of a fallen person in UP-Fall); a camera
    watched for falls needs them, so the pipeline adds those people to the frame's detections."""

    def pose_and_find(
        self,
        frames: Sequence[Image],
        boxes: Sequence[Sequence[Box]],
        scores: Sequence[Sequence[float]] | None = None,
    ) -> list[PoseFound]:
        """Per frame: keypoints per box given, and the people no given box covers (`scores`: the
        detector's score of each box; the model may let a weak box, which the tracker would not
        follow, leave the person it half-sees to be found)."""
        ...


@runtime_checkable
class Classifier(Protocol):
    """Role `classify`: attributes of the object in each region (colour, helmet, vehicle type...)."""

    def classify(self, frames: Sequence[Image], regions: Sequence[Sequence[Box]]) -> list[list[Attributes]]:
        """Per frame, one Attributes per region given for it, in the same order."""
        ...
