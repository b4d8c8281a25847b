"""The Rule base class, the per-frame arrays rules share (FrameView) and object slots.

The engine turns a FrameTracks into one FrameView per frame: ground points normalised to
[0, 1], class codes, confidences, as numpy arrays, plus a *slot* per track. A slot is the
engine's short-term identity of an object: a track that the tracker loses and re-finds
under a new id a moment later, close to where the old one was heading, keeps its slot, so
rules keep their per-object state (a side of a line, a dwell timer) across the id switch.
Rules keep their per-object state in arrays indexed by slot, which keeps a frame with many
tracks and many rules to a few vectorised operations, or one compiled kernel
(smartcity.analytics.kernels), per rule.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from smartcity.analytics import kernels
from smartcity.analytics.counts import CountAggregator
from smartcity.analytics.geometry import BoolArray, FloatArray, Polygon, PolygonSet
from smartcity.analytics.signal import SignalColour
from smartcity.analytics.spec import RuleSpec
from smartcity.core.errors import ValidationFailed
from smartcity.core.events import RuleEvent, Severity
from smartcity.core.vision import Detection, FrameTracks, Track, TrackColumns

IntArray = npt.NDArray[np.intp]

# A re-found object's box may differ this much (ratio of widths or heights) from the lost one's.
MAX_RELINK_SIZE_RATIO = 1.6

EVENT_NAMESPACE = uuid.UUID("5a3c4e0e-8f0b-4f4e-9d3c-2b1f6d7a9e10")


def nonzero_index(mask: BoolArray) -> IntArray:
    """Indices where a 1-d mask is true (np.flatnonzero without its ravel)."""
    return mask.nonzero()[0]


_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes


def event_id(camera_id: str, rule_id: str, track_id: int | None, kind: str, t: float) -> str:
    """Deterministic id of one rule occurrence: a replay or a redelivery makes the same id.

    uuid.uuid5(EVENT_NAMESPACE, name).hex, without the UUID object (a third of its cost): the name's
    SHA-1 after the namespace's bytes, its first 16 bytes with the version (5) and variant bits set."""
    name = f"{camera_id}/{rule_id}/{track_id}/{kind}/{round(t * 1000)}"
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()


