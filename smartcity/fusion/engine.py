"""Incident fusion (pure): de-duplication, correlation across cameras of a site, severity, lifecycle.

- De-duplication: events of the same rule, camera and object (track id, else object class)
  within `cooldown_s` of an incident's last event extend that incident (count, last seen).
- Correlation: events of the same kind from cameras of the same site within
  `correlation_window_s` join one incident, which lists every camera.
- Severity: per rule type from the config, else the event's own.
- Lifecycle: open -> acknowledged -> resolved | dismissed (open may also go straight to
  resolved or dismissed). A closed incident is forgotten: the same thing happening again
  opens a new incident.

Incident ids derive from the id of the event that opened them, so a redelivered event after
a restart maps to the same incident (and the same idempotent alert deliveries).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from smartcity.core.errors import ValidationFailed
from smartcity.core.events import Incident, IncidentState, RuleEvent, new_event_id
from smartcity.fusion.config import FusionConfig

ACTIVE = (IncidentState.OPEN, IncidentState.ACKNOWLEDGED)
CLOSED = (IncidentState.RESOLVED, IncidentState.DISMISSED)

# The lifecycle: the states each state may move to. Public so that the incident store can
# apply a move atomically (only from the states allowed to reach the target).
TRANSITIONS: Mapping[IncidentState, frozenset[IncidentState]] = {
    IncidentState.OPEN: frozenset({IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED, IncidentState.DISMISSED}),
    IncidentState.ACKNOWLEDGED: frozenset({IncidentState.RESOLVED, IncidentState.DISMISSED}),
    IncidentState.RESOLVED: frozenset(),
    IncidentState.DISMISSED: frozenset(),
}


class InvalidTransition(ValidationFailed):
    """A lifecycle move the state machine does not allow (e.g. resolved -> acknowledged)."""


def check_transition(current: IncidentState, target: IncidentState) -> None:
    """Raise InvalidTransition unless `current -> target` is a lifecycle move."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"state: cannot move an incident from {current.value} to {target.value}")


def allowed_from(target: IncidentState) -> tuple[IncidentState, ...]:
    """The states an incident may move to `target` from (lifecycle order)."""
    return tuple(s for s, targets in TRANSITIONS.items() if target in targets)


def incident_id_for(event_id: str) -> str:
    """The id of the incident an event opens: stable, 32 hex characters whatever the event id."""
    return hashlib.blake2b(event_id.encode(), digest_size=16).hexdigest()


DedupeKey = tuple[str, str, str]
CorrelationKey = tuple[str, str]


def dedupe_key(ev: RuleEvent) -> DedupeKey:
    return key_of(ev.rule_id, ev.camera_id, ev.track_id, ev.object_class)


def key_of(rule_id: str, camera_id: str, track_id: int | None, object_class: str | None) -> DedupeKey:
    obj = f"track:{track_id}" if track_id is not None else f"class:{object_class or ''}"
    return (rule_id, camera_id, obj)


@dataclass(frozen=True, slots=True)
class FusionResult:
    """What one rule event did: the incident snapshot after it, and whether it opened it."""

    incident: Incident
    opened: bool
    site: str


@dataclass(slots=True)
class _Active:
    incident: Incident
    site: str
    keys: set[DedupeKey]
    site_keys: set[CorrelationKey]


