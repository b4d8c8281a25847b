"""The per-camera rule engine: runs every active rule of one camera on each frame of tracks.

Pure: no I/O, no Ray, no asyncio. The camera actor feeds it `FrameTracks` (and optionally the
image, for rules that read pixels such as a signal head) and ships the returned events.
Rules change live with `set_rules`: a rule whose spec is unchanged keeps its state.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

from smartcity.analytics.base import ClassVocab, RelinkConfig, Rule, SlotTable
from smartcity.analytics.counts import CountAggregator
from smartcity.analytics.registry import signal_rule_types
from smartcity.analytics.signal import SignalColour
from smartcity.analytics.spec import RuleSpec
from smartcity.core.errors import NotFound, ValidationFailed
from smartcity.core.events import CountBucket, RuleEvent
from smartcity.core.vision import FrameTracks

log = logging.getLogger(__name__)


class RuleEngine:
    """All rules of one camera, sharing one per-frame view of the tracks."""

    def __init__(
        self, rules: Sequence[RuleSpec], camera_id: str, *, relink: RelinkConfig | None = None
    ) -> None:
        self.camera_id = camera_id
        self.vocab = ClassVocab()
        self.slots = SlotTable(self.vocab, relink)
        self.counts = CountAggregator(camera_id)
        self._specs: dict[str, RuleSpec] = {}
        self._rules: dict[str, Rule] = {}
        self._active: dict[str, bool] = {}
        self._checked: dict[str, float] = {}
        # rules whose schedule is permanent: always active, no schedule to look up per frame
        self._permanent: frozenset[str] = frozenset()
        self.rule_failures: dict[str, int] = {}
        self.frames = 0
        self.set_rules(rules)

    # ------------------------------------------------------------------ rules
    @property
    def rules(self) -> dict[str, RuleSpec]:
        """The specs of all rules given (enabled or not), by id."""
        return dict(self._specs)

    def rule(self, rule_id: str) -> Rule:
        try:
            return self._rules[rule_id]
        except KeyError:
            raise NotFound(f"rule {rule_id!r} is not running on camera {self.camera_id!r}") from None

    def set_rules(self, rules: Sequence[RuleSpec]) -> None:
        """Replace the rule set; unchanged rules keep their state, changed ones restart."""
        seen: set[str] = set()
        for i, spec in enumerate(rules):
            if spec.camera_id != self.camera_id:
                raise ValidationFailed(
                    f"rules[{i}].camera_id: rule {spec.id!r} is for camera {spec.camera_id!r}, "
                    f"not {self.camera_id!r}"
                )
            if spec.id in seen:
                raise ValidationFailed(f"rules[{i}].id: duplicate rule id {spec.id!r}")
            seen.add(spec.id)
        new_specs = {s.id: s for s in rules}
        for rid in list(self._rules):
            if rid not in new_specs or not new_specs[rid].enabled or new_specs[rid] != self._specs.get(rid):
                del self._rules[rid]
                self._active.pop(rid, None)
                self._checked.pop(rid, None)
        for rid, spec in new_specs.items():
            if spec.enabled and rid not in self._rules:
                self._rules[rid] = self._build(spec)
        self._specs = new_specs
        self._permanent = frozenset(rid for rid, spec in new_specs.items() if spec.schedule.kind == "permanent")

    def _build(self, spec: RuleSpec) -> Rule:
        cls = spec.rule_class
        if cls.produces_counts:  # its crossings go into this camera's counts
            return cls(spec, self.vocab, counts=self.counts)
        return cls(spec, self.vocab)

    def _is_active(self, rid: str, t: float) -> bool:
        sched = self._specs[rid].schedule
        if sched.kind == "permanent":
            return True
        gran = sched.granularity_s()
        last = self._checked.get(rid)
        if gran > 0 and last is not None and math.floor(last / gran) == math.floor(t / gran):
            return self._active.get(rid, False)
        self._checked[rid] = t
        return sched.is_active(t)

    # ------------------------------------------------------------------ frames
    def update(self, frame: FrameTracks, image: npt.NDArray[np.uint8] | None = None) -> list[RuleEvent]:
        """Run every active rule on one frame; returns the events they raised."""
        if frame.camera_id != self.camera_id:
            raise ValidationFailed(f"frame.camera_id: {frame.camera_id!r} is not this engine's {self.camera_id!r}")
        view = self.slots.view(frame, image)
        self.frames += 1
        events: list[RuleEvent] = []
        permanent = self._permanent
        active_now = self._active
        t = frame.t
        for rid, rule in self._rules.items():
            if rid in permanent:
                active_now[rid] = True
            else:
                active = self._is_active(rid, t)
                was = active_now.get(rid)
                active_now[rid] = active
                if not active:
                    continue
                if was is False:
                    rule.reset()  # it missed frames: its per-object state is stale
            try:
                raised = rule.step(view)
                if raised:
                    events.extend(raised)
            except Exception:
                n = self.rule_failures.get(rid, 0) + 1
                self.rule_failures[rid] = n
                if n == 1:  # log when it starts failing, not on every frame
                    log.exception("rule %s (%s) on camera %s failed", rid, rule.type_name, self.camera_id)
        return events

    def active_rule_ids(self) -> list[str]:
        return [rid for rid, a in self._active.items() if a]

    # ------------------------------------------------------------------ inputs and outputs
    def set_signal_state(self, rule_id: str, state: str, t: float) -> None:
        """An external signal state for a rule that takes them (a red_light rule whose signal
        source is `external`)."""
        rule = self.rule(rule_id)
        if not rule.accepts_signals:
            kinds = " or ".join(signal_rule_types()) or "signal-taking"
            raise ValidationFailed(f"rule_id: rule {rule_id!r} is a {rule.type_name}, not a {kinds} rule")
        if not rule.takes_signals(rule.params):
            raise ValidationFailed(f"rule_id: rule {rule_id!r} reads its signal from elsewhere (its source is not external)")
        if state not in ("red", "amber", "green"):
            raise ValidationFailed(f"state: signal state must be red, amber or green, got {state!r}")
        rule.set_signal(cast(SignalColour, state), t)

    def count_buckets(self, flush_before: float | None = None) -> list[CountBucket]:
        """1-minute count buckets changed since the last call, with their totals so far.

        The caller upserts them by `event_id` (a bucket may come again with a higher n). Buckets
        ending at or before `flush_before` are returned a last time if changed, then forgotten.
        """
        return self.counts.buckets(flush_before)