class ClassVocab:
    """Class name <-> small integer code, shared by the engine and its rules."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: list[str] = []
        self._keys: dict[tuple[frozenset[str], float], tuple[frozenset[str], float]] = {}

    def selection_key(self, names: frozenset[str], min_confidence: float) -> tuple[frozenset[str], float]:
        """The one key object of a selection (FrameView.masks): rules that select alike look their mask up
        with the same object, which a dict finds without comparing the sets of names."""
        key = (names, min_confidence)
        return self._keys.setdefault(key, key)

    def code(self, name: str) -> int:
        c = self.codes.get(name)
        if c is None:
            c = self.codes[name] = len(self.names)
            self.names.append(name)
        return c

    def table(self, names: tuple[str, ...] | frozenset[str]) -> BoolArray:
        for n in names:
            self.code(n)
        out = np.zeros(len(self.names), dtype=bool)
        for n in names:
            out[self.codes[n]] = True
        return out


@dataclass(frozen=True, slots=True)
class RelinkConfig:
    """How the engine bridges a tracker id switch (a lost track re-found under a new id)."""

    max_gap_s: float = 6.0  # a slot whose object is unseen this long is released
    radius: float = 0.05  # normalised distance between predicted and re-found position...
    radius_per_travel: float = 0.25  # ...plus this fraction of the distance predicted since last seen
    enabled: bool = True


@dataclass(slots=True)
class FrameView:
    """Everything rules need from one frame, computed once per frame for all rules."""

    camera_id: str
    t: float
    width: int
    height: int
    tracks: tuple[Track, ...]
    slots: IntArray
    codes: IntArray
    conf: FloatArray
    gx: FloatArray
    gy: FloatArray
    bw: FloatArray  # box width and height, normalised by the frame's
    bh: FloatArray
    fresh: BoolArray  # detected in this frame (not a tracker prediction)
    hits: IntArray
    confirmed: BoolArray
    vocab: ClassVocab
    capacity: int
    first_seen: FloatArray  # per slot (index with `slots`)
    # the same arrays as the rows the kernels take: geo (float64) gx, gy, bw, bh; ints (intp) slots, codes,
    # track ids, hits (kernels.GX ... BH, kernels.SLOT ... HITS)
    geo: FloatArray
    ints: IntArray
    new_slots: list[int] = field(default_factory=list)
    freed_slots: list[int] = field(default_factory=list)
    image: npt.NDArray[np.uint8] | None = None
    detections: tuple[Detection, ...] | None = None  # FrameTracks.detections
    masks: dict[tuple[frozenset[str], float], BoolArray] = field(default_factory=dict)
    selected_n: dict[int, int] = field(default_factory=dict)  # how many each of `masks` holds, by its id
    zones: dict[int, BoolArray] = field(default_factory=dict)
    xy: FloatArray | None = None  # (2, n) ground points (gx and gy are its rows), built on first use if not given
    # the zones the rules asked about on the previous frame, tested together on the first ask
    zone_set: PolygonSet | None = None
    zone_rows: BoolArray | None = None
    asked: list[Polygon] = field(default_factory=list)  # zones asked about in this frame, in order
    slot_rows: dict[int, int] | None = None  # made on first use (`slot_index`)

    def n_selected(self, mask: BoolArray) -> int:
        """How many tracks `mask` holds (counted when `Rule.selected` or `selected_of` made it)."""
        n = self.selected_n.get(id(mask))
        return int(np.count_nonzero(mask)) if n is None else n

    def track_ids(self) -> IntArray:
        """The tracks' ids as an array (for the kernels that note who was where)."""
        ids: IntArray = self.ints[kernels.TRACK_ID]
        return ids

    def slot_index(self) -> dict[int, int]:
        """The track (index) of each slot in this frame (made once per frame)."""
        rows = self.slot_rows
        if rows is None:
            sl = self.slots.tolist()
            # built backwards: a slot listed twice keeps its first track, as a search from the front would
            rows = self.slot_rows = dict(zip(reversed(sl), range(len(sl) - 1, -1, -1), strict=True))
        return rows

    def inside(self, zone: Polygon) -> BoolArray:
        """Which tracks have their ground point in `zone` (computed once per zone and frame)."""
        key = id(zone)
        m = self.zones.get(key)
        if m is None:
            if self.xy is None:
                self.xy = np.vstack((self.gx, self.gy))
            zs = self.zone_set
            row = zs.index.get(key) if zs is not None else None
            if zs is not None and row is not None:
                if self.zone_rows is None:
                    self.zone_rows = zs.contains_xy(self.xy)
                m = self.zone_rows[row]
            else:
                m = zone.contains_xy(self.xy)
            self.zones[key] = m
            self.asked.append(zone)
        return m

    @property
    def n(self) -> int:
        return len(self.tracks)


def _columns_of(
    tracks: tuple[Track, ...], columns: TrackColumns | None
) -> tuple[FloatArray, FloatArray, BoolArray, BoolArray, IntArray, list[str]]:
    """(boxes (n, 4), scores, detected in this frame, confirmed, hits, classes) of the tracks: the
    tracker's columns when given (`confirmed` a copy the caller may change), else read off the tracks."""
    if columns is not None:
        return (columns.boxes, columns.score, columns.misses == 0, columns.confirmed.copy(), columns.hits,
                columns.classes)
    # one flat list, converted once: cheaper than a tuple per track
    flat: list[float] = []
    put = flat.extend
    for tr in tracks:
        put(tr.box)
        put((tr.score, tr.time_since_update, tr.confirmed, tr.hits))
    rows = np.array(flat, dtype=np.float64).reshape(len(tracks), 8)
    return (rows[:, :4], rows[:, 4], rows[:, 5] == 0, rows[:, 6] != 0, rows[:, 7].astype(np.intp),
            [tr.cls for tr in tracks])