class FusionEngine:
    """Turns rule events into incident snapshots. Not thread-safe; one per event loop."""

    def __init__(self, cfg: FusionConfig | None = None, sites: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg or FusionConfig()
        self._sites: dict[str, str] = dict(sites or {})
        self._active: OrderedDict[str, _Active] = OrderedDict()
        self._by_key: dict[DedupeKey, str] = {}
        self._by_site: dict[CorrelationKey, str] = {}
        self._horizon = max(self.cfg.cooldown_s, self.cfg.correlation_window_s)
        self._group = {k: g[0] for g in self.cfg.kind_groups for k in g}
        self.opened = 0
        self.deduplicated = 0
        self.correlated = 0

    def site_of(self, camera_id: str) -> str:
        return self._sites.get(camera_id, "")

    def _scope(self, kind: str, camera_id: str, site: str) -> tuple[str, str]:
        """(kind, place) under which events correlate: a kind group's first kind, and for a
        group's kinds the camera itself when it has no site."""
        group = self._group.get(kind)
        if group is None:
            return kind, site
        return group, site or f"camera:{camera_id}"

    def severity_for(self, ev: RuleEvent) -> str:
        return self.cfg.severity_by_rule_type.get(ev.rule_type, ev.severity)

    @property
    def active(self) -> list[Incident]:
        return [a.incident for a in self._active.values()]

    def get(self, incident_id: str) -> Incident | None:
        a = self._active.get(incident_id)
        return a.incident if a is not None else None

    # ------------------------------------------------------------------ ingest

    def ingest(self, ev: RuleEvent, now: float) -> FusionResult:
        """Fuse one rule event; `now` (clock time) becomes the snapshot's `t`."""
        self._expire(ev.t)
        key = dedupe_key(ev)
        site = self.site_of(ev.camera_id)
        a = self._match(self._by_key.get(key), ev.t, self.cfg.cooldown_s)
        if a is not None:
            self.deduplicated += 1
            return self._extend(a, ev, key, now)
        ckind, place = self._scope(ev.kind, ev.camera_id, site)
        if place and self.cfg.correlation_window_s > 0:
            a = self._match(self._by_site.get((ckind, place)), ev.t, self.cfg.correlation_window_s)
            if a is not None:
                self.correlated += 1
                return self._extend(a, ev, key, now)
        return self._open(ev, key, site, now)

    def _match(self, incident_id: str | None, t: float, window: float) -> _Active | None:
        if incident_id is None:
            return None
        a = self._active.get(incident_id)
        if a is None or a.incident.state not in ACTIVE:
            return None
        return a if t - a.incident.last_seen <= window else None

    def _open(self, ev: RuleEvent, key: DedupeKey, site: str, now: float) -> FusionResult:
        inc_id = incident_id_for(ev.event_id)
        existing = self._active.get(inc_id)
        if existing is not None:  # the opening event redelivered
            return FusionResult(existing.incident, False, existing.site)
        inc = Incident(
            event_id=new_event_id(),
            camera_id=ev.camera_id,
            t=now,
            incident_id=inc_id,
            rule_id=ev.rule_id,
            kind=ev.kind,
            severity=self.severity_for(ev),  # type: ignore[arg-type]
            state=IncidentState.OPEN,
            camera_ids=(ev.camera_id,),
            first_seen=ev.t,
            last_seen=ev.t,
            count=1,
            event_ids=(ev.event_id,),
        )
        a = _Active(inc, site, {key}, set())
        self._active[inc_id] = a
        self._by_key[key] = inc_id
        ckind, place = self._scope(ev.kind, ev.camera_id, site)
        if place:
            a.site_keys.add((ckind, place))
            self._by_site[(ckind, place)] = inc_id
        self.opened += 1
        self._bound()
        return FusionResult(inc, True, site)

    def _extend(self, a: _Active, ev: RuleEvent, key: DedupeKey, now: float) -> FusionResult:
        inc = a.incident
        if ev.event_id in inc.event_ids:  # redelivery of an event already counted
            return FusionResult(inc, False, a.site)
        cams = inc.camera_ids if ev.camera_id in inc.camera_ids else (*inc.camera_ids, ev.camera_id)
        ids = inc.event_ids if len(inc.event_ids) >= self.cfg.max_event_ids else (*inc.event_ids, ev.event_id)
        inc = replace(
            inc,
            event_id=new_event_id(),
            t=max(now, inc.t),
            camera_ids=cams,
            first_seen=min(inc.first_seen, ev.t),
            last_seen=max(inc.last_seen, ev.t),
            count=inc.count + 1,
            event_ids=ids,
        )
        a.incident = inc
        a.keys.add(key)
        self._by_key[key] = inc.incident_id
        ckind, place = self._scope(ev.kind, ev.camera_id, a.site)
        if place:
            a.site_keys.add((ckind, place))
            self._by_site[(ckind, place)] = inc.incident_id
        self._active.move_to_end(inc.incident_id)
        return FusionResult(inc, False, a.site)

    @property
    def memory_s(self) -> float:
        """How long after its last event an incident can still be extended (then forgotten)."""
        return 2 * self._horizon

    def restore(self, incident: Incident, keys: Sequence[DedupeKey]) -> None:
        """Take back an incident still active in the database after a restart, with the dedupe
        keys of its events, so that the same thing seen again extends it instead of opening
        (and alerting) a second incident. Call in order of `last_seen`, before any `ingest`."""
        if incident.state not in ACTIVE or incident.incident_id in self._active:
            return
        a = _Active(incident, "", set(), set())
        for key in keys:
            a.keys.add(key)
            self._by_key[key] = incident.incident_id
        sites = {self.site_of(c) for c in incident.camera_ids} - {""}
        if len(sites) == 1:
            a.site = sites.pop()
            a.site_keys.add((incident.kind, a.site))
            self._by_site[(incident.kind, a.site)] = incident.incident_id
        self._active[incident.incident_id] = a
        self._bound()

    # ------------------------------------------------------------------ lifecycle

    def apply_state(self, incident_id: str, state: IncidentState, now: float) -> Incident | None:
        """Record a lifecycle move made elsewhere (the database is the authority).

        Returns the new snapshot when the incident is active here, else None. A closed
        incident is forgotten so that the same thing happening again opens a new one.
        """
        a = self._active.get(incident_id)
        if a is None:
            return None
        inc = replace(a.incident, event_id=new_event_id(), t=max(now, a.incident.t), state=state)
        if state in CLOSED:
            self._forget(incident_id)
        else:
            a.incident = inc
        return inc

    def _forget(self, incident_id: str) -> None:
        a = self._active.pop(incident_id, None)
        if a is None:
            return
        for k in a.keys:
            if self._by_key.get(k) == incident_id:
                del self._by_key[k]
        for ck in a.site_keys:
            if self._by_site.get(ck) == incident_id:
                del self._by_site[ck]

    def _expire(self, t: float) -> None:
        """Forget incidents that no event can extend any more (kept in the database)."""
        horizon = t - 2 * self._horizon
        while self._active:
            inc_id, a = next(iter(self._active.items()))
            if a.incident.last_seen >= horizon:
                return
            self._forget(inc_id)

    def _bound(self) -> None:
        while len(self._active) > self.cfg.max_active:
            self._forget(next(iter(self._active)))
