"""Compiled (numba) per-frame steps of rules whose state is per slot: one call per rule and frame
instead of a dozen small numpy operations on a few dozen tracks, whose call overhead made most of a
rule's time. Each performs the same IEEE operations, in the same order, as the numpy code it
replaced (the tests keep that code as their reference); cached on disk as smartcity.tracking.kernels.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def wrong_way_step(  # noqa: PLR0913 - one flat call: the frame's arrays, the rule's state and parameters
    sel: np.ndarray, zone: np.ndarray, slots: np.ndarray, gx: np.ndarray, gy: np.ndarray, hits: np.ndarray,
    ax: np.ndarray, ay: np.ndarray, fired: np.ndarray, ux: float, uy: float, min_distance: float, min_age: int,
    cos_max: float, out_i: np.ndarray, out_back: np.ndarray,
) -> int:
    """WrongWayRule's frame (see there): per slot, the anchor `ax, ay` (the furthest point reached along
    the allowed direction `ux, uy` in the zone; NaN once out of it) and `fired`, updated in place.
    Writes the tracks (indices, in order) that moved back at least `min_distance` from their anchor,
    within `cos_max` of straight back, for the first time, and how far back each went, to the first
    places of `out_i` and `out_back` (as long as the frame's tracks at least), and returns how many."""
    n = sel.shape[0]
    for i in range(n):  # leaving the zone forgets the progress
        if sel[i] and not zone[i]:
            ax[slots[i]] = np.nan
    k = 0
    for i in range(n):
        if not (sel[i] and zone[i]):
            continue
        s = slots[i]
        x, y = gx[i], gy[i]
        a_x, a_y = ax[s], ay[s]
        dx = x - a_x
        dy = y - a_y
        ahead = dx * ux + dy * uy
        if math.isnan(a_x) or ahead > 0:
            ax[s], ay[s] = x, y
        # measured from the anchor before it moved: a track re-anchored now went forward (or had none)
        back = -ahead
        if back >= min_distance and not fired[s] and hits[i] >= min_age and back >= cos_max * math.hypot(dx, dy):
            fired[s] = True
            out_i[k] = i
            out_back[k] = back
            k += 1
    return k


@njit(cache=True, nogil=True)
def crossings_step(  # noqa: PLR0913 - one flat call: the frame's arrays, the line's state and parameters
    idx: np.ndarray, slots: np.ndarray, gx: np.ndarray, gy: np.ndarray, bw: np.ndarray, bh: np.ndarray,
    hits: np.ndarray, side: np.ndarray, px: np.ndarray, py: np.ndarray, pt: np.ndarray, pend: np.ndarray,
    pend_t: np.ndarray, pend_x: np.ndarray, t: float, margin: float, min_age: int, line: np.ndarray,
    out_i: np.ndarray, out_dir: np.ndarray, out_t: np.ndarray, out_u: np.ndarray,
) -> int:
    """Crossings.step's frame (see there) for the selected tracks `idx` (indices into the frame's ground
    points `gx, gy` and normalised box sizes `bw, bh`; `slots` theirs): updates the per-slot state in
    place and writes the crossings confirmed now as (track index, direction +1/-1, crossing time,
    fraction along the line) to the first places of `out_i, out_dir, out_t, out_u` (as long as `idx` at
    least); returns how many. `line`: ax, ay, bx, by, nx, ny (the unit normal), the band `h`, the share
    of the box's extent across the line the band spans at least (0: none), |nx| and |ny|."""
    n = idx.shape[0]
    h, share, ex, ey = line[6], line[7], line[8], line[9]
    k_out = 0
    for k in range(n):
        i, slot = idx[k], slots[k]
        # signed distance, and the side with the hysteresis band (+1, -1, or 0 inside it)
        d = (gx[i] - line[0]) * line[4] + (gy[i] - line[1]) * line[5]
        band = max(h, share * (ex * bw[i] + ey * bh[i])) if share > 0 else h
        nk = np.int8(d > band) - np.int8(d < -band)
        prev = side[slot]
        if prev == 0:  # first seen (or inside the band so far): the side its ground point is on
            prev = np.int8(np.sign(d))
        flip = nk * prev < 0
        if flip or pend[slot] != 0:
            if flip:
                u, f = _along(px[slot], py[slot], gx[i], gy[i], line)
                if -margin <= u <= 1.0 + margin:
                    if pend[slot] == -nk:  # went back before maturing: a flicker
                        pend[slot] = 0
                    else:
                        # when it crossed: interpolated between the last sighting and now
                        t0 = pt[slot]
                        pend[slot] = nk
                        pend_t[slot] = t if math.isnan(t0) else t0 + min(1.0, max(0.0, f)) * (t - t0)
                        pend_x[slot] = u
            if pend[slot] != 0 and hits[i] >= min_age and (nk == 0 or nk == pend[slot]):
                out_i[k_out], out_dir[k_out] = i, pend[slot]
                out_t[k_out], out_u[k_out] = pend_t[slot], pend_x[slot]
                k_out += 1
                pend[slot] = 0
        side[slot] = nk if nk != 0 else prev
        px[slot] = gx[i]
        py[slot] = gy[i]
        pt[slot] = t
    return k_out


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
    n_gone = 0
    for i in range(n):
        if sel[i] and not zone[i]:
            s = slots[i]
            if not math.isnan(entered[s]) and t - last[s] >= exit_grace_s:
                gone[n_gone] = s
                n_gone += 1
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
    idx: np.ndarray, zone: np.ndarray, slots: np.ndarray, gx: np.ndarray, gy: np.ndarray, ax: np.ndarray,
    ay: np.ndarray, since: np.ndarray, t: float, aspect: float, radius: float, min_still: float, out_i: np.ndarray,
    out_still: np.ndarray,
) -> int:
    """stillness_update (one radius for all, no anchor kept) for the tracks `idx` that are in the zone
    (`zone` per track). Writes those still for `min_still` s at least (track indices, in order) and how
    long each has been still to `out_i` and `out_still` (as long as `idx` at least); returns how many."""
    m = 0
    for k in range(idx.shape[0]):
        i = idx[k]
        if not zone[i]:
            continue
        s = slots[i]
        a_x = ax[s]
        if math.isnan(a_x) or math.hypot(gx[i] - a_x, (gy[i] - ay[s]) * aspect) > radius:
            ax[s] = gx[i]
            ay[s] = gy[i]
            since[s] = t
        still = t - since[s]
        if still >= min_still:
            out_i[m] = i
            out_still[m] = still
            m += 1
    return m