class SlotTable:
    """Maps tracker ids to slots, re-linking a re-found object to the slot of its lost track."""

    def __init__(self, vocab: ClassVocab, relink: RelinkConfig | None = None) -> None:
        self.vocab = vocab
        self.relink = relink or RelinkConfig()
        self.capacity = 64
        # the slots' floats, one row each (kernels.LAST_T ... FIRST_SEEN: slot_motion takes them as one
        # array), and the rows by name
        self.state = np.zeros((kernels.FIRST_SEEN + 1, self.capacity))
        self.state[kernels.LAST_T] = -math.inf
        self._name_rows()
        self.code = np.full(self.capacity, -1, dtype=np.intp)
        self.seen = np.zeros(self.capacity, dtype=np.intp)
        self.track_of_slot: dict[int, int] = {}
        self.slot_of_track: dict[int, int] = {}
        self.free: list[int] = list(range(self.capacity - 1, -1, -1))
        self.retired: set[int] = set()
        self.relinks = 0
        # no slot held was last seen before this (a lower bound): `view` skips `_release` until one may be stale
        self._oldest_seen = -math.inf
        # the last frame's track classes and their codes (a frame's are most often the same)
        self._classes: list[str] = []
        self._codes: IntArray = np.zeros(0, dtype=np.intp)
        # zones the rules asked about on the last frame (FrameView.inside): tested together next frame
        self._asked: list[Polygon] = []
        self._asked_ids: set[int] = set()
        self._zone_set: PolygonSet | None = None

    def _name_rows(self) -> None:
        st = self.state
        self.last_t, self.x, self.y, self.vx, self.vy, self.bw, self.bh, self.first_seen = (
            st[kernels.LAST_T], st[kernels.X], st[kernels.Y], st[kernels.VX], st[kernels.VY], st[kernels.SBW],
            st[kernels.SBH], st[kernels.FIRST_SEEN],
        )

    def _grow(self) -> None:
        old = self.capacity
        self.capacity *= 2
        state = np.zeros((kernels.FIRST_SEEN + 1, self.capacity))
        state[kernels.LAST_T] = -math.inf
        state[:, :old] = self.state
        self.state = state
        self._name_rows()
        for name, ifill in (("code", -1), ("seen", 0)):
            iarr = np.full(self.capacity, ifill, dtype=np.intp)
            iarr[:old] = getattr(self, name)
            setattr(self, name, iarr)
        self.free.extend(range(self.capacity - 1, old - 1, -1))

    def _allocate(self) -> int:
        if not self.free:
            self._grow()
        return self.free.pop()

    def view(self, frame: FrameTracks, image: npt.NDArray[np.uint8] | None = None) -> FrameView:
        t = frame.t
        w, h = float(frame.width or 1), float(frame.height or 1)
        sot = self.slot_of_track
        retired = self.retired
        kept: list[Track] = []
        slots_l: list[int] = []
        unknown: list[int] = []
        columns = frame.columns
        if columns is not None and not columns.describes(frame.tracks):
            columns = None  # another tracker's, or built for other Track objects
        ids = columns.ids if columns is not None else [tr.track_id for tr in frame.tracks]
        if retired and not retired.isdisjoint(ids):
            for tr in frame.tracks:
                tid = tr.track_id
                if tid in retired:
                    if tr.time_since_update > 0:
                        continue  # a lost track whose object was re-found under another id
                    retired.discard(tid)
                s = sot.get(tid, -1)
                if s < 0:
                    unknown.append(len(kept))
                kept.append(tr)
                slots_l.append(s)
        else:  # the common case, as the loop above in three passes that cost less than it
            kept = list(frame.tracks)
            slots_l = list(map(sot.get, ids, repeat(-1, len(ids))))
            unknown = [i for i, s in enumerate(slots_l) if s < 0]
        new_slots: list[int] = []
        if unknown:
            drop = self._assign(kept, slots_l, unknown, new_slots, t, w, h)
            if drop:
                keep = [i for i in range(len(kept)) if i not in drop]
                kept = [kept[i] for i in keep]
                slots_l = [slots_l[i] for i in keep]
        tracks = frame.tracks if len(kept) == len(frame.tracks) else tuple(kept)
        n = len(tracks)
        if n != len(frame.tracks):
            columns = None  # some tracks were dropped: read the ones kept
            ids = [tr.track_id for tr in tracks]
        # slots, class codes, track ids and (below) hits as the rows of one array, ground points and box
        # sizes as the first rows of another (the zone tests take the ground points stacked)
        ints = np.empty((4, n), dtype=np.intp)
        ints[kernels.SLOT] = slots_l
        ints[kernels.TRACK_ID] = ids
        work = np.empty((7, n))
        if n:
            box, conf, fresh, confirmed, hits_a, classes = _columns_of(tracks, columns)
            if classes == self._classes:  # the same classes as the last frame's tracks (the common case)
                ints[kernels.CODE] = self._codes
            else:
                try:
                    ints[kernels.CODE] = list(map(self.vocab.codes.__getitem__, classes))
                except KeyError:  # a class new to the vocabulary
                    ints[kernels.CODE] = list(map(self.vocab.code, classes))
                self._classes, self._codes = list(classes), ints[kernels.CODE].copy()
            # with the time since each slot of a track detected now was last seen
            m = kernels.frame_ground(box, 0.5 / w, 1.0 / w, 1.0 / h, ints[kernels.SLOT], fresh, t, self.last_t, work)
            # the slots of tracks detected now move, their velocity smoothed towards the one implied by the
            # move since the slot was last seen (the smoothing's exp stays numpy's: the same bits as before);
            # a re-linked track is as old as its slot: hits and confirmed count the slot's sightings
            kernels.slot_motion(ints, fresh, work, hits_a, confirmed, t, np.exp(work[6, :m]), self.state, self.seen,
                                self.code)
        else:
            conf = np.zeros(0)
            fresh = confirmed = np.zeros(0, dtype=bool)
        geo = work[:4]
        gx, gy, bw, bh = geo[0], geo[1], geo[2], geo[3]  # (indexing: cheaper than unpacking the rows)
        freed = (
            self._release(slots_l, t)
            if len(self.track_of_slot) > n and self._oldest_seen < t - self.relink.max_gap_s else []
        )
        if len(retired) > 1000:  # ids of long-gone tracks: the tracker never reuses ids
            retired.clear()
        view = FrameView(
            camera_id=frame.camera_id, t=t, width=frame.width, height=frame.height, tracks=tracks,
            slots=ints[kernels.SLOT], codes=ints[kernels.CODE], conf=conf, gx=gx, gy=gy, bw=bw, bh=bh, fresh=fresh,
            hits=ints[kernels.HITS], confirmed=confirmed, vocab=self.vocab, capacity=self.capacity,
            first_seen=self.first_seen, geo=geo, ints=ints, new_slots=new_slots, freed_slots=freed, image=image,
            detections=frame.detections, xy=work[:2], zone_set=self._zones_asked(),
        )
        self._asked = view.asked
        return view

    def _release(self, slots_l: list[int], t: float) -> list[int]:
        """Free the slots of objects not in this frame (`slots_l`) and unseen too long; returns them."""
        sot = self.slot_of_track
        # slots unseen for too long, in the dict's order (one array comparison, then the few left)
        held = np.fromiter(self.track_of_slot, dtype=np.intp, count=len(self.track_of_slot))
        last_t = self.last_t[held]
        old = last_t < t - self.relink.max_gap_s
        stale: list[int] = held[old].tolist()
        n_old = len(stale)
        if stale:
            present = set(slots_l)
            stale = [s for s in stale if s not in present]
        # when the slots still held were last seen, at the earliest: none goes stale before then + max_gap_s
        if len(stale) < n_old:  # some old slots are in the frame (unseen, predicted): they still count
            self._oldest_seen = float(last_t.min())
        else:
            rest = last_t[~old]
            self._oldest_seen = float(rest.min()) if len(rest) else math.inf
        for s in stale:
            tid = self.track_of_slot.pop(s)
            if sot.get(tid) == s:
                del sot[tid]
            self.free.append(s)
        return stale

    def _zones_asked(self) -> PolygonSet | None:
        """The zones asked about on the last frame as one set (rebuilt when the rules ask about others).

        The set holds its polygons, so the ids it is keyed by cannot be reused while it exists."""
        asked = self._asked
        ids = set(map(id, asked))  # (asked holds each zone once: FrameView.inside)
        if ids != self._asked_ids:
            self._asked_ids = ids
            self._zone_set = PolygonSet(asked) if len(asked) > 1 else None
        return self._zone_set

    def _assign(
        self, kept: list[Track], slots_l: list[int], unknown: list[int], new_slots: list[int],
        t: float, w: float, h: float,
    ) -> set[int]:
        """Give a slot to each new track id: a lost object's slot when it is re-found, else a fresh one.

        Returns the indices of tracks to drop from this frame: lost tracks whose object was re-found.
        """
        sot = self.slot_of_track
        taken = {s for i, s in enumerate(slots_l) if s >= 0 and kept[i].time_since_update == 0}
        index_of_slot = {s: i for i, s in enumerate(slots_l) if s >= 0}
        drop: set[int] = set()
        rl = self.relink
        for i in unknown:
            tr = kept[i]
            s: int | None = None
            if tr.time_since_update == 0 and self.relink.enabled:
                x1, y1, x2, y2 = tr.box
                cands = [c for c in self.track_of_slot if c not in taken]
                if cands:
                    code, x, y = self.vocab.code(tr.cls), (x1 + x2) * 0.5 / w, y2 / h
                    # the few a cheap compiled test cannot rule out (it keeps every slot _relink may pick), with
                    # their state as Python numbers (a list item costs a fraction of a numpy scalar)
                    at = np.array(cands, dtype=np.intp)
                    k = kernels.relink_candidates(at, code, x, y, t, self.state, self.code, self.seen, rl.max_gap_s,
                                                  rl.radius, rl.radius_per_travel)
                    if k:
                        near = at[:k]
                        state = dict(zip(near.tolist(), zip(self.code[near].tolist(), self.seen[near].tolist(),
                                                            self.state[:, near].T.tolist(), strict=True), strict=True))
                        s = self._relink(list(state), code, x, y, (x2 - x1) / w, (y2 - y1) / h, t, state)
            if s is None:
                s = self._allocate()
                new_slots.append(s)
                self.first_seen[s] = t
                self.seen[s] = 0
                self.vx[s] = self.vy[s] = 0.0
                self.x[s] = self.y[s] = self.bw[s] = self.bh[s] = 0.0
                self.last_t[s] = -math.inf
                # seen now (the frame's motion step sets last_t), or not yet: never seen, it may go stale
                self._oldest_seen = min(self._oldest_seen, t if tr.time_since_update == 0 else -math.inf)
            else:
                old = self.track_of_slot[s]
                sot.pop(old, None)
                self.retired.add(old)
                if s in index_of_slot:
                    drop.add(index_of_slot[s])
                self.relinks += 1
            taken.add(s)
            sot[tr.track_id] = s
            self.track_of_slot[s] = tr.track_id
            slots_l[i] = s
        return drop

    def _relink(
        self, orphans: list[int], code: int, x: float, y: float, bw: float, bh: float, t: float,
        state: dict[int, _SlotState],
    ) -> int | None:
        """The lost slot a new track continues, if one is kinematically plausible (`state`: the orphans').

        Only an object seen at least twice (a one-frame fragment has no trustworthy velocity), of
        the same class and a similar size, whose predicted position is near enough (a radius that
        scales with its size, plus a share of the distance predicted) and that is found ahead of
        where it was lost, not behind: gluing fragments of two vehicles makes one that moves
        backwards, a false wrong-way alert.
        """
        if not self.relink.enabled:
            return None
        best, best_d = None, math.inf
        for s in orphans:
            s_code, s_seen, (last_t, sx, sy, vx, vy, ow, oh, _) = state[s]  # rows kernels.LAST_T ... FIRST_SEEN
            if s_code != code or not math.isfinite(last_t) or s_seen < 2:
                continue
            gap = t - last_t
            if gap <= 0 or gap > self.relink.max_gap_s:
                continue
            if min(ow, oh, bw, bh) > 0 and max(bw / ow, ow / bw, bh / oh, oh / bh) > MAX_RELINK_SIZE_RATIO:
                continue
            tx, ty = vx * gap, vy * gap
            travel = math.hypot(tx, ty)
            size = max(ow, oh)
            if travel > 0.5 * size and (x - sx) * tx + (y - sy) * ty < 0:
                continue  # found behind where it was heading
            d = math.hypot(sx + tx - x, sy + ty - y)
            limit = min(self.relink.radius, 0.75 * size) + self.relink.radius_per_travel * travel
            if d <= limit and d < best_d:
                best, best_d = s, d
        return best


