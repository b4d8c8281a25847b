"""Per-camera analysis pipeline run inside a camera-group actor:

    frame due for analysis -> motion gate -> detector (batched, remote)
        -> second-stage models the rules need (pose, classify; batched, remote) -> tracker -> rules

Up to `max_inflight` frames of one camera wait for the detector at once, so decoding,
inference and tracking overlap; results are consumed strictly in frame order, which the
tracker needs. The motion gate (`smartcity.actors.motion`) spares the detector two kinds of
frame: one where nothing moved reuses the previous detections, one where only already
tracked objects moved is analysed on the tracker's predictions (`ByteTracker.coast`); on
those frames the people pixelated in snapshots and live views are the predicted boxes. The
detector is injected (`infer`), so the pipeline runs with or without Ray. So are the
second-stage models (`second_stage`): a camera runs those of the roles its rules declare
(`Rule.model_roles`) and no other, and their findings (keypoints, attributes) ride on the
detections into the tracks the rules see.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from smartcity.actors.clip import ClipJob, ClipRecorder
from smartcity.actors.evidence import EvidenceBudget, rule_shapes, wants_evidence
from smartcity.actors.motion import GateDecision, MotionConfig, MotionGate
from smartcity.analytics import reads_pixels, required_model_roles
from smartcity.core.events import DetectionSummary, Event, RuleEvent
from smartcity.core.privacy_config import PrivacyConfig
from smartcity.core.privacy_mask import PrivacyMask
from smartcity.core.vision import Detection, FrameTracks, Track, scale_detections, scale_tracks
from smartcity.privacy import CameraPrivacy
from smartcity.privacy.clip import render_clip

if TYPE_CHECKING:
    from smartcity.tracking.config import TrackerConfig

log = logging.getLogger(__name__)

# Count buckets are kept (and updated in place) until they ended this long before the latest
# frame: crossings are confirmed a few frames late, so a later one for a forgotten bucket is rare.
COUNTS_KEPT_S = 60.0

Infer = Callable[[np.ndarray], Awaitable[list[Detection]]]
Refine = Callable[[np.ndarray, list[Detection], frozenset[str]], Awaitable[list[Detection]]]
"""(frame, its detections, second-stage roles) -> the detections with what those models found."""
Emit = Callable[[list[Event], dict[str, bytes]], None]


class AnalysedFrame(Protocol):
    """A frame for analysis (`sources.types.Frame`): `image` may be scaled down from the camera's
    `width` x `height` picture (the source resizes in its decoder to the detector's input);
    `full_image()` gives the camera's picture, for what operators see."""

    camera_id: str
    index: int
    t: float
    image: np.ndarray
    width: int
    height: int

    @property
    def scaled(self) -> bool: ...
    @property
    def scale(self) -> tuple[float, float]: ...
    def full_image(self) -> np.ndarray: ...


class FrameSource(Protocol):
    def take_for_analysis(self) -> Any: ...


class DetectionRecorder(Protocol):
    def write(self, camera: str, t: float, width: int, height: int, detections: Sequence[Detection]) -> None: ...


@dataclass(frozen=True, slots=True)
class SecondStage:
    """The second-stage models a camera may use: the roles configured and how to run them."""

    roles: frozenset[str]
    run: Refine


@dataclass
class PipelineStats:
    analysed: int = 0
    inferred: int = 0
    skipped: int = 0  # nothing moved: previous detections reused
    tracked: int = 0  # only tracked objects moved: analysed on the tracker's predictions
    refined: int = 0  # frames whose detections went to a second-stage model
    infer_errors: int = 0
    last_error: str = ""
    last_tracks: int = 0
    clips_sent: int = 0
    clips_failed: int = 0  # not rendered (pixelation or encoding failed): no clip, fail closed


class CameraPipeline:
    def __init__(
        self,
        camera_id: str,
        source: FrameSource,
        infer: Infer,
        emit: Emit,
        *,
        rules: Sequence[Any] = (),
        motion: MotionConfig | None = None,
        tracker: TrackerConfig | None = None,
        max_inflight: int = 3,
        summary_interval_s: float = 10.0,
        counts_flush_s: float = 10.0,
        recorder: DetectionRecorder | None = None,
        idle_sleep_s: float = 0.01,
        evidence_per_s: float = 2.0,
        second_stage: SecondStage | None = None,
        privacy: CameraPrivacy | None = None,
    ) -> None:
        from smartcity.tracking import ByteTracker, TrackerConfig

        self.camera_id = camera_id
        self.source = source
        self.infer = infer
        self.emit = emit
        self.gate = MotionGate(motion)
        self.tracker = ByteTracker(tracker or TrackerConfig())
        self.engine: Any = None  # created with the first rule (a camera without rules only tracks)
        self.second_stage = second_stage
        self.stage_roles: frozenset[str] = frozenset()  # second-stage roles the rules need
        self.reads_pixels = False  # a rule reads the picture (signal heads, flames): it gets full frames
        self.privacy = privacy or CameraPrivacy(PrivacyConfig())
        self.clips: ClipRecorder | None = None  # kept while a rule can raise a clip kind
        self._clip_tasks: set[asyncio.Task[None]] = set()
        if rules:
            self.set_rules(rules)
        self.max_inflight = max_inflight
        self.summary_interval_s = summary_interval_s
        self.counts_flush_s = counts_flush_s
        self.recorder = recorder
        self.idle_sleep_s = idle_sleep_s
        self.stats = PipelineStats()
        self.evidence_budget = EvidenceBudget(evidence_per_s)
        self.latest_tracks: tuple[Track, ...] = ()
        # the last analysed frame with its own detections: what snapshots show, so that the
        # people pixelated are those of the picture shown, not of a later frame
        self.latest_view: tuple[AnalysedFrame, list[Detection]] | None = None
        # the private mask of that frame (None: it cannot be trusted, the picture is hidden whole)
        self.latest_mask: PrivacyMask | None = None
        self._last_dets: list[Detection] = []
        self._window: deque[tuple[AnalysedFrame, GateDecision, asyncio.Future[list[Detection]] | None]] = deque()
        self._summary_started = time.monotonic()
        self._summary_frames = 0
        self._summary_classes: dict[str, int] = {}
        self._last_counts_flush = time.monotonic()
        self._last_frame_t: float | None = None  # time of the latest analysed frame

    # ---- control ------------------------------------------------------------------------
    def set_rules(self, rules: Sequence[Any]) -> None:
        """Live rule change: unchanged rules keep their state, the stream is untouched."""
        needed = required_model_roles(rules) - {"detect"}
        available = self.second_stage.roles if self.second_stage is not None else frozenset()
        if needed - available:
            log.warning("camera %s: rules need models %s that are not configured", self.camera_id, sorted(needed - available))
        self.stage_roles = needed & available
        self.reads_pixels = reads_pixels(rules)
        if self.engine is None:
            if not rules:
                return
            from smartcity.analytics import RuleEngine

            self.engine = RuleEngine(list(rules), self.camera_id)
        else:
            self.engine.set_rules(list(rules))
        self._update_clips()

    def _update_clips(self) -> None:
        cfg = self.privacy.config.evidence_clip
        kinds: set[str] = set()
        for rule_id in self.engine.rules if self.engine is not None else ():
            try:
                kinds |= self.engine.rule(rule_id).alert_kinds
            except LookupError:  # a disabled rule
                continue
        if cfg.enabled and kinds & set(cfg.kinds):
            if self.clips is None:
                self.clips = ClipRecorder(cfg)
        else:
            self.clips = None

    def set_signal_state(self, rule_id: str, state: str, t: float) -> None:
        if self.engine is not None:
            self.engine.set_signal_state(rule_id, state, t)

    def flush_counts(self) -> None:
        """Emit the count buckets that changed; forget those that ended a minute before the latest
        frame (a crossing confirmed later still counts: it opens a new part of its bucket), so a
        camera that runs for months holds a few minutes of buckets, not all of them."""
        if self.engine is None:
            return
        flush_before = None if self._last_frame_t is None else self._last_frame_t - COUNTS_KEPT_S
        buckets = self.engine.count_buckets(flush_before)
        if buckets:
            self.emit(list(buckets), {})
        self._last_counts_flush = time.monotonic()

    # ---- loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            while True:
                frame = self.source.take_for_analysis()
                if frame is None:
                    if self._window:
                        await self._consume_head()
                    else:
                        await asyncio.sleep(self.idle_sleep_s)
                    self._periodic()
                    continue
                fut: asyncio.Future[list[Detection]] | None = None
                decision = self.gate.decide(frame.image, self._gate_boxes(frame))
                if decision is GateDecision.INFER:
                    fut = asyncio.ensure_future(self._detect(frame))
                self._window.append((frame, decision, fut))
                while len(self._window) > self.max_inflight or (self._window and self._head_ready()):
                    await self._consume_head()
                self._periodic()
        finally:
            for _, _, fut in self._window:
                if fut is not None:
                    fut.cancel()
            self._window.clear()
            for task in list(self._clip_tasks):  # clips still rendering are not sent
                task.cancel()

    async def _detect(self, frame: AnalysedFrame) -> list[Detection]:
        """The detections of a frame in the pixels of the camera's picture: the detector sees the
        analysis image (scaled in the decoder) and its boxes are scaled back; second-stage
        models (pose, classify) look at the full picture, as their crops need."""
        dets = await self.infer(frame.image)
        if frame.scaled:
            dets = scale_detections(dets, *frame.scale)
        roles, stage = self.stage_roles, self.second_stage
        if not roles or stage is None:
            return dets
        if not dets and "pose" not in roles:  # a pose model may find people the detector missed
            return dets
        self.stats.refined += 1
        return await stage.run(frame.full_image(), dets, roles)

    def _head_ready(self) -> bool:
        fut = self._window[0][2]
        return fut is None or fut.done()

    def _gate_boxes(self, frame: AnalysedFrame) -> np.ndarray | None:
        """Where the established tracks will be at the frame's time, in its image's pixels:
        motion there needs no detector."""
        if self.gate.config.track_max == 0:
            return None
        boxes = self.tracker.predicted_boxes(frame.t)
        if frame.scaled and boxes is not None and len(boxes):
            sx, sy = frame.scale
            boxes = boxes / np.array([sx, sy, sx, sy])
        return boxes

    async def _consume_head(self) -> None:
        frame, decision, fut = self._window.popleft()
        if decision is GateDecision.TRACK:
            self.stats.tracked += 1
            self._analyse(frame, None)
            return
        if fut is not None:
            try:
                dets = await fut
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # inference unavailable (actor restarting): skip the frame rather than feed
                # the tracker an empty scene, which would end every track
                self.stats.infer_errors += 1
                self.stats.last_error = f"inference failed: {type(exc).__name__}: {exc}"[:300]
                # nobody can be located in this frame: viewers get it hidden whole (fail closed)
                self.latest_view = (frame, [])
                self.latest_mask = None
                return
            self.stats.inferred += 1
            self._last_dets = dets
        else:
            self.stats.skipped += 1
            dets = self._last_dets
        self._analyse(frame, dets)

    def _analyse(self, frame: AnalysedFrame, detected: list[Detection] | None) -> None:
        """Track and apply the rules to one frame; `detected` None: the detector did not see
        it and the tracks are predicted."""
        self.stats.analysed += 1
        self._last_frame_t = frame.t
        if detected is None:
            tracks = tuple(self.tracker.coast(frame.t))
            # what the frame shows, for pixelation and evidence: the predicted boxes
            dets = [Detection(box=t.box, cls=t.cls, score=t.score) for t in tracks]
        else:
            tracks = tuple(self.tracker.update(detected, frame.t, (frame.width, frame.height)))
            dets = detected
        self.latest_tracks = tracks
        self.latest_mask = self._observe_privacy(frame, dets, tracks, detected=detected is not None)
        self.latest_view = (frame, dets)
        self.stats.last_tracks = len(tracks)
        ft = FrameTracks(
            camera_id=self.camera_id, t=frame.t, width=frame.width, height=frame.height, tracks=tracks,
            detections=None if detected is None else tuple(detected), columns=self.tracker.columns,
        )
        clips = self.clips
        if clips is not None:
            for job in clips.observe(frame.image, frame.t, self.latest_mask):
                self._render_clip(job)
        if self.engine is not None:
            events = self.engine.update(ft, image=frame.full_image() if self.reads_pixels else None)
            if events:
                stills = self._evidence(events, frame, self.latest_mask)
                self.emit(list(events), stills)
                if clips is not None:
                    for ev in events:
                        if ev.event_id in stills and clips.wants(ev):
                            clips.start(ev)
        self._summary_frames += 1
        if detected is not None:  # the register of detections holds what the detector saw
            if self.recorder is not None:
                self.recorder.write(self.camera_id, frame.t, frame.width, frame.height, detected)
            for d in detected:
                self._summary_classes[d.cls] = self._summary_classes.get(d.cls, 0) + 1

    def _observe_privacy(
        self, frame: AnalysedFrame, dets: list[Detection], tracks: tuple[Track, ...], *, detected: bool
    ) -> PrivacyMask | None:
        """The frame's private mask, made on the analysis image (its pixels, its size): a mask
        scales itself onto the full picture it is applied to (`privacy.picture`)."""
        if not frame.scaled:
            return self.privacy.observe(frame.image, frame.t, dets, tracks, detected=detected)
        sx, sy = frame.scale
        return self.privacy.observe(
            frame.image, frame.t, scale_detections(dets, 1 / sx, 1 / sy), scale_tracks(tracks, 1 / sx, 1 / sy), detected=detected
        )

    def _evidence(self, events: Sequence[RuleEvent], frame: AnalysedFrame, mask: PrivacyMask | None) -> dict[str, bytes]:
        """JPEG snapshots (geometry drawn, privacy zones filled, the private mask pixelated) for
        register-worthy events."""
        out: dict[str, bytes] = {}
        for ev in events:
            try:
                rule = self.engine.rule(ev.rule_id)
            except KeyError:
                continue
            if not wants_evidence(ev, rule.alert_kinds) or not self.evidence_budget.take():
                continue
            try:
                out[ev.event_id] = self.privacy.evidence(frame.full_image(), rule_shapes(rule.spec.params), mask)
            except Exception:
                log.exception("evidence snapshot failed for %s", ev.event_id)
        return out

    def _render_clip(self, job: ClipJob) -> None:
        """Render a complete clip off the loop (pixelated like the stills) and hand it over."""
        painter = self.privacy.painter

        async def render() -> None:
            try:
                data = await asyncio.to_thread(render_clip, job.frames, painter)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.clips_failed += 1
                log.exception("evidence clip of %s not rendered", job.clip.of_event_id)
                return
            self.emit([job.clip], {job.clip.event_id: data})
            self.stats.clips_sent += 1

        task = asyncio.get_running_loop().create_task(render(), name=f"clip-{job.clip.of_event_id}")
        self._clip_tasks.add(task)
        task.add_done_callback(self._clip_tasks.discard)

    def _periodic(self) -> None:
        now = time.monotonic()
        if now - self._last_counts_flush >= self.counts_flush_s:
            self.flush_counts()
        window = now - self._summary_started
        if window >= self.summary_interval_s and self._summary_frames:
            self.emit(
                [
                    DetectionSummary(
                        camera_id=self.camera_id,
                        t=time.time(),
                        frames=self._summary_frames,
                        window_s=round(window, 3),
                        detections_by_class=dict(self._summary_classes),
                        active_tracks=sum(1 for t in self.latest_tracks if t.confirmed),
                    )
                ],
                {},
            )
            self._summary_started = now
            self._summary_frames = 0
            self._summary_classes = {}
