"""InferenceActor: owns one device and one detector, and batches requests across cameras.

Camera actors call `detect(frame)` with the frame as a Ray object ref, so the pixels travel
through the shared-memory object store, not through pickled copies. Requests arriving
within `max_wait_ms` of each other (up to `max_batch`) run as one forward pass; the model
runs in a worker thread so the actor keeps accepting requests while the device is busy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from smartcity.core.aio import wait_for
from smartcity.core.vision import Detection

log = logging.getLogger(__name__)


class InferenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_batch: int = Field(8, description="Largest batch run in one forward pass.", ge=1, le=256)
    max_wait_ms: float = Field(10.0, description="How long a request waits for others to join its batch.", ge=0, le=1000)
    num_cpus: float = Field(1.0, description="CPUs reserved for the inference actor.", ge=0, le=256)
    num_gpus: float = Field(0.0, description="GPUs reserved for the inference actor (0 = CPU).", ge=0, le=16)
    detector: dict[str, Any] = Field(
        default_factory=lambda: {"type": "darknet"},
        description="Detector configuration (type: darknet | onnx | torchscript, and its fields).",
    )


@dataclass
class _Request:
    image: np.ndarray
    future: asyncio.Future[list[Detection]]
    queued_at: float


class Inference:
    """The actor's logic (usable in-process without Ray for tests and the naive baseline)."""

    def __init__(self, config: dict[str, Any]) -> None:
        from smartcity.models.registry import create_detector

        self.config = InferenceConfig.model_validate(config)
        self.detector = create_detector(self.config.detector)
        self._queue: list[_Request] = []
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self.batches = 0
        self.frames = 0
        self.busy_s = 0.0
        self.batch_sizes: dict[int, int] = {}

    async def info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "device": self.detector.device,
            "names": self.detector.names,
            "batches": self.batches,
            "frames": self.frames,
            "busy_s": round(self.busy_s, 3),
            "batch_sizes": dict(self.batch_sizes),
        }

    async def detect(self, image: np.ndarray) -> list[Detection]:
        """Detections of one frame (boxes in its own pixel coordinates)."""
        if self._loop_task is None:
            self._wake = asyncio.Event()
            self._loop_task = asyncio.get_running_loop().create_task(self._batcher())
        fut: asyncio.Future[list[Detection]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(image, fut, time.monotonic()))
        assert self._wake is not None
        self._wake.set()
        return await fut

    async def _batcher(self) -> None:
        assert self._wake is not None
        max_wait = self.config.max_wait_ms / 1000.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                continue
            # give other cameras a moment to join the batch
            deadline = self._queue[0].queued_at + max_wait
            while len(self._queue) < self.config.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
            batch, self._queue = self._queue[: self.config.max_batch], self._queue[self.config.max_batch :]
            if self._queue:
                self._wake.set()
            t0 = time.perf_counter()
            try:
                results = await asyncio.to_thread(self.detector.detect, [r.image for r in batch])
            except Exception as exc:
                log.exception("inference failed on a batch of %d", len(batch))
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(exc)
                continue
            self.busy_s += time.perf_counter() - t0
            self.batches += 1
            self.frames += len(batch)
            self.batch_sizes[len(batch)] = self.batch_sizes.get(len(batch), 0) + 1
            for r, dets in zip(batch, results, strict=True):
                if not r.future.done():
                    r.future.set_result(dets)


def remote_class() -> Any:
    import ray

    return ray.remote(Inference)