# a relink candidate's class code, sightings and floats (SlotTable.state's column: kernels.LAST_T ... FIRST_SEEN)
_SlotState = tuple[int, int, list[float]]


class Scratch:
    """Output arrays that a kernel fills in place, returning how many places it filled: one set per
    user, grown with the frame. A compiled function that returns arrays boxes each one, which costs
    about as much as the rest of a small kernel call."""

    def __init__(self, *dtypes: npt.DTypeLike) -> None:
        self._dtypes = dtypes
        self.size = 0
        self.arrays: tuple[npt.NDArray[Any], ...] = ()
        self.fit(64)

    def fit(self, n: int) -> tuple[npt.NDArray[Any], ...]:
        """The arrays, at least `n` long (their contents are left over from earlier calls)."""
        if n > self.size:
            self.size = max(n, 2 * self.size)
            self.arrays = tuple(np.empty(self.size, dtype=d) for d in self._dtypes)
        return self.arrays


class ScratchRows:
    """Like Scratch, for a kernel that writes its outputs to the rows of one 2-d array (one argument
    where it would take one array per row: numba unboxes every array argument, ~0.1 us each)."""

    def __init__(self, rows: int, dtype: npt.DTypeLike = np.float64) -> None:
        self.array: npt.NDArray[Any] = np.empty((rows, 64), dtype=dtype)

    def fit(self, n: int) -> npt.NDArray[Any]:
        """The array, with `n` columns at least (their contents are left over from earlier calls)."""
        a = self.array
        if a.shape[1] < n:
            a = self.array = np.empty((a.shape[0], max(n, 2 * a.shape[1])), dtype=a.dtype)
        return a


