"""InferenceActor: owns one device and every configured model, and batches requests per model
across cameras.

Camera actors call `detect(frame)` with the frame as a Ray object ref, so the pixels travel
through the shared-memory object store, not through pickled copies; a camera whose rules need
a second-stage model (pose, classify) calls `refine(frame, detections, roles)` with the
detector's boxes. Each model has its own batcher: requests arriving within `max_wait_ms` of
each other (up to `max_batch`) run as one forward pass, in a worker thread so that the actor
keeps accepting requests while the device is busy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from smartcity.core import memtrace
from smartcity.core.aio import cancel_and_wait, wait_for
from smartcity.core.vision import Attributes, Box, Detection
from smartcity.models.registry import create_classifier, create_detector, create_pose_model, parse_models
from smartcity.models.roles import Classifier, Detector, ModelRole, PersonFinder, PoseFound, PoseModel

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Res = TypeVar("Res")


class InferenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_batch: int = Field(8, description="Largest batch run in one forward pass (per model).", ge=1, le=256)
    max_wait_ms: float = Field(
        10.0, description="How long a request waits for others to join its batch.", ge=0, le=1000
    )
    num_cpus: float = Field(1.0, description="CPUs reserved for the inference actor.", ge=0, le=256)
    num_gpus: float = Field(0.0, description="GPUs reserved for the inference actor (0 = CPU).", ge=0, le=16)
    detector: dict[str, Any] = Field(
        default_factory=lambda: {"type": "nanodet"},
        description="Detector configuration (type: nanodet | darknet | onnx | torchscript, and its fields); used "
        "when `models` is not given. Default: NanoDet-g (`smartcity models install --model nanodet-g`).",
    )
    models: list[dict[str, Any]] | None = Field(
        None,
        description="Every model with its role (analysis.models); default: `detector`.",
        min_length=1,
        max_length=16,
    )
    warm_up: bool = Field(
        True,
        description="Run the detector once on a blank batch of `max_batch` frames at start, so that its "
        "runtime's memory reaches its full size then rather than at the first burst of requests.",
    )


@dataclass
class _Request(Generic[Req, Res]):
    item: Req
    future: asyncio.Future[Res]
    queued_at: float


@dataclass
class BatchStats:
    batches: int = 0
    frames: int = 0
    busy_s: float = 0.0
    batch_sizes: dict[int, int] = dataclasses.field(default_factory=dict)


class Batcher(Generic[Req, Res]):
    """Gathers the requests for one model into batches and runs `run` on each, off the loop."""

    def __init__(
        self, name: str, run: Callable[[list[Req]], list[Res]], max_batch: int, max_wait_s: float
    ) -> None:
        self.name = name
        self._run = run
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.stats = BatchStats()
        self._queue: list[_Request[Req, Res]] = []
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None

    async def submit(self, item: Req) -> Res:
        loop = asyncio.get_running_loop()
        if self._loop_task is None:
            self._wake = asyncio.Event()
            self._loop_task = loop.create_task(self._batcher())  # lives as long as the actor
        fut: asyncio.Future[Res] = loop.create_future()
        self._queue.append(_Request(item, fut, time.monotonic()))
        assert self._wake is not None
        self._wake.set()
        return await fut

    async def close(self) -> None:
        if self._loop_task is not None:
            await cancel_and_wait(self._loop_task)
            self._loop_task = None

    async def _batcher(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                continue
            # give other cameras a moment to join the batch
            deadline = self._queue[0].queued_at + self.max_wait_s
            while len(self._queue) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            if self._queue:
                self._wake.set()
            t0 = time.perf_counter()
            try:
                results = await asyncio.to_thread(self._run, [r.item for r in batch])
            except Exception as exc:
                log.exception("%s failed on a batch of %d", self.name, len(batch))
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(exc)
                continue
            st = self.stats
            st.busy_s += time.perf_counter() - t0
            st.batches += 1
            st.frames += len(batch)
            st.batch_sizes[len(batch)] = st.batch_sizes.get(len(batch), 0) + 1
            for r, res in zip(batch, results, strict=True):
                if not r.future.done():
                    r.future.set_result(res)


# One second-stage request: a frame and the boxes to look at in it.
_Regions = tuple[np.ndarray, tuple[Box, ...]]
# The pose request adds the detector's score of each box (a people-finding pose model lets a weak
# box leave the person it half-sees to be found: see movenet's `cover_score`).
_PoseRegions = tuple[np.ndarray, tuple[Box, ...], tuple[float, ...]]


class Inference:
    """The actor's logic (usable in-process without Ray for tests and the naive baseline)."""

    def __init__(self, config: dict[str, Any]) -> None:
        memtrace.start_from_env("inference")  # diagnostic, off unless SMARTCITY_MEMTRACE_DIR is set
        self.config = InferenceConfig.model_validate(config)
        cfg = self.config
        models = parse_models(cfg.models if cfg.models is not None else [{**cfg.detector, "role": "detect"}])
        self.detector: Detector = create_detector(models.detect)
        self.models: dict[ModelRole, object] = {ModelRole.DETECT: self.detector}
        wait_s = cfg.max_wait_ms / 1000.0
        self._detect = Batcher[np.ndarray, list[Detection]](
            "detect", self.detector.detect, cfg.max_batch, wait_s
        )
        if cfg.warm_up:
            warm_up(self.detector, cfg.max_batch)
        # second stage: per role, the classes it looks at and its batcher
        self.apply_to: dict[ModelRole, frozenset[str]] = {}
        self._pose: Batcher[_PoseRegions, PoseFound] | None = None
        self._classify: Batcher[_Regions, list[Attributes]] | None = None
        pose_entry, classify_entry = models.get(ModelRole.POSE), models.get(ModelRole.CLASSIFY)
        if pose_entry is not None:
            pose = self.models[ModelRole.POSE] = create_pose_model(pose_entry)
            self.apply_to[ModelRole.POSE] = pose_entry.apply_to
            self._pose = Batcher("pose", _pose_run(pose), cfg.max_batch, wait_s)
        if classify_entry is not None:
            classifier = self.models[ModelRole.CLASSIFY] = create_classifier(classify_entry)
            self.apply_to[ModelRole.CLASSIFY] = classify_entry.apply_to
            self._classify = Batcher("classify", _classify_run(classifier), cfg.max_batch, wait_s)

    @property
    def batches(self) -> int:
        return self._detect.stats.batches

    @property
    def frames(self) -> int:
        return self._detect.stats.frames

    def model_stats(self) -> dict[str, BatchStats]:
        """Per role, the batches its model ran."""
        out = {"detect": self._detect.stats}
        for b in (self._pose, self._classify):
            if b is not None:
                out[b.name] = b.stats
        return out

    async def info(self) -> dict[str, Any]:
        st = self._detect.stats
        return {
            "pid": os.getpid(),
            "device": self.detector.device,
            "names": self.detector.names,
            "input_size": list(self.detector.input_size),
            "batches": st.batches,
            "frames": st.frames,
            "busy_s": round(st.busy_s, 3),
            "batch_sizes": dict(st.batch_sizes),
            "models": {role: dataclasses.asdict(s) for role, s in self.model_stats().items()},
        }

    async def detect(self, image: np.ndarray) -> list[Detection]:
        """Detections of one frame (boxes in its own pixel coordinates)."""
        return await self._detect.submit(image)

    async def refine(
        self, image: np.ndarray, detections: list[Detection], roles: Iterable[str]
    ) -> list[Detection]:
        """`detections` of `image` with what the second-stage models of `roles` found in the boxes
        of the classes each looks at (keypoints for pose, attributes for classify); a role with no
        model configured leaves them as they are."""
        out = list(detections)
        for role in sorted(ModelRole(r) for r in roles):
            classes = self.apply_to.get(role)
            if classes is None:
                continue
            picked = [i for i, d in enumerate(out) if d.cls in classes]
            finds = role is ModelRole.POSE and isinstance(self.models.get(role), PersonFinder)
            if not picked and not finds:
                continue
            request: _Regions = (image, tuple(out[i].box for i in picked))
            if role is ModelRole.POSE and self._pose is not None:
                found = await self._pose.submit((*request, tuple(out[i].score for i in picked)))
                for i, kp in zip(picked, found.keypoints, strict=True):
                    out[i] = dataclasses.replace(out[i], keypoints=kp)
                out.extend(found.people)  # people the detector missed (lying on the ground...)
            elif role is ModelRole.CLASSIFY and self._classify is not None:
                for i, attrs in zip(picked, await self._classify.submit(request), strict=True):
                    out[i] = dataclasses.replace(out[i], attributes=out[i].attributes.merged(attrs))
        return out

    async def close(self) -> None:
        for b in (self._detect, self._pose, self._classify):
            if b is not None:
                await b.close()