@njit(cache=True, nogil=True)
def dwell_still_step(  # noqa: PLR0913 - one flat call: the frame's arrays, the rule's state and parameters
    idx: np.ndarray, slots: np.ndarray, gx: np.ndarray, gy: np.ndarray, bw: np.ndarray, hits: np.ndarray,
    ids: np.ndarray, codes: np.ndarray, ax: np.ndarray, ay: np.ndarray, since: np.ndarray, fired: np.ndarray,
    who_id: np.ndarray, who_code: np.ndarray, who_x: np.ndarray, who_y: np.ndarray, t: float, aspect: float,
    still_radius: float, threshold: float, min_age: int, due: np.ndarray,
) -> int:
    """DwellRule's frame with a still radius (see there), for its tracks `idx` in the zone: the anchors
    (stillness_update, a radius of `still_radius` box widths, boxes narrower than 1e-3 counted as that;
    slots that fired keep theirs). The tracks due (still for `threshold` s, `min_age` hits, not fired
    yet) or anchored now note their track id, class code and ground point (`ids`, `codes`, `gx, gy`) in
    their slot's `who_*`. Writes the positions (into `idx`) of those due to `due` (as long as `idx` at
    least) and returns how many."""
    n = idx.shape[0]
    radius = np.empty(n)
    keep = np.empty(n, dtype=np.bool_)
    for k in range(n):
        b = bw[idx[k]]
        radius[k] = still_radius * (b if (b >= 1e-3 or b != b) else 1e-3)  # np.maximum: NaN stays NaN
        keep[k] = fired[slots[idx[k]]]
    moved, still = stillness_update(idx, slots, gx, gy, ax, ay, since, t, aspect, radius, keep)
    m = 0
    for k in range(n):
        i = idx[k]
        s = slots[i]
        is_due = not fired[s] and still[k] >= threshold and hits[i] >= min_age
        if is_due or moved[k]:
            who_id[s] = ids[i]
            who_code[s] = codes[i]
            who_x[s] = gx[i]
            who_y[s] = gy[i]
        if is_due:
            due[m] = k
            m += 1
    return m