class SlotArrays:
    """Per-slot state of one rule: named numpy arrays that grow with the slot table.

    The arrays of one dtype are the rows of one 2-d array (`rows_of`), in the order given: a kernel takes
    them as one argument (numba unboxes every array argument, ~0.1 us each). `row[name]` is the row of each
    array in its dtype's; `matrices` holds the 2-d arrays in the order their dtypes first appear.
    """

    def __init__(self, **fills: tuple[float | int | bool, Any]) -> None:
        by_dtype: dict[np.dtype[Any], list[str]] = {}
        for name, (_, dtype) in fills.items():
            by_dtype.setdefault(np.dtype(dtype), []).append(name)
        # (dtype, names, fill per row) of each dtype
        self._groups = [(dt, names, np.array([fills[n][0] for n in names], dtype=dt)) for dt, names in by_dtype.items()]
        self.row = {name: k for _, names, _ in self._groups for k, name in enumerate(names)}
        self.capacity = 0
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        self._matrix_of: dict[str, npt.NDArray[Any]] = {}
        # for reset: (array, fill per row) of the dtypes with many arrays, (array, fill) of the others' arrays
        self._columns: list[tuple[npt.NDArray[Any], npt.NDArray[Any]]] = []
        self._scalars: list[tuple[npt.NDArray[Any], Any]] = []
        self.ensure(64)

    def ensure(self, capacity: int) -> None:
        if capacity <= self.capacity:
            return
        columns: list[tuple[npt.NDArray[Any], npt.NDArray[Any]]] = []
        scalars: list[tuple[npt.NDArray[Any], Any]] = []
        for dt, names, fill in self._groups:
            m = np.empty((len(names), capacity), dtype=dt)
            m[:] = fill[:, None]
            if self.capacity:
                m[:, : self.capacity] = self._matrix_of[names[0]]
            for k, name in enumerate(names):
                self._matrix_of[name] = m
                self.arrays[name] = m[k]
                setattr(self, name, m[k])
            # a store of one column costs about as much as four scalar stores
            if len(names) > 4:
                columns.append((m, fill))
            else:
                scalars.extend(zip(m, fill.tolist(), strict=True))
        self.capacity = capacity
        self._columns, self._scalars = columns, scalars
        self.matrices = tuple(self._matrix_of[names[0]] for _, names, _ in self._groups)

    def rows_of(self, name: str) -> npt.NDArray[Any]:
        """The 2-d array whose row `row[name]` is the array `name` (all arrays of its dtype)."""
        return self._matrix_of[name]

    def expect_rows(self, *matrices: str, **rows: int) -> None:
        """Check that the arrays are the rows a kernel reads them from (`name=row`), and that `matrices`
        holds the arrays named in `matrices` in that order (one name per 2-d array)."""
        wrong = {name: self.row.get(name) for name, k in rows.items() if self.row.get(name) != k}
        if wrong:
            raise ValueError(f"slot arrays in other rows than the kernel reads: {wrong} (expected {rows})")
        given = [self._matrix_of.get(name) for name in matrices]
        if matrices and (len(given) != len(self.matrices) or any(a is not b for a, b in zip(given, self.matrices))):
            raise ValueError(f"slot arrays in another order than the kernel reads: {matrices}")

    def reset(self, slots: list[int]) -> None:
        # every rule resets the slots allocated in a frame, often one or two: stores per slot cost a tenth
        # of a fancy-indexed store
        if not slots:
            return
        if len(slots) <= 8:
            for slot in slots:
                for m, fill in self._columns:
                    m[:, slot] = fill
                for arr, value in self._scalars:
                    arr[slot] = value
            return
        idx = np.asarray(slots, dtype=np.intp)
        for m, fill in self._columns:
            m[:, idx] = fill[:, None]
        for arr, value in self._scalars:
            arr[idx] = value

    def __getattr__(self, name: str) -> Any:  # only reached for arrays (set with setattr above)
        raise AttributeError(name)