def warm_up(detector: Detector, batch: int) -> bool:
    """Detect twice on `batch` blank frames of the detector's input size (False: the detector
    takes any size, there is nothing to size).

    onnxruntime's CPU arena grows to the largest batch it has run and keeps that memory, and the
    second run of an input shape adds the block of its memory pattern: NanoDet-g's RSS grew by
    80 MiB at the first batch of 8 and by 78 MiB more at the second (then no more, for any batch
    up to 8). A burst of requests an hour into a run (the cameras catching up after a stall)
    raised the inference actor's memory for good; run at start, the largest batch makes that
    its size from then on (torch's CUDA cache grows the same way).
    """
    h, w = detector.input_size
    if h <= 0 or w <= 0:
        return False
    blank = np.zeros((h, w, 3), np.uint8)
    for _ in range(2):
        detector.detect([blank] * batch)
    return True


def _pose_run(model: PoseModel) -> Callable[[list[_PoseRegions]], list[PoseFound]]:
    def run(batch: list[_PoseRegions]) -> list[PoseFound]:
        frames, boxes = [image for image, _, _ in batch], [b for _, b, _ in batch]
        if isinstance(model, PersonFinder):
            return model.pose_and_find(frames, boxes, [scores for _, _, scores in batch])
        return [PoseFound(tuple(k)) for k in model.pose(frames, boxes)]

    return run


def _classify_run(model: Classifier) -> Callable[[list[_Regions]], list[list[Attributes]]]:
    def run(batch: list[_Regions]) -> list[list[Attributes]]:
        return model.classify([image for image, _ in batch], [boxes for _, boxes in batch])

    return run


def remote_class() -> Any:
    import ray

    return ray.remote(Inference)