@njit(cache=True, nogil=True)
def note_stays(
    idx: np.ndarray, inside: np.ndarray, hits: np.ndarray, ids: np.ndarray, codes: np.ndarray, gx: np.ndarray,
    gy: np.ndarray, min_age: int, mature: np.ndarray, who_id: np.ndarray, who_code: np.ndarray, who_x: np.ndarray,
    who_y: np.ndarray,
) -> None:
    """ZonePassageRule's frame after ZoneStay.step: the slots `inside` of the tracks `idx` in the zone
    become `mature` once a track has `min_age` hits, and note the track's id, class code and ground
    point in `who_*` (as last seen inside)."""
    for k in range(idx.shape[0]):
        i, s = idx[k], inside[k]
        if hits[i] >= min_age:
            mature[s] = True
        who_id[s] = ids[i]
        who_code[s] = codes[i]
        who_x[s] = gx[i]
        who_y[s] = gy[i]


@njit(cache=True, nogil=True)
def selection(table: np.ndarray, codes: np.ndarray, conf: np.ndarray, min_conf: float, fresh: np.ndarray) -> np.ndarray:
    """Rule.selected's mask: tracks of the classes in `table` (by class code), with a confidence of at
    least `min_conf`, detected in this frame (`fresh`)."""
    n = codes.shape[0]
    out = np.empty(n, dtype=np.bool_)
    for i in range(n):
        out[i] = table[codes[i]] and conf[i] >= min_conf and fresh[i]
    return out


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