class Rule:
    """Base of every rule type: subclasses set `Params`, `default_classes`, their traits and `step`.

    The traits are what the rest of the server asks of a rule type instead of its name: the
    console, the evidence snapshots and the signal API read them through the registry.
    """

    type_name: ClassVar[str] = ""  # set by `register_rule`
    Params: ClassVar[type[BaseModel]]
    default_classes: ClassVar[tuple[str, ...]] = ()
    severity: ClassVar[Severity] = Severity.INFO  # of its events, unless `emit` is told otherwise
    # kinds that are alerts: subject to the rule's cooldown, and given a snapshot
    alert_kinds: ClassVar[frozenset[str]] = frozenset()
    # it adds crossings to the camera's 1-minute counts (the engine hands it the aggregator)
    produces_counts: ClassVar[bool] = False
    # it can take signal states pushed from outside (`set_signal`; see `takes_signals`)
    accepts_signals: ClassVar[bool] = False
    # False: its routine (INFO) events are statistics, not register entries, and get no snapshot
    renders_evidence: ClassVar[bool] = True
    # second-stage model roles its tracks need (e.g. "pose"): the pipeline runs those models
    # only on cameras with such a rule
    model_roles: ClassVar[frozenset[str]] = frozenset()
    # it reads the picture (`FrameView.image`: a signal head's lamp, flames): the pipeline then
    # converts each analysed frame at full size, which it otherwise does only for what operators see
    reads_pixels: ClassVar[bool] = False
    # the colour the console draws its geometry in
    colour: ClassVar[str] = "#e2e8f0"

    def __init__(
        self, spec: RuleSpec, vocab: ClassVocab | None = None, *, counts: CountAggregator | None = None
    ) -> None:
        """`counts`: the camera's count aggregator, which rules that produce counts add to (one of
        their own when run alone)."""
        self.spec = spec
        self.counts = counts if counts is not None else CountAggregator(spec.camera_id)
        self.params: Any = spec.parsed_params()
        self.vocab = vocab or ClassVocab()
        self.classes = frozenset(spec.effective_classes())
        self._table: BoolArray = self.vocab.table(self.classes)
        self._selection = self.vocab.selection_key(self.classes, spec.min_confidence)  # its FrameView.masks key
        self._last_alert: dict[str, float] = {}
        self._tables: dict[frozenset[str], BoolArray] = {}
        self._standalone: SlotTable | None = None

    # ------------------------------------------------------------------ public protocol
    def update(self, frame: FrameTracks, t: float) -> list[RuleEvent]:
        """Run the rule alone on one frame (the engine shares one FrameView among rules instead)."""
        if self._standalone is None:
            self._standalone = SlotTable(self.vocab)
        if frame.t != t:
            frame = FrameTracks(frame.camera_id, t, frame.width, frame.height, frame.tracks, frame.detections,
                                frame.columns)
        return self.step(self._standalone.view(frame))

    def step(self, view: FrameView) -> list[RuleEvent]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget all per-object state (the rule was inactive for a while)."""

    @classmethod
    def takes_signals(cls, params: BaseModel) -> bool:
        """Whether a rule of this type with these (parsed) params takes pushed signal states."""
        return cls.accepts_signals

    def set_signal(self, state: SignalColour, t: float) -> None:
        """A signal state pushed from outside at time t (rules that accept signals override it)."""
        raise ValidationFailed(f"rule {self.spec.id!r} is a {self.type_name} rule, which takes no signal states")

    # ------------------------------------------------------------------ helpers
    def selected(self, view: FrameView) -> BoolArray:
        """Tracks of the rule's classes, above its confidence, detected in this frame."""
        key = self._selection
        mask = view.masks.get(key)
        if mask is None:  # rules with the same classes and confidence share it within a frame
            mask = view.masks[key] = np.empty(len(view.codes), dtype=bool)
            view.selected_n[id(mask)] = kernels.selection(self.own_table(), view.codes, view.conf,
                                                          self.spec.min_confidence, view.fresh, mask)
        return mask

    def own_table(self) -> BoolArray:
        """Boolean lookup by class code of the rule's classes, as long as the vocabulary (the engine may
        have coded classes new to it since)."""
        if len(self._table) < len(self.vocab.names):
            self._table = self.vocab.table(self.classes)
        return self._table

    def selected_of(self, view: FrameView, names: frozenset[str]) -> BoolArray:
        """`selected` for other classes: tracks of `names`, above the rule's confidence, detected now."""
        key = (names, self.spec.min_confidence)
        mask = view.masks.get(key)
        if mask is None:  # shared within a frame with the rules that select alike
            mask = view.masks[key] = np.empty(len(view.codes), dtype=bool)
            view.selected_n[id(mask)] = kernels.selection(self.class_table(names), view.codes, view.conf,
                                                          self.spec.min_confidence, view.fresh, mask)
        return mask

    def class_table(self, names: frozenset[str]) -> BoolArray:
        """Boolean lookup by class code for another set of classes (cached per vocabulary size)."""
        table = self._tables.get(names)
        if table is None or len(table) < len(self.vocab.names):
            table = self._tables[names] = self.vocab.table(names)
        return table

    def emit(
        self,
        out: list[RuleEvent],
        view: FrameView | None,
        t: float,
        kind: str,
        *,
        track_id: int | None = None,
        object_class: str | None = None,
        payload: dict[str, Any] | None = None,
        severity: Severity | None = None,
        camera_id: str | None = None,
    ) -> bool:
        """Append an event unless the rule's cooldown holds it back; returns whether it was emitted."""
        if kind in self.alert_kinds and self.spec.cooldown_s > 0:
            last = self._last_alert.get(kind)
            if last is not None and t - last < self.spec.cooldown_s:
                return False
            self._last_alert[kind] = t
        cam = camera_id or (view.camera_id if view is not None else self.spec.camera_id)
        out.append(
            RuleEvent(
                event_id=event_id(cam, self.spec.id, track_id, kind, t),
                camera_id=cam,
                t=t,
                rule_id=self.spec.id,
                rule_type=self.type_name,
                kind=kind,
                object_class=object_class,
                track_id=track_id,
                severity=severity or self.severity,
                payload=payload or {},
            )
        )
        return True


def track_payload(view: FrameView, i: int, **extra: Any) -> dict[str, Any]:
    """Where the object was (normalised ground point) plus rule-specific fields."""
    d: dict[str, Any] = {"x": round(float(view.gx[i]), 4), "y": round(float(view.gy[i]), 4)}
    d.update(extra)
    return d


RuleFactory = Callable[[RuleSpec, ClassVocab], Rule]
