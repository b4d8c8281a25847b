"""Compiled (numba) per-frame steps of rules whose state is per slot: one call per rule and frame
instead of a dozen small numpy operations on a few dozen tracks, whose call overhead made most of a
rule's time. Each performs the same IEEE operations, in the same order, as the numpy code it
replaced (the tests keep that code as their reference); cached on disk as smartcity.tracking.kernels.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# The frame's arrays as the kernels take them (FrameView.geo and FrameView.ints): rows of one array per
# dtype, so that a kernel call passes two arrays where it passed eight (numba unboxes every array argument,
# ~0.1 us each: a rule's glue cost more than its arithmetic)
GX, GY, BW, BH = 0, 1, 2, 3  # rows of geo (float64): ground point and box size, normalised
SLOT, CODE, TRACK_ID, HITS = 0, 1, 2, 3  # rows of ints (intp): slot, class code, track id, hits
# rows of the rules' per-slot state as kernels take it (SlotArrays.rows_of: the arrays of one dtype, in the
# order the rule declares them; the rules check theirs with SlotArrays.expect_rows)
# Crossings, float64: its last sighting, the crossing pending, the crossing behind a nearer object noted
PX, PY, PT, PEND_T, PEND_X, H_T, H_U, H_TID, H_CODE = range(9)
SIDE, PEND, HIDDEN = 0, 1, 2  # Crossings, int8
AX, AY, SINCE = 0, 1, 2  # an anchor (Stillness; wrong_way's has no SINCE), float64
ENTERED, LAST, WHO_X, WHO_Y = range(4)  # a ZoneStay with WHO, float64
WHO_ID, WHO_CODE = 0, 1  # a ZoneStay with WHO, intp
FLAG = 0  # a rule's one bool per slot (fired, mature)


@njit(cache=True, nogil=True)
def wrong_way_step(  # noqa: PLR0913 - one flat call: the frame's arrays, the rule's state and parameters
    sel: np.ndarray, zone: np.ndarray, geo: np.ndarray, ints: np.ndarray, anchor: np.ndarray, fired: np.ndarray,
    ux: float, uy: float, min_distance: float, min_age: int, cos_max: float, out: np.ndarray,
) -> int:
    """WrongWayRule's frame (see there): per slot, the anchor (rows AX, AY of `anchor`: the furthest point
    reached along the allowed direction `ux, uy` in the zone; NaN once out of it) and `fired` (row FLAG),
    updated in place. Writes the tracks (indices, in order) that moved back at least `min_distance` from
    their anchor, within `cos_max` of straight back, for the first time, and how far back each went, to
    the first columns of the rows of `out` (2, as long as the frame's tracks at least), and returns how
    many. `geo`, `ints`: the frame's rows (FrameView.geo, FrameView.ints)."""
    n = sel.shape[0]
    slots = ints[SLOT]
    ax, ay, done = anchor[AX], anchor[AY], fired[FLAG]
    for i in range(n):  # leaving the zone forgets the progress
        if sel[i] and not zone[i]:
            ax[slots[i]] = np.nan
    k = 0
    for i in range(n):
        if not (sel[i] and zone[i]):
            continue
        s = slots[i]
        x, y = geo[GX, i], geo[GY, i]
        a_x, a_y = ax[s], ay[s]
        dx = x - a_x
        dy = y - a_y
        ahead = dx * ux + dy * uy
        if math.isnan(a_x) or ahead > 0:
            ax[s], ay[s] = x, y
        # measured from the anchor before it moved: a track re-anchored now went forward (or had none)
        back = -ahead
        if back >= min_distance and not done[s] and ints[HITS, i] >= min_age and back >= cos_max * math.hypot(dx, dy):
            done[s] = True
            out[0, k] = i
            out[1, k] = back
            k += 1
    return k


@njit(cache=True, nogil=True)
def crossings_step(  # noqa: PLR0913 - one flat call: the frame's arrays, the line's state and parameters
    sel: np.ndarray, geo: np.ndarray, ints: np.ndarray, floats: np.ndarray, sides: np.ndarray, t: float,
    margin: float, min_age: int, line: np.ndarray, out: np.ndarray, table: np.ndarray, min_conf: float,
    conf: np.ndarray, fresh: np.ndarray, max_lost_s: float, min_covered: float,
) -> int:
    """Crossings.step's frame (see there) for the selected tracks (`sel`, in order; `geo`, `ints`: the
    frame's rows, FrameView.geo and FrameView.ints): updates the per-slot state (`floats` rows PX ...
    PEND_X, `sides` rows SIDE and PEND) in place and writes the crossings confirmed now as (track index,
    direction +1/-1, crossing time, fraction along the line) to the first columns of the rows of `out`
    (4, as long as the frame's tracks at least); returns how many. `line`: ax, ay, bx, by, nx, ny (the unit
    normal), the band `h`, the share of the box's extent across the line the band spans at least (0:
    none), |nx| and |ny|.

    With `max_lost_s` > 0, crossings behind nearer objects are noted (rows HIDDEN of `sides`: the
    direction; H_T ... H_CODE of `floats`: when, where along the line, the track id and class code): a
    track of the classes in `table` (by class code) with a confidence of at least `min_conf`, not
    detected now (`fresh`), lost for at most `max_lost_s` since its slot's last sighting, seen at least
    twice and `min_age` times, whose predicted ground point is clearly across the line (past the band,
    within the margin) while tracks detected now nearer the camera cover at least `min_covered` of its
    predicted box. A slot detected now drops its note (the loop above counted it if it came out across;
    it did not cross if it came out on its own side)."""
    n = sel.shape[0]
    px, py, pt, pend_t, pend_x = floats[PX], floats[PY], floats[PT], floats[PEND_T], floats[PEND_X]
    side, pend = sides[SIDE], sides[PEND]
    k_out = 0
    for i in range(n):
        if not sel[i]:
            if max_lost_s > 0.0:
                _note_hidden(i, geo, ints, floats, sides, t, margin, min_age, line, table, min_conf, conf, fresh,
                             max_lost_s, min_covered)
            continue
        slot = ints[SLOT, i]
        if max_lost_s > 0.0:
            sides[HIDDEN, slot] = 0
        x, y = geo[GX, i], geo[GY, i]
        d, nk = _side(geo, i, line)
        prev = side[slot]
        if prev == 0:  # first seen (or inside the band so far): the side its ground point is on
            prev = np.int8(np.sign(d))
        flip = nk * prev < 0
        if flip or pend[slot] != 0:
            if flip:
                u, f = _along(px[slot], py[slot], x, y, line)
                if -margin <= u <= 1.0 + margin:
                    if pend[slot] == -nk:  # went back before maturing: a flicker
                        pend[slot] = 0
                    else:
                        # when it crossed: interpolated between the last sighting and now
                        t0 = pt[slot]
                        pend[slot] = nk
                        pend_t[slot] = t if math.isnan(t0) else t0 + min(1.0, max(0.0, f)) * (t - t0)
                        pend_x[slot] = u
            if pend[slot] != 0 and ints[HITS, i] >= min_age and (nk == 0 or nk == pend[slot]):
                out[0, k_out] = i
                out[1, k_out] = pend[slot]
                out[2, k_out] = pend_t[slot]
                out[3, k_out] = pend_x[slot]
                k_out += 1
                pend[slot] = 0
        side[slot] = nk if nk != 0 else prev
        px[slot] = x
        py[slot] = y
        pt[slot] = t
    return k_out


@njit(cache=True, nogil=True, inline="always")
def _side(geo: np.ndarray, i: int, line: np.ndarray) -> tuple[float, np.int8]:
    """Track i's ground point against crossings_step's `line`: its signed distance, and its side with
    the hysteresis band (+1, -1, or 0 inside it: the band is `h`, or `share` of the box's extent across
    the line where that is wider)."""
    d: float = (geo[GX, i] - line[0]) * line[4] + (geo[GY, i] - line[1]) * line[5]
    h, share = line[6], line[7]
    band = max(h, share * (line[8] * geo[BW, i] + line[9] * geo[BH, i])) if share > 0 else h
    return d, np.int8(d > band) - np.int8(d < -band)


@njit(cache=True, nogil=True, inline="always")
def _note_hidden(  # noqa: PLR0913 - crossings_step's state and parameters
    i: int, geo: np.ndarray, ints: np.ndarray, floats: np.ndarray, sides: np.ndarray, t: float, margin: float,
    min_age: int, line: np.ndarray, table: np.ndarray, min_conf: float, conf: np.ndarray, fresh: np.ndarray,
    max_lost_s: float, min_covered: float,
) -> None:
    """crossings_step for a track it does not count (see there): a note of its crossing behind nearer
    objects, or the note of its slot dropped if it was detected now."""
    slot = ints[SLOT, i]
    if fresh[i]:  # detected, not selected (its score or class this frame): its slot is not hidden
        sides[HIDDEN, slot] = 0
        return
    pt = floats[PT, slot]
    prev = sides[SIDE, slot]
    if sides[HIDDEN, slot] != 0 or prev == 0 or math.isnan(pt) or t - pt > max_lost_s:
        return
    if ints[HITS, i] < max(2, min_age) or not table[ints[CODE, i]] or conf[i] < min_conf:
        return
    nk = _side(geo, i, line)[1]
    if nk * prev >= 0:
        return
    u, f = _along(floats[PX, slot], floats[PY, slot], geo[GX, i], geo[GY, i], line)
    if not -margin <= u <= 1.0 + margin or _covered_by_nearer(i, geo, fresh) < min_covered:
        return
    sides[HIDDEN, slot] = nk
    floats[H_T, slot] = pt + min(1.0, max(0.0, f)) * (t - pt)
    floats[H_U, slot] = u
    floats[H_TID, slot] = ints[TRACK_ID, i]
    floats[H_CODE, slot] = ints[CODE, i]


@njit(cache=True, nogil=True)
def _covered_by_nearer(i: int, geo: np.ndarray, fresh: np.ndarray) -> float:
    """Share of track i's box covered by the boxes of tracks detected now whose ground point is lower in
    the picture (nearer the camera, so in front of it); overlaps between those boxes count twice, capped
    at 1."""
    w, hh = geo[BW, i], geo[BH, i]
    area = w * hh
    if area <= 0.0:
        return 0.0
    x1, x2, y1, y2 = geo[GX, i] - 0.5 * w, geo[GX, i] + 0.5 * w, geo[GY, i] - hh, geo[GY, i]
    covered = 0.0
    for j in range(geo.shape[1]):
        if j == i or not fresh[j] or geo[GY, j] <= y2:
            continue
        ow = min(x2, geo[GX, j] + 0.5 * geo[BW, j]) - max(x1, geo[GX, j] - 0.5 * geo[BW, j])
        oh = min(y2, geo[GY, j]) - max(y1, geo[GY, j] - geo[BH, j])
        if ow > 0.0 and oh > 0.0:
            covered += ow * oh
    share: float = min(1.0, covered / area)
    return share


@njit(cache=True, nogil=True)
def _along(x0: float, y0: float, x1: float, y1: float, line: np.ndarray) -> tuple[float, float]:
    """Where the move (x0, y0) -> (x1, y1) meets the line: (fraction along the line, fraction of the
    move); from an unknown start (NaN), where (x1, y1) projects onto the line, and 1."""
    if math.isnan(x0):
        return _projection(x1, y1, line), 1.0
    d0 = (x0 - line[0]) * line[4] + (y0 - line[1]) * line[5]
    d1 = (x1 - line[0]) * line[4] + (y1 - line[1]) * line[5]
    f = d0 / (d0 - d1) if d0 != d1 else 0.5
    return _projection(x0 + f * (x1 - x0), y0 + f * (y1 - y0), line), f


@njit(cache=True, nogil=True, inline="always")
def _projection(x: float, y: float, line: np.ndarray) -> float:
    """Line.along: the projection of a point onto the line as a fraction of its length (0 at a, 1 at b)."""
    dx, dy = line[2] - line[0], line[3] - line[1]
    u: float = ((x - line[0]) * dx + (y - line[1]) * dy) / (dx * dx + dy * dy)
    return u


@njit(cache=True, nogil=True, inline="always")
def _stays_ended(
    sel: np.ndarray, zone: np.ndarray, slots: np.ndarray, entered: np.ndarray, last: np.ndarray, t: float,
    exit_grace_s: float, gone: np.ndarray,
) -> int:
    """zone_stay_step's first part: the slots of selected tracks outside the zone whose stay ended
    (unseen inside for `exit_grace_s`), written to `gone`; returns how many."""
    n_gone = 0
    for i in range(sel.shape[0]):
        if sel[i] and not zone[i]:
            s = slots[i]
            if not math.isnan(entered[s]) and t - last[s] >= exit_grace_s:
                gone[n_gone] = s
                n_gone += 1
    return n_gone


@njit(cache=True, nogil=True)
def zone_stay_step(
    sel: np.ndarray, zone: np.ndarray, slots: np.ndarray, entered: np.ndarray, last: np.ndarray, t: float,
    exit_grace_s: float, gone: np.ndarray, idx: np.ndarray, inside: np.ndarray, started: np.ndarray,
) -> tuple[int, int]:
    """ZoneStay.step's frame (see there): the per-slot `entered` and `last` (seen inside) updated in place.
    Writes the slots of selected tracks outside the zone whose stay ended (unseen inside for
    `exit_grace_s`) to `gone`, and the selected tracks inside (indices, in order), their slots and which
    of them entered now to `idx`, `inside` and `started` (each as long as the frame's tracks at least);
    returns how many are gone and how many inside."""
    n = sel.shape[0]
    n_gone = _stays_ended(sel, zone, slots, entered, last, t, exit_grace_s, gone)
    k = 0
    for i in range(n):
        if sel[i] and zone[i]:
            idx[k] = i
            inside[k] = slots[i]
            started[k] = math.isnan(entered[slots[i]])
            k += 1
    for j in range(k):
        if started[j]:
            entered[inside[j]] = t
    for j in range(k):
        last[inside[j]] = t
    return n_gone, k


@njit(cache=True, nogil=True)
def stillness_update(
    idx: np.ndarray, slots: np.ndarray, gx: np.ndarray, gy: np.ndarray, ax: np.ndarray, ay: np.ndarray,
    since: np.ndarray, t: float, aspect: float, radius: np.ndarray, keep: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Stillness.update (see there) for tracks `idx`: the per-slot anchors `ax, ay, since` updated in
    place. `radius`: one per track, or one for all (shape (1,)); `keep`: per track, or empty for none.
    Returns which tracks were (re-)anchored now and how long each has been still."""
    n = idx.shape[0]
    moved = np.empty(n, dtype=np.bool_)
    s = slots[idx]
    one_radius = radius.shape[0] == 1
    with_keep = keep.shape[0] == n and n > 0
    for k in range(n):
        a_x = ax[s[k]]
        far = math.hypot(gx[idx[k]] - a_x, (gy[idx[k]] - ay[s[k]]) * aspect) > radius[0 if one_radius else k]
        if with_keep:
            far = far and not keep[k]
        moved[k] = math.isnan(a_x) or far
    for k in range(n):
        if moved[k]:
            ax[s[k]] = gx[idx[k]]
    for k in range(n):
        if moved[k]:
            ay[s[k]] = gy[idx[k]]
    for k in range(n):
        if moved[k]:
            since[s[k]] = t
    still = np.empty(n)
    for k in range(n):
        still[k] = t - since[s[k]]
    return moved, still


@njit(cache=True, nogil=True)
def still_in_zone(
    sel: np.ndarray, zone: np.ndarray, geo: np.ndarray, ints: np.ndarray, anchor: np.ndarray, t: float, aspect: float,
    radius: float, min_still: float, out: np.ndarray,
) -> int:
    """stillness_update (one radius for all, no anchor kept; `anchor`: rows AX, AY, SINCE) for the selected
    tracks (`sel`) that are in the zone (`zone` per track; `geo`, `ints`: the frame's rows). Writes those
    still for `min_still` s at least (track indices, in order) and how long each has been still to the
    first columns of the rows of `out` (2, as long as the frame's tracks at least); returns how many."""
    ax, ay, since = anchor[AX], anchor[AY], anchor[SINCE]
    m = 0
    for i in range(sel.shape[0]):
        if not (sel[i] and zone[i]):
            continue
        s = ints[SLOT, i]
        a_x = ax[s]
        x, y = geo[GX, i], geo[GY, i]
        if math.isnan(a_x) or math.hypot(x - a_x, (y - ay[s]) * aspect) > radius:
            ax[s] = x
            ay[s] = y
            since[s] = t
        still = t - since[s]
        if still >= min_still:
            out[0, m] = i
            out[1, m] = still
            m += 1
    return m


@njit(cache=True, nogil=True, inline="always")
def _stay_on(entered: np.ndarray, last: np.ndarray, s: int, t: float) -> None:
    """The stay in slot `s` goes on at `t` (it starts if there was none)."""
    if math.isnan(entered[s]):
        entered[s] = t
    last[s] = t


@njit(cache=True, nogil=True, inline="always")
def _note(floats: np.ndarray, ids: np.ndarray, s: int, ints: np.ndarray, i: int, x: float, y: float) -> None:
    """Slot `s` notes who track `i` is (its track id and class code in `ints`, to rows WHO_ID and WHO_CODE
    of `ids`) and where (x, y, to rows WHO_X and WHO_Y of `floats`)."""
    ids[WHO_ID, s] = ints[TRACK_ID, i]
    ids[WHO_CODE, s] = ints[CODE, i]
    floats[WHO_X, s] = x
    floats[WHO_Y, s] = y


@njit(cache=True, nogil=True)
def dwell_step(  # noqa: PLR0913 - one flat call: the frame's arrays, the rule's state and parameters
    sel: np.ndarray, zone: np.ndarray, geo: np.ndarray, ints: np.ndarray, floats: np.ndarray, ids: np.ndarray,
    fired: np.ndarray, anchor: np.ndarray, t: float, exit_grace_s: float, aspect: float, still_radius: float,
    threshold: float, min_age: int, out: np.ndarray,
) -> tuple[int, int]:
    """DwellRule's frame with a still radius (see there): zone_stay_step's stays (rows ENTERED, LAST of
    `floats`; the slots whose stay ended to row 0 of `out`), then for the selected tracks in the zone, in
    order, the anchors (`anchor` rows AX, AY, SINCE: stillness_update, a radius of `still_radius` box
    widths, boxes narrower than 1e-3 counted as that; slots that fired, row FLAG of `fired`, keep theirs).
    The tracks due (still for `threshold` s, `min_age` hits, not fired yet) or anchored now note who they
    are (WHO rows of `floats` and `ids`). Writes the tracks due (indices) to row 1 of `out` (2, as long as
    the frame's tracks at least) and returns how many are gone and how many due (`geo`, `ints`: the
    frame's rows).

    Tracks of one frame have distinct slots (SlotTable.view), so each track's stay and anchor are
    updated in turn where the separate kernels updated all stays, then all anchors."""
    slots = ints[SLOT]
    entered, last, done = floats[ENTERED], floats[LAST], fired[FLAG]
    ax, ay, since = anchor[AX], anchor[AY], anchor[SINCE]
    n_gone = _stays_ended(sel, zone, slots, entered, last, t, exit_grace_s, out[0])
    due = out[1]
    m = 0
    for i in range(sel.shape[0]):
        if not (sel[i] and zone[i]):
            continue
        s = slots[i]
        _stay_on(entered, last, s, t)
        b = geo[BW, i]
        radius = still_radius * (b if (b >= 1e-3 or b != b) else 1e-3)  # np.maximum: NaN stays NaN
        x, y = geo[GX, i], geo[GY, i]
        a_x = ax[s]
        far = math.hypot(x - a_x, (y - ay[s]) * aspect) > radius and not done[s]
        moved = math.isnan(a_x) or far
        if moved:
            ax[s] = x
            ay[s] = y
            since[s] = t
        is_due = not done[s] and t - since[s] >= threshold and ints[HITS, i] >= min_age
        if is_due or moved:
            _note(floats, ids, s, ints, i, x, y)
        if is_due:
            due[m] = i
            m += 1
    return n_gone, m


@njit(cache=True, nogil=True)
def zone_passage_step(  # noqa: PLR0913 - one flat call: the frame's arrays, the rule's state and parameters
    sel: np.ndarray, zone: np.ndarray, geo: np.ndarray, ints: np.ndarray, floats: np.ndarray, ids: np.ndarray,
    mature: np.ndarray, t: float, exit_grace_s: float, min_age: int, gone: np.ndarray,
) -> int:
    """ZonePassageRule's frame: zone_stay_step's stays (rows ENTERED, LAST of `floats`; the slots whose stay
    ended to `gone`, as long as the frame's tracks at least), then the slots of the selected tracks in the
    zone become mature (row FLAG of `mature`) once a track has `min_age` hits and note who is there (WHO
    rows of `floats` and `ids`, as last seen inside). Returns how many stays ended (`geo`, `ints`: the
    frame's rows)."""
    slots = ints[SLOT]
    entered, last, ripe = floats[ENTERED], floats[LAST], mature[FLAG]
    n_gone = _stays_ended(sel, zone, slots, entered, last, t, exit_grace_s, gone)
    for i in range(sel.shape[0]):
        if not (sel[i] and zone[i]):
            continue
        s = slots[i]
        _stay_on(entered, last, s, t)
        if ints[HITS, i] >= min_age:
            ripe[s] = True
        _note(floats, ids, s, ints, i, geo[GX, i], geo[GY, i])
    return n_gone


@njit(cache=True, nogil=True)
def selection(
    table: np.ndarray, codes: np.ndarray, conf: np.ndarray, min_conf: float, fresh: np.ndarray, out: np.ndarray,
) -> int:
    """Rule.selected's mask, written to `out`: tracks of the classes in `table` (by class code), with a
    confidence of at least `min_conf`, detected in this frame (`fresh`); returns how many. (Filled in
    place: a kernel that returns a new array boxes it, which costs more than the loop.)"""
    k = 0
    for i in range(codes.shape[0]):
        yes = table[codes[i]] and conf[i] >= min_conf and fresh[i]
        out[i] = yes
        k += yes
    return k


@njit(cache=True, nogil=True)
def count_selected(
    table: np.ndarray, codes: np.ndarray, conf: np.ndarray, min_conf: float, confirmed: np.ndarray, zone: np.ndarray,
) -> int:
    """How many confirmed tracks of the classes in `table` (by class code) have a confidence of at least
    `min_conf` and are in the zone (`zone` per track; empty: wherever they are)."""
    anywhere = zone.shape[0] == 0
    n = 0
    for i in range(codes.shape[0]):
        if table[codes[i]] and conf[i] >= min_conf and confirmed[i] and (anywhere or zone[i]):
            n += 1
    return n


# rows of SlotTable.state (float64, one column per slot)
LAST_T, X, Y, VX, VY, SBW, SBH, FIRST_SEEN = range(8)


@njit(cache=True, nogil=True)
def frame_ground(
    box: np.ndarray, half_w: float, inv_w: float, inv_h: float, slots: np.ndarray, fresh: np.ndarray, t: float,
    last_t: np.ndarray, work: np.ndarray,
) -> int:
    """SlotTable.view's first step, written to the rows of `work` (7, n): the tracks' (rows of `box`: x1, y1,
    x2, y2) ground points and box sizes normalised, (x1 + x2) * half_w, y2 * inv_h, (x2 - x1) * inv_w,
    (y2 - y1) * inv_h (rows 0 to 3); for the tracks detected in this frame (`fresh`, in order; the first
    places of rows 4 to 6), the time since their slot was last seen (1.0 where unknown or not positive),
    whether it is known (> 1e-6 s; 1.0 or 0.0), and minus that time over 0.7 s, whose exp smooths their
    velocity. Returns how many tracks are fresh."""
    n = slots.shape[0]
    for i in range(n):
        x1, y1, x2, y2 = box[i, 0], box[i, 1], box[i, 2], box[i, 3]
        work[0, i] = (x1 + x2) * half_w
        work[1, i] = y2 * inv_h
        work[2, i] = (x2 - x1) * inv_w
        work[3, i] = (y2 - y1) * inv_h
    k = 0
    for i in range(n):
        if fresh[i]:
            dt = t - last_t[slots[i]]
            good = math.isfinite(dt) and dt > 1e-6
            safe = dt if good else 1.0
            work[4, k] = safe
            work[5, k] = 1.0 if good else 0.0
            work[6, k] = -safe / 0.7
            k += 1
    return k


@njit(cache=True, nogil=True)
def slot_motion(
    ints: np.ndarray, fresh: np.ndarray, work: np.ndarray, hits_in: np.ndarray, confirmed: np.ndarray, t: float,
    decay: np.ndarray, state: np.ndarray, seen: np.ndarray, code: np.ndarray,
) -> None:
    """SlotTable.view's second step: the slots (`ints`' SLOT row) of tracks detected in this frame (`fresh`;
    in order, their gaps in rows 4 and 5 of `work` from frame_ground and `decay` the exp of its row 6) move
    to their ground point (`work`'s rows 0 to 3), their velocity smoothed by a = 1 - decay (0 where the gap
    is unknown) towards the one the move implies, and count one more sighting; every slot takes its track's
    class code (the CODE row). Writes the tracks' hits (at least their slot's sightings) to the HITS row;
    `confirmed` gains those seen three times (in place). `state`: SlotTable.state (rows LAST_T ... SBH)."""
    slots = ints[SLOT]
    k = 0
    for i in range(slots.shape[0]):
        if fresh[i]:
            s = slots[i]
            dt = work[4, k]
            a = 1.0 - decay[k] if work[5, k] != 0.0 else 0.0
            old_vx, old_vy = state[VX, s], state[VY, s]
            gx, gy = work[0, i], work[1, i]
            state[VX, s] = old_vx + a * ((gx - state[X, s]) / dt - old_vx)
            state[VY, s] = old_vy + a * ((gy - state[Y, s]) / dt - old_vy)
            state[X, s] = gx
            state[Y, s] = gy
            state[SBW, s] = work[2, i]
            state[SBH, s] = work[3, i]
            state[LAST_T, s] = t
            seen[s] += 1
            k += 1
    for i in range(slots.shape[0]):
        s = slots[i]
        code[s] = ints[CODE, i]
        n_seen = seen[s]
        ints[HITS, i] = max(hits_in[i], n_seen)
        if n_seen >= 3:
            confirmed[i] = True


@njit(cache=True, nogil=True)
def all_halfplanes(dots: np.ndarray, offsets: np.ndarray, starts: np.ndarray, out: np.ndarray) -> None:
    """PolygonSet.contains_xy's test after its matrix product: for each polygon (whose half-planes are the
    rows of `dots` from `starts[k]` to the next start) and point (column), whether every dot >= its
    offset (`offsets`: (rows, 1)), written to `out` (polygons, points). Row by row over all points (a
    loop the compiler vectorises) rather than point by point with an early exit."""
    n_poly, n_rows, n = starts.shape[0], dots.shape[0], dots.shape[1]
    for k in range(n_poly):
        lo = starts[k]
        hi = starts[k + 1] if k + 1 < n_poly else n_rows
        inside = out[k]
        for i in range(n):
            inside[i] = True
        for j in range(lo, hi):
            offset = offsets[j, 0]
            dot = dots[j]
            for i in range(n):
                inside[i] &= dot[i] >= offset


@njit(cache=True, nogil=True)
def relink_candidates(  # noqa: PLR0913 - one flat call: the new track, the slot table's arrays and parameters
    cands: np.ndarray, code: int, x: float, y: float, t: float, state: np.ndarray, codes: np.ndarray,
    seen: np.ndarray, max_gap_s: float, radius: float, radius_per_travel: float,
) -> int:
    """SlotTable._relink's candidates (slots) that it may pick for a new track of class `code` at ground
    point (x, y) at `t`, moved to the front of `cands` in their order; returns how many. The same tests
    as there on class, sightings and gap, and a distance test that can only keep more (hypot's bounds:
    at least each coordinate's magnitude, at most their sum): _relink's own arithmetic then decides,
    bit for bit as before."""
    k = 0
    for j in range(cands.shape[0]):
        s = cands[j]
        last_t = state[LAST_T, s]
        if codes[s] != code or not math.isfinite(last_t) or seen[s] < 2:
            continue
        gap = t - last_t
        if gap <= 0 or gap > max_gap_s:
            continue
        tx, ty = state[VX, s] * gap, state[VY, s] * gap
        # _relink's limit, min(radius, ...) + radius_per_travel * hypot(tx, ty), is at most this
        limit_bound = radius + radius_per_travel * ((abs(tx) + abs(ty)) * (1.0 + 1e-9))
        # and its distance, hypot(dx, dy), at least |dx| and at least |dy| (NaN: kept, _relink decides)
        if abs(state[X, s] + tx - x) > limit_bound or abs(state[Y, s] + ty - y) > limit_bound:
            continue
        cands[k] = s
        k += 1
    return k


def warm_up() -> None:
    """Compile every kernel of this module for the argument types the rules pass (and store them in
    numba's cache): see smartcity.tracking.kernels.warm_up."""
    b, i, f = np.zeros(2, dtype=np.bool_), np.zeros(2, dtype=np.intp), np.zeros(2)
    work = np.zeros((7, 2))
    geo, ints = work[:4], np.zeros((4, 2), dtype=np.intp)  # FrameView.geo (rows of the view's work) and .ints
    flags = np.zeros((1, 2), dtype=np.bool_)
    wrong_way_step(b, b, geo, ints, np.zeros((2, 2)), flags, 1.0, 0.0, 0.1, 3, 0.5, np.zeros((2, 2)))
    for conf in (f, np.zeros((2, 2))[:, 0]):  # the tracker's scores, or read off Track objects
        crossings_step(b, geo, ints, np.zeros((9, 2)), np.zeros((3, 2), dtype=np.int8), 0.0, 0.0, 2, np.zeros(10),
                       np.zeros((4, 2)), b, 0.5, conf, b, 0.6, 0.5)
    zone_stay_step(b, b, i, f.copy(), f.copy(), 0.0, 1.5, i.copy(), i.copy(), i.copy(), b.copy())
    stillness_update(i, i, f, f, f.copy(), f.copy(), f.copy(), 0.0, 1.0, np.ones(1), np.zeros(0, dtype=np.bool_))
    stays, who_ids = np.zeros((4, 2)), np.zeros((2, 2), dtype=np.intp)  # a ZoneStay with WHO
    dwell_step(b, b, geo, ints, stays, who_ids, flags, np.zeros((3, 2)), 0.0, 1.5, 1.0, 0.5, 30.0, 3,
               np.zeros((2, 2), dtype=np.intp))
    zone_passage_step(b, b, geo, ints, stays, who_ids, flags, 0.0, 1.0, 2, i.copy())
    still_in_zone(b, b, geo, ints, np.zeros((3, 2)), 0.0, 1.0, 0.03, 5.0, np.zeros((2, 2)))
    strided = np.zeros((2, 2))[:, 0]  # a column of the rows read off Track objects (no tracker columns)
    for conf in (f, strided):
        count_selected(b, i, conf, 0.5, b, b)
        selection(b, ints[CODE], conf, 0.5, b, b.copy())
    all_halfplanes(np.zeros((2, 2)), np.zeros((2, 1)), np.zeros(1, dtype=np.intp), np.zeros((1, 2), dtype=np.bool_))
    state = np.zeros((8, 2))
    for box in (np.zeros((2, 4)), np.zeros((2, 8))[:, :4]):  # the tracker's boxes, or read off Track objects
        frame_ground(box, 0.5, 1.0, 1.0, ints[SLOT], b, 0.0, state[LAST_T], work)
    slot_motion(ints, b, work, i, b.copy(), 0.0, f, state, i.copy(), i.copy())
    relink_candidates(i.copy(), 0, 0.5, 0.5, 1.0, state, i, i, 6.0, 0.05, 0.25)