@njit(cache=True, nogil=True)
def frame_ground(
    box: np.ndarray, half_w: float, inv_w: float, inv_h: float, slots: np.ndarray, fresh: np.ndarray, t: float,
    last_t: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SlotTable.view's first step. Returns the tracks' (rows of `box`: x1, y1, x2, y2) ground points and
    box sizes normalised, as the rows of one (4, n) array: (x1 + x2) * half_w, y2 * inv_h, (x2 - x1) * inv_w,
    (y2 - y1) * inv_h; for the tracks detected in this frame (`fresh`, in order), as the rows of a (2, m)
    array, the time since their slot was last seen (1.0 where unknown or not positive) and whether it is
    known (> 1e-6 s; 1.0 or 0.0); and minus that time over 0.7 s, whose exp smooths their velocity."""
    n = slots.shape[0]
    geo = np.empty((4, n))
    m = 0
    for i in range(n):
        x1, y1, x2, y2 = box[i, 0], box[i, 1], box[i, 2], box[i, 3]
        geo[0, i] = (x1 + x2) * half_w
        geo[1, i] = y2 * inv_h
        geo[2, i] = (x2 - x1) * inv_w
        geo[3, i] = (y2 - y1) * inv_h
        if fresh[i]:
            m += 1
    gaps = np.empty((2, m))
    exponent = np.empty(m)
    k = 0
    for i in range(n):
        if fresh[i]:
            dt = t - last_t[slots[i]]
            good = math.isfinite(dt) and dt > 1e-6
            safe = dt if good else 1.0
            gaps[0, k] = safe
            gaps[1, k] = 1.0 if good else 0.0
            exponent[k] = -safe / 0.7
            k += 1
    return geo, gaps, exponent


@njit(cache=True, nogil=True)
def slot_motion(  # noqa: PLR0913 - one flat call: the frame's arrays and the slot table's
    slots: np.ndarray, fresh: np.ndarray, gx: np.ndarray, gy: np.ndarray, bw: np.ndarray, bh: np.ndarray,
    codes: np.ndarray, hits_in: np.ndarray, confirmed: np.ndarray, t: float, decay: np.ndarray, gaps: np.ndarray,
    last_t: np.ndarray, x: np.ndarray, y: np.ndarray, vx: np.ndarray, vy: np.ndarray, sbw: np.ndarray,
    sbh: np.ndarray, seen: np.ndarray, code: np.ndarray,
) -> np.ndarray:
    """SlotTable.view's second step: the slots of tracks detected in this frame (`fresh`; in order, `gaps`
    theirs from frame_ground and `decay` the exp of its exponent) move to their ground point, their velocity
    smoothed by a = 1 - decay (0 where the gap is unknown) towards the one the move implies, and count one
    more sighting; every slot takes its track's class code. Returns the tracks'
    hits (at least their slot's sightings); `confirmed` gains those seen three times (in place)."""
    k = 0
    for i in range(slots.shape[0]):
        if fresh[i]:
            s = slots[i]
            dt = gaps[0, k]
            a = 1.0 - decay[k] if gaps[1, k] != 0.0 else 0.0
            old_vx, old_vy = vx[s], vy[s]
            vx[s] = old_vx + a * ((gx[i] - x[s]) / dt - old_vx)
            vy[s] = old_vy + a * ((gy[i] - y[s]) / dt - old_vy)
            x[s] = gx[i]
            y[s] = gy[i]
            sbw[s] = bw[i]
            sbh[s] = bh[i]
            last_t[s] = t
            seen[s] += 1
            k += 1
    hits = np.empty(slots.shape[0], dtype=np.intp)
    for i in range(slots.shape[0]):
        s = slots[i]
        code[s] = codes[i]
        n_seen = seen[s]
        hits[i] = max(hits_in[i], n_seen)
        if n_seen >= 3:
            confirmed[i] = True
    return hits


@njit(cache=True, nogil=True)
def all_halfplanes(dots: np.ndarray, offsets: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """PolygonSet.contains_xy's test after its matrix product: for each polygon (whose half-planes are the
    rows of `dots` from `starts[k]` to the next start) and point (column), whether every dot >= its
    offset (`offsets`: (rows, 1)). Returns (polygons, points) booleans."""
    n_poly, n_rows, n = starts.shape[0], dots.shape[0], dots.shape[1]
    out = np.empty((n_poly, n), dtype=np.bool_)
    for k in range(n_poly):
        lo = starts[k]
        hi = starts[k + 1] if k + 1 < n_poly else n_rows
        for i in range(n):
            inside = True
            for j in range(lo, hi):
                if not dots[j, i] >= offsets[j, 0]:
                    inside = False
                    break
            out[k, i] = inside
    return out


def warm_up() -> None:
    """Compile every kernel of this module for the argument types the rules pass (and store them in
    numba's cache): see smartcity.tracking.kernels.warm_up."""
    b, i, f = np.zeros(2, dtype=np.bool_), np.zeros(2, dtype=np.intp), np.zeros(2)
    s8 = np.zeros(2, dtype=np.int8)
    wrong_way_step(b, b, i, f, f, i, f.copy(), f.copy(), b.copy(), 1.0, 0.0, 0.1, 3, 0.5, i.copy(), f.copy())
    crossings_step(i, i, f, f, f, f, i, s8.copy(), f.copy(), f.copy(), f.copy(), s8.copy(), f.copy(), f.copy(), 0.0,
                   0.0, 2, np.zeros(10), i.copy(), s8.copy(), f.copy(), f.copy())
    zone_stay_step(b, b, i, f.copy(), f.copy(), 0.0, 1.5, i.copy(), i.copy(), i.copy(), b.copy())
    stillness_update(i, i, f, f, f.copy(), f.copy(), f.copy(), 0.0, 1.0, np.ones(1), np.zeros(0, dtype=np.bool_))
    dwell_still_step(i, i, f, f, f, i, i, i, f.copy(), f.copy(), f.copy(), b.copy(), i.copy(), i.copy(), f.copy(),
                     f.copy(), 0.0, 1.0, 0.5, 30.0, 3, i.copy())
    note_stays(i, i, i, i, i, f, f, 2, b.copy(), i.copy(), i.copy(), f.copy(), f.copy())
    still_in_zone(i, b, i, f, f, f.copy(), f.copy(), f.copy(), 0.0, 1.0, 0.03, 5.0, i.copy(), f.copy())
    strided = np.zeros((2, 2))[:, 0]  # a column of the rows read off Track objects (no tracker columns)
    for conf in (f, strided):
        count_selected(b, i, conf, 0.5, b, b)
        selection(b, i, conf, 0.5, b)
    all_halfplanes(np.zeros((2, 2)), np.zeros((2, 1)), np.zeros(1, dtype=np.intp))
    box = np.zeros((2, 4))
    frame_ground(box, 0.5, 1.0, 1.0, i, b, 0.0, f)
    frame_ground(np.zeros((2, 8))[:, :4], 0.5, 1.0, 1.0, i, b, 0.0, f)  # boxes read off Track objects
    slot_motion(i, b, f, f, f, f, i, i, b.copy(), 0.0, f, box.T.copy(), f.copy(), f.copy(), f.copy(), f.copy(),
                f.copy(), f.copy(), f.copy(), i.copy(), i.copy())
