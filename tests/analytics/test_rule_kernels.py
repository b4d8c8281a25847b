"""The rules' compiled kernels against the numpy code they replaced (kept here as the reference): the
same results and the same per-slot state, bit for bit, over random sequences of frames."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from analytics_helpers import frame, spec, track

from smartcity.analytics import RuleEngine, kernels

FloatArray = npt.NDArray[np.float64]


def _ref_wrong_way(sel: np.ndarray, zone: np.ndarray, slots: np.ndarray, gx: FloatArray, gy: FloatArray,
                   hits: np.ndarray, st: dict[str, np.ndarray], ux: float, uy: float, min_distance: float,
                   min_age: int, cos_max: float) -> list[tuple[int, float]]:
    st["ax"][slots[sel & ~zone]] = np.nan
    idx = (sel & zone).nonzero()[0]
    if not len(idx):
        return []
    x, y, s = gx[idx], gy[idx], slots[idx]
    ax, ay = st["ax"][s], st["ay"][s]
    dx, dy = x - ax, y - ay
    ahead = dx * ux + dy * uy
    fresh_anchor = np.isnan(ax) | (ahead > 0)
    np.copyto(ax, x, where=fresh_anchor)
    np.copyto(ay, y, where=fresh_anchor)
    st["ax"][s], st["ay"][s] = ax, ay
    back = -ahead
    hit = (back >= min_distance) & ~st["fired"][s] & (hits[idx] >= min_age)
    if np.count_nonzero(hit):
        hit &= back >= cos_max * np.hypot(dx, dy)
    out = []
    for k in hit.nonzero()[0]:
        st["fired"][s[k]] = True
        out.append((int(idx[k]), float(back[k])))
    return out


def _ref_along(x0: float, y0: float, x1: float, y1: float, line: FloatArray) -> tuple[float, float]:
    ax, ay, bx, by, nx, ny = line.tolist()[:6]

    def along(x: float, y: float) -> float:
        dx, dy = bx - ax, by - ay
        return ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)

    if math.isnan(x0):
        return along(x1, y1), 1.0
    d0 = (x0 - ax) * nx + (y0 - ay) * ny
    d1 = (x1 - ax) * nx + (y1 - ay) * ny
    f = d0 / (d0 - d1) if d0 != d1 else 0.5
    return along(x0 + f * (x1 - x0), y0 + f * (y1 - y0)), f


def _ref_crossings(idx: np.ndarray, s: np.ndarray, x: FloatArray, y: FloatArray, d_all: FloatArray,
                   new_all: np.ndarray, hits: np.ndarray, st: dict[str, np.ndarray], t: float, margin: float,
                   min_age: int, line: FloatArray) -> list[tuple[int, int, float, float]]:
    new = new_all[idx]
    prev = st["side"][s]
    unset = prev == 0
    if np.count_nonzero(unset):
        prev = np.where(unset, np.sign(d_all[idx]).astype(np.int8), prev)
    pend = st["pend"][s]
    flip = (new * prev) < 0
    out: list[tuple[int, int, float, float]] = []
    for k in (flip | (pend != 0)).nonzero()[0]:
        i, slot = int(idx[k]), int(s[k])
        nk = int(new[k])
        if flip[k]:
            u, f = _ref_along(st["px"][slot], st["py"][slot], float(x[k]), float(y[k]), line)
            if -margin <= u <= 1.0 + margin:
                if st["pend"][slot] == -nk:
                    st["pend"][slot] = 0
                else:
                    t0 = float(st["pt"][slot])
                    st["pend"][slot] = nk
                    st["pend_t"][slot] = t if math.isnan(t0) else t0 + min(1.0, max(0.0, f)) * (t - t0)
                    st["pend_x"][slot] = u
        if st["pend"][slot] != 0 and hits[i] >= min_age and nk in (0, st["pend"][slot]):
            out.append((i, int(st["pend"][slot]), float(st["pend_t"][slot]), float(st["pend_x"][slot])))
            st["pend"][slot] = 0
    np.copyto(prev, new, where=new != 0)
    st["side"][s] = prev
    st["px"][s] = x
    st["py"][s] = y
    st["pt"][s] = t
    return out


def _packed(slots: np.ndarray, gx: FloatArray, gy: FloatArray, bw: FloatArray | None = None,
            bh: FloatArray | None = None, hits: np.ndarray | None = None, codes: np.ndarray | None = None,
            ids: np.ndarray | None = None) -> tuple[FloatArray, np.ndarray]:
    """A frame's arrays as the kernels take them (FrameView.geo, FrameView.ints): geo the first rows of a
    larger array, as SlotTable.view makes it; what is not given is filled with values no kernel may read."""
    n = len(slots)
    work = np.full((7, n), np.nan)
    work[kernels.GX], work[kernels.GY] = gx, gy
    work[kernels.BW] = bw if bw is not None else np.nan
    work[kernels.BH] = bh if bh is not None else np.nan
    ints = np.full((4, n), -99, dtype=np.intp)
    ints[kernels.SLOT] = slots
    for row, v in ((kernels.HITS, hits), (kernels.CODE, codes), (kernels.TRACK_ID, ids)):
        if v is not None:
            ints[row] = v
    return work[:4], ints


def _frames(seed: int, n_frames: int = 120, capacity: int = 64):
    """Tracks on random walks (ground points in [0, 1]) with slots that come and go: per frame, the
    slots in view (unique), their points, hits and a random selection."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 1, (capacity, 2))
    vel = rng.normal(0, 0.02, (capacity, 2))
    hits = np.zeros(capacity, dtype=np.intp)
    for _ in range(n_frames):
        vel += rng.normal(0, 0.01, (capacity, 2))
        pos = np.clip(pos + vel, 0.0, 1.0)
        hits += 1
        gone = rng.random(capacity) < 0.02
        hits[gone] = 0
        slots = rng.permutation(capacity)[: int(rng.integers(0, 40))].astype(np.intp)
        sel = rng.random(len(slots)) < 0.85
        yield slots, pos[slots, 0].copy(), pos[slots, 1].copy(), hits[slots].copy(), sel


@pytest.mark.parametrize("seed", range(12))
def test_wrong_way_step_equals_the_numpy_reference(seed: int) -> None:
    cap = 64
    ref = {"ax": np.full(cap, np.nan), "ay": np.full(cap, np.nan), "fired": np.zeros(cap, dtype=bool)}
    got = {k: v.copy() for k, v in ref.items()}
    angle = seed * 0.7
    ux, uy = math.cos(angle), math.sin(angle)
    fired = 0
    for slots, gx, gy, hits, sel in _frames(seed):
        zone = (gx > 0.2) & (gy < 0.8)
        want = _ref_wrong_way(sel, zone, slots, gx, gy, hits, ref, ux, uy, 0.03, 3, math.cos(math.radians(50)))
        out = np.full((2, len(slots) + 3), np.nan)
        geo, ints = _packed(slots, gx, gy, hits=hits)
        anchor, flags = np.vstack((got["ax"], got["ay"])), got["fired"][None, :].copy()
        k = kernels.wrong_way_step(sel, zone, geo, ints, anchor, flags, ux, uy, 0.03, 3, math.cos(math.radians(50)),
                                   out)
        got["ax"], got["ay"], got["fired"] = anchor[kernels.AX], anchor[kernels.AY], flags[kernels.FLAG]
        assert [(int(i), back) for i, back in zip(*out[:, :k].tolist(), strict=True)] == want
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k])
        fired += len(want)
        if seed % 3 == 0:
            ref["fired"][:] = got["fired"][:] = False  # fire again
    assert fired > 0  # the walks do go the wrong way


@pytest.mark.parametrize("seed", range(12))
def test_crossings_step_equals_the_numpy_reference(seed: int) -> None:
    cap = 64
    ref = {"side": np.zeros(cap, dtype=np.int8), "px": np.full(cap, np.nan), "py": np.full(cap, np.nan),
           "pt": np.full(cap, np.nan), "pend": np.zeros(cap, dtype=np.int8), "pend_t": np.full(cap, np.nan),
           "pend_x": np.full(cap, np.nan)}
    got = {k: v.copy() for k, v in ref.items()}
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.2, 0.8, 2), rng.uniform(0.2, 0.8, 2)
    normal = np.array([a[1] - b[1], b[0] - a[0]]) / math.hypot(*(b - a))
    h, share, margin = 0.01 * (seed % 3), (0.0, 0.1, 0.35)[seed % 3], 0.1 * (seed % 2)
    line = np.array([*a, *b, *normal, h, share, abs(normal[0]), abs(normal[1])])
    crossings = 0
    for f, (slots, gx, gy, hits, sel) in enumerate(_frames(seed)):
        t = f / 5.0
        bw, bh = rng.uniform(0.01, 0.2, len(slots)), rng.uniform(0.01, 0.3, len(slots))
        # the sides as the rule computed them before the kernel (CrossingSides, one line)
        d_all = (gx - a[0]) * normal[0] + (gy - a[1]) * normal[1]
        band = np.maximum(h, share * (abs(normal[0]) * bw + abs(normal[1]) * bh)) if share > 0 else h
        new_all = (d_all > band).view(np.int8) - (d_all < -band).view(np.int8)
        idx = sel.nonzero()[0]
        s, x, y = slots[idx], gx[idx], gy[idx]
        want = _ref_crossings(idx, s, x, y, d_all, new_all, hits, ref, t, margin, 2, line)
        out = np.full((4, len(slots) + 1), np.nan)
        geo, ints = _packed(slots, gx, gy, bw, bh, hits)
        # the state as Crossings keeps it: the float64 arrays and the int8 ones as the rows of one array each
        floats = np.vstack([got[k] for k in ("px", "py", "pt", "pend_t", "pend_x")] + [np.full(cap, np.nan)] * 4)
        sides = np.vstack((got["side"], got["pend"], np.zeros(cap, dtype=np.int8)))
        no = np.zeros(0, dtype=bool)  # crossings behind nearer objects off (max_lost_s 0), as red_light has them
        k = kernels.crossings_step(sel, geo, ints, floats, sides, t, margin, 2, line, out, no, 0.0, bw, sel, 0.0, 0.5)
        for name, row in (("px", kernels.PX), ("py", kernels.PY), ("pt", kernels.PT), ("pend_t", kernels.PEND_T),
                          ("pend_x", kernels.PEND_X)):
            got[name] = floats[row]
        got["side"], got["pend"] = sides[kernels.SIDE], sides[kernels.PEND]
        i, direction, t_cross, u = out[:, :k].tolist()
        assert list(zip(map(int, i), map(int, direction), t_cross, u, strict=True)) == want
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k])
        crossings += len(want)
    assert crossings > 0


def _ref_zone_stay(sel: np.ndarray, zone: np.ndarray, slots: np.ndarray, st: dict[str, np.ndarray], t: float,
                   grace: float) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    so = slots[sel & ~zone]
    gone = so[~np.isnan(st["entered"][so]) & (t - st["last"][so] >= grace)]
    idx = (sel & zone).nonzero()[0]
    s = slots[idx]
    started = np.isnan(st["entered"][s])
    st["entered"][s[started]] = t
    st["last"][s] = t
    return gone.tolist(), idx, s, started


def _ref_stillness(idx: np.ndarray, slots: np.ndarray, gx: FloatArray, gy: FloatArray, st: dict[str, np.ndarray],
                   t: float, aspect: float, radius: float | FloatArray, keep: np.ndarray | None
                   ) -> tuple[np.ndarray, FloatArray]:
    s = slots[idx]
    x, y = gx[idx], gy[idx]
    ax = st["ax"][s]
    far = np.hypot(x - ax, (y - st["ay"][s]) * aspect) > radius
    moved = np.isnan(ax) | (far if keep is None else far & ~keep)
    ms = s[moved]
    st["ax"][ms], st["ay"][ms], st["since"][ms] = x[moved], y[moved], t
    return moved, np.asarray(t - st["since"][s])


@pytest.mark.parametrize("seed", range(12))
def test_zone_stay_and_stillness_equal_the_numpy_reference(seed: int) -> None:
    cap = 64
    ref = {"entered": np.full(cap, np.nan), "last": np.full(cap, np.nan), "ax": np.full(cap, np.nan),
           "ay": np.full(cap, np.nan), "since": np.full(cap, np.nan)}
    got = {k: v.copy() for k, v in ref.items()}
    rng = np.random.default_rng(seed)
    ended = anchored = 0
    for f, (slots, gx, gy, _, sel) in enumerate(_frames(seed)):
        t = f / 5.0
        zone = (gx > 0.3) & (gx < 0.9)
        gone, idx, s, started = _ref_zone_stay(sel, zone, slots, ref, t, 1.5)
        n = len(slots)
        out = (np.empty(n, dtype=np.intp), np.empty(n, dtype=np.intp), np.empty(n, dtype=np.intp),
               np.empty(n, dtype=bool))
        n_gone, k = kernels.zone_stay_step(sel, zone, slots, got["entered"], got["last"], t, 1.5, *out)
        assert out[0][:n_gone].tolist() == gone
        for a, b in zip(out[1:], (idx, s, started), strict=True):
            np.testing.assert_array_equal(a[:k], b)
        ended += len(gone)
        # stillness of the tracks in the zone: one radius for all, or one each with some kept anchors
        per_track = seed % 2 == 1
        radius = rng.uniform(0.005, 0.05, len(idx)) if per_track else 0.02
        keep = rng.random(len(idx)) < 0.3 if per_track else None
        want = _ref_stillness(idx, slots, gx, gy, ref, t, 0.5625, radius, keep)
        moved, still = kernels.stillness_update(
            idx, slots, gx, gy, got["ax"], got["ay"], got["since"], t, 0.5625,
            radius if isinstance(radius, np.ndarray) else np.array([radius]),
            keep if keep is not None else np.zeros(0, dtype=bool),
        )
        np.testing.assert_array_equal(moved, want[0])
        np.testing.assert_array_equal(still, want[1])
        anchored += int(moved.sum())
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k])
    assert ended > 0 and anchored > 0


@pytest.mark.parametrize("seed", range(8))
def test_still_in_zone_equals_the_numpy_reference(seed: int) -> None:
    """DumpingRule's stillness in its zone: select, keep those in the zone, update their anchors, and
    list the ones still long enough, as its numpy code did."""
    cap = 64
    ref = {"ax": np.full(cap, np.nan), "ay": np.full(cap, np.nan), "since": np.full(cap, np.nan)}
    got = {k: v.copy() for k, v in ref.items()}
    listed = 0
    for f, (slots, gx, gy, _, sel) in enumerate(_frames(seed)):
        t = f / 5.0
        zone = (gx > 0.2) & (gy > 0.1)
        idx = sel.nonzero()[0]
        inz = idx[zone[idx]]
        _, still = _ref_stillness(inz, slots, gx, gy, ref, t, 0.5625, 0.03, None)
        want = [(int(inz[k]), float(still[k])) for k in (still >= 1.0).nonzero()[0]]
        out = np.full((2, len(slots) + 1), np.nan)
        geo, ints = _packed(slots, gx, gy)
        anchor = np.vstack((got["ax"], got["ay"], got["since"]))
        m = kernels.still_in_zone(sel, zone, geo, ints, anchor, t, 0.5625, 0.03, 1.0, out)
        got["ax"], got["ay"], got["since"] = anchor[kernels.AX], anchor[kernels.AY], anchor[kernels.SINCE]
        assert [(int(i), still) for i, still in zip(*out[:, :m].tolist(), strict=True)] == want
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k])
        listed += m
    assert listed > 0


def _ref_slot_motion(slots: np.ndarray, fresh: np.ndarray, gx: FloatArray, gy: FloatArray, bw: FloatArray,
                     bh: FloatArray, codes: np.ndarray, hits_in: np.ndarray, confirmed: np.ndarray, t: float,
                     st: dict[str, np.ndarray]) -> np.ndarray:
    f = slots[fresh]
    if len(f):
        dt = t - st["last_t"][f]
        ok = np.isfinite(dt) & (dt > 1e-6)
        safe_dt = np.where(ok, dt, 1.0)
        gxf, gyf = gx[fresh], gy[fresh]
        a = np.where(ok, 1.0 - np.exp(-safe_dt / 0.7), 0.0)
        vx, vy = st["vx"][f], st["vy"][f]
        st["vx"][f] = vx + a * ((gxf - st["x"][f]) / safe_dt - vx)
        st["vy"][f] = vy + a * ((gyf - st["y"][f]) / safe_dt - vy)
        st["x"][f] = gxf
        st["y"][f] = gyf
        st["bw"][f] = bw[fresh]
        st["bh"][f] = bh[fresh]
        st["last_t"][f] = t
        st["seen"][f] += 1
    st["code"][slots] = codes
    seen = st["seen"][slots]
    confirmed |= seen >= 3
    out: np.ndarray = np.maximum(hits_in, seen)
    return out


_SLOT_ROWS = {"last_t": kernels.LAST_T, "x": kernels.X, "y": kernels.Y, "vx": kernels.VX, "vy": kernels.VY,
              "bw": kernels.SBW, "bh": kernels.SBH}


@pytest.mark.parametrize("seed", range(8))
def test_slot_motion_equals_the_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cap = 64
    ref = {"last_t": np.full(cap, -math.inf), "x": np.zeros(cap), "y": np.zeros(cap), "vx": np.zeros(cap),
           "vy": np.zeros(cap), "bw": np.zeros(cap), "bh": np.zeros(cap), "seen": np.zeros(cap, dtype=np.intp),
           "code": np.full(cap, -1, dtype=np.intp)}
    # SlotTable.state: the floats as the rows of one array
    state = np.zeros((len(_SLOT_ROWS) + 1, cap))
    for k, row in _SLOT_ROWS.items():
        state[row] = ref[k]
    got = {"state": state, "seen": ref["seen"].copy(), "code": ref["code"].copy()}
    for frame_no in range(60):
        t = 0.2 * frame_no if frame_no % 9 else 0.2 * (frame_no - 1)  # now and then the same time again
        slots = rng.permutation(cap)[: int(rng.integers(0, 40))].astype(np.intp)
        n = len(slots)
        fresh = rng.random(n) < 0.8
        gx, gy, bw, bh = (rng.random(n) for _ in range(4))
        codes = rng.integers(0, 5, n).astype(np.intp)
        hits_in = rng.integers(1, 6, n).astype(np.intp)
        confirmed = rng.random(n) < 0.3
        want_confirmed = confirmed.copy()
        # boxes whose ground points and sizes in a frame of w x h are gx, gy, bw, bh (give or take the last bit)
        w, h = 1280.0, 720.0
        box = np.stack((gx * w - bw * w / 2, gy * h - bh * h, gx * w + bw * w / 2, gy * h), axis=1)
        if seed % 2:
            box = np.hstack((box, box))[:, :4]  # not contiguous, as when read off Track objects
        work = np.full((7, n), np.nan)
        m = kernels.frame_ground(box, 0.5 / w, 1.0 / w, 1.0 / h, slots, fresh, t, got["state"][kernels.LAST_T], work)
        assert m == int(fresh.sum())
        geo = work[:4]
        # the numpy code SlotTable.view had before the kernel
        ground = np.empty((2, n))
        np.add(box[:, 0], box[:, 2], out=ground[0])
        ground[0] *= 0.5 / w
        np.multiply(box[:, 3], 1.0 / h, out=ground[1])
        want_geo = np.vstack((ground, (box[:, 2] - box[:, 0]) * (1.0 / w), (box[:, 3] - box[:, 1]) * (1.0 / h)))
        np.testing.assert_array_equal(geo, want_geo)
        gx, gy, bw, bh = geo
        want = _ref_slot_motion(slots, fresh, gx, gy, bw, bh, codes, hits_in, want_confirmed, t, ref)
        ints = np.full((4, n), -99, dtype=np.intp)
        ints[kernels.SLOT], ints[kernels.CODE] = slots, codes
        kernels.slot_motion(ints, fresh, work, hits_in, confirmed, t, np.exp(work[6, :m]), got["state"], got["seen"],
                            got["code"])
        assert ints[kernels.HITS].tolist() == want.tolist() and confirmed.tolist() == want_confirmed.tolist()
        for k, row in _SLOT_ROWS.items():
            np.testing.assert_array_equal(got["state"][row], ref[k])
        for k in ("seen", "code"):
            np.testing.assert_array_equal(got[k], ref[k])
    assert (ref["vx"] != 0).any() and (ref["seen"] >= 3).any()


_WHO_FILLS = {"who_id": (-1, np.intp), "who_code": (-1, np.intp), "who_x": (np.nan, np.float64),
              "who_y": (np.nan, np.float64)}


def _state(cap: int, **fills: tuple[float, type]) -> dict[str, np.ndarray]:
    return {k: np.full(cap, fill, dtype=dtype) for k, (fill, dtype) in fills.items()}


def _forget(states: tuple[dict[str, np.ndarray], ...], slots: list[int], **fills: tuple[float, type]) -> None:
    """What the rule does with the stays that ended (ZoneStay.release, Stillness.release)."""
    for st in states:
        for k, (fill, _) in fills.items():
            st[k][slots] = fill


# DwellRule's state as dwell_step reads it: each row of names (in kernels' row order) one array
_STAY_ROWS = (("entered", "last", "who_x", "who_y"), ("who_id", "who_code"))
_DWELL_ROWS = (*_STAY_ROWS, ("fired",), ("ax", "ay", "since"))


def test_the_rules_keep_their_state_in_the_rows_the_kernels_read() -> None:
    """SlotArrays puts the arrays of one dtype in the rows of one array, in the order given: the rules'
    state against kernels' row numbers (and a layout they do not read is refused)."""
    from smartcity.analytics.base import SlotArrays
    from smartcity.analytics.rules._presence import WHO, ZoneStay

    st = ZoneStay(None, 1.0, fired=(False, bool), **WHO).st  # type: ignore[arg-type]
    for names in _DWELL_ROWS[:3]:
        assert [st.row[n] for n in names] == list(range(len(names)))
        assert all(st.rows_of(n)[st.row[n]] is not None for n in names)
    st.ensure(200)
    st.who_x[150] = 0.5
    assert st.rows_of("who_x")[kernels.WHO_X, 150] == 0.5 and st.fired.dtype == bool and st.who_id.dtype == np.intp
    st.reset([150])
    assert np.isnan(st.who_x[150])
    with pytest.raises(ValueError, match="other rows"):
        SlotArrays(a=(0.0, np.float64), b=(0.0, np.float64)).expect_rows(b=0)
    st.expect_rows("entered", "fired", "who_id")  # the 2-d arrays in the order their dtypes first appear
    with pytest.raises(ValueError, match="another order"):
        st.expect_rows("entered", "who_id", "fired")


@pytest.mark.parametrize("seed", range(8))
def test_dwell_step_equals_the_numpy_reference(seed: int) -> None:
    """DwellRule's frame with a still radius in one call: the zone stays, then the anchors (a radius of
    box widths, fired slots keep theirs), the tracks due and who they are, as its numpy code did."""
    rng = np.random.default_rng(100 + seed)
    cap = 64
    fills = {"entered": (np.nan, np.float64), "last": (np.nan, np.float64), "fired": (False, np.bool_),
             "ax": (np.nan, np.float64), "ay": (np.nan, np.float64), "since": (np.nan, np.float64), **_WHO_FILLS}
    ref = _state(cap, **fills)
    got = {k: v.copy() for k, v in ref.items()}
    pos = rng.random((cap, 2))
    due_seen = ended = 0
    for frame_no in range(120):
        t = 0.2 * frame_no
        pos += rng.normal(0, 0.004, pos.shape) * (np.arange(cap) % 3 == 0)[:, None]  # a third move
        pos[rng.random(cap) < 0.01] = rng.random(2)  # now and then one jumps (in or out of the zone)
        slots = rng.permutation(cap)[: int(rng.integers(5, 40))].astype(np.intp)
        n = len(slots)
        gx, gy = pos[slots, 0].copy(), pos[slots, 1].copy()
        bw = rng.uniform(0.0, 0.02, n)
        bw[rng.random(n) < 0.1] = np.nan
        hits = rng.integers(1, 6, n).astype(np.intp)
        sel = rng.random(n) < 0.8
        zone = (gx > 0.2) & (gx < 0.8)
        ids, codes = 1000 + slots, rng.integers(0, 5, n).astype(np.intp)
        # the reference: ZoneStay.step, then DwellRule's numpy code around stillness_update
        gone, idx, s, _ = _ref_zone_stay(sel, zone, slots, ref, t, 1.5)
        radius = 0.5 * np.maximum(bw[idx], 1e-3)
        moved, still = _ref_stillness(idx, slots, gx, gy, ref, t, 0.6, radius, ref["fired"][s])
        want_due = ~ref["fired"][s] & (still >= 2.0) & (hits[idx] >= 3)
        noted = want_due | moved
        ns, ni = s[noted], idx[noted]
        ref["who_id"][ns], ref["who_code"][ns], ref["who_x"][ns], ref["who_y"][ns] = ids[ni], codes[ni], gx[ni], gy[ni]
        geo, ints = _packed(slots, gx, gy, bw, hits=hits, codes=codes, ids=ids)
        out = np.full((2, n + 1), -4, dtype=np.intp)
        floats, who_ids, fired, anchor = (np.vstack([got[k] for k in names]) for names in _DWELL_ROWS)
        n_gone, n_due = kernels.dwell_step(sel, zone, geo, ints, floats, who_ids, fired, anchor, t, 1.5, 0.6, 0.5, 2.0,
                                           3, out)
        for rows, names in zip((floats, who_ids, fired, anchor), _DWELL_ROWS, strict=True):
            got.update(zip(names, rows, strict=True))
        assert out[0, :n_gone].tolist() == gone
        assert out[1, :n_due].tolist() == idx[want_due].tolist()
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k])
        # the rule: the tracks due fire, the stays that ended are forgotten
        ref["fired"][s[want_due]] = got["fired"][slots[out[1, :n_due]]] = True
        _forget((ref, got), gone, **fills)
        due_seen += n_due
        ended += n_gone
    assert due_seen > 0 and ended > 0


@pytest.mark.parametrize("seed", range(8))
def test_zone_passage_step_equals_the_numpy_reference(seed: int) -> None:
    """ZonePassageRule's frame in one call: the zone stays, then the slots in the zone mature and note who
    is in them, as ZoneStay.step and note_stays (the kernel it had) did."""
    rng = np.random.default_rng(200 + seed)
    cap = 64
    fills = {"entered": (np.nan, np.float64), "last": (np.nan, np.float64), "mature": (False, np.bool_),
             **_WHO_FILLS}
    ref = _state(cap, **fills)
    got = {k: v.copy() for k, v in ref.items()}
    ended = 0
    for f, (slots, gx, gy, hits, sel) in enumerate(_frames(seed)):
        t = f / 5.0
        zone = (gx > 0.3) & (gx < 0.9)
        ids, codes = 5000 + slots, rng.integers(0, 5, len(slots)).astype(np.intp)
        gone, idx, s, _ = _ref_zone_stay(sel, zone, slots, ref, t, 1.0)
        ripe = hits[idx] >= 2
        ref["mature"][s[ripe]] = True
        ref["who_id"][s], ref["who_code"][s], ref["who_x"][s], ref["who_y"][s] = ids[idx], codes[idx], gx[idx], gy[idx]
        geo, ints = _packed(slots, gx, gy, hits=hits, codes=codes, ids=ids)
        out_gone = np.full(len(slots) + 1, -4, dtype=np.intp)
        floats, who_ids, mature = (np.vstack([got[k] for k in names]) for names in (*_STAY_ROWS, ("mature",)))
        n_gone = kernels.zone_passage_step(sel, zone, geo, ints, floats, who_ids, mature, t, 1.0, 2, out_gone)
        for rows, names in zip((floats, who_ids, mature), (*_STAY_ROWS, ("mature",)), strict=True):
            got.update(zip(names, rows, strict=True))
        assert out_gone[:n_gone].tolist() == gone
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k])
        _forget((ref, got), gone, **fills)
        ended += n_gone
    assert ended > 0 and ref["mature"].any()


def test_warm_up_compiles_what_the_rules_call() -> None:
    """After warm_up, rules of every kernel on a scene compile nothing more (warm_up passes their types)."""
    kernels.warm_up()
    public = {name: getattr(kernels, name) for name in dir(kernels) if not name.startswith("_")}
    compiled = {name: set(fn.signatures) for name, fn in public.items() if hasattr(fn, "signatures")}
    assert compiled and all(compiled.values())
    zone = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
    rules = [spec("line_count", {"line": [[0.5, 0.05], [0.5, 0.95]], "in_direction": "left"}, id="line"),
             spec("wrong_way", {"zone": zone, "direction": [1, 0], "min_distance": 0.05}, id="ww"),
             spec("dwell", {"zone": zone, "threshold_s": 1.0}, id="dw"),
             spec("zone_passage", {"zone": zone}, id="zp"),
             spec("dumping", {"zone": zone, "stop_s": 1.0}, id="dump")]
    engine = RuleEngine(rules, "cam1")
    kinds = set()
    for k in range(30):
        shown = [track(1, 0.8 - 0.02 * k, 0.5), track(2, 0.3, 0.3), track(3, 0.2 + 0.02 * k, 0.7, tsu=k % 5 == 4)]
        kinds |= {e.kind for e in engine.update(frame(0.2 * k, *shown))}
    assert {"wrong_way", "dwell"} <= kinds and engine.count_buckets()
    assert {name: set(public[name].signatures) for name in compiled} == compiled


@pytest.mark.parametrize("seed", range(6))
def test_all_halfplanes_equals_the_numpy_reduction(seed: int) -> None:
    """PolygonSet.contains_xy's comparisons and per-polygon reduction, against the numpy code it had,
    with points exactly on an edge (dot == offset) and NaN among them."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 8, int(rng.integers(1, 6)))
    starts = np.cumsum(np.concatenate(([0], sizes[:-1]))).astype(np.intp)
    dots = rng.normal(size=(int(sizes.sum()), 0 if seed == 0 else int(rng.integers(20, 40)))) + 1.5
    offsets = rng.normal(size=(len(dots), 1)) * 0.2
    if dots.shape[1]:
        dots[rng.random(dots.shape) < 0.1] = np.nan
        on_edge = rng.random(dots.shape) < 0.1
        dots[on_edge] = np.broadcast_to(offsets, dots.shape)[on_edge]
    want = np.logical_and.reduceat(dots >= offsets, starts, axis=0)
    got = np.empty(want.shape, dtype=bool)
    kernels.all_halfplanes(dots, offsets, starts, got)
    np.testing.assert_array_equal(got, want)
    if dots.shape[1]:
        assert want.any() and not want.all()


@pytest.mark.parametrize("seed", range(4))
def test_selection_equals_the_numpy_mask(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 0 if seed == 0 else 50
    table = rng.random(7) < 0.5
    codes = rng.integers(0, 7, n).astype(np.intp)
    conf = rng.random(n)
    conf[: n // 5] = 0.4  # exactly at the threshold
    fresh = rng.random(n) < 0.8
    want = table[codes] & (conf >= 0.4) & fresh
    got = np.empty(n, dtype=bool)
    kernels.selection(table, codes, conf, 0.4, fresh, got)
    np.testing.assert_array_equal(got, want)
    if n:
        assert want.any() and not want.all()


@pytest.mark.parametrize("seed", range(6))
def test_relink_candidates_keep_every_slot_relink_may_pick(seed: int) -> None:
    """SlotTable._relink on the candidates relink_candidates keeps picks what it picks on all of them."""
    from smartcity.analytics.base import ClassVocab, SlotTable

    rng = np.random.default_rng(300 + seed)
    table = SlotTable(ClassVocab())
    cap, t = table.capacity, 100.0
    st = table.state
    st[kernels.X], st[kernels.Y] = rng.random(cap), rng.random(cap)
    st[kernels.VX], st[kernels.VY] = rng.normal(0, 0.05, cap), rng.normal(0, 0.05, cap)
    st[kernels.SBW], st[kernels.SBH] = rng.uniform(0.01, 0.1, cap), rng.uniform(0.01, 0.1, cap)
    st[kernels.LAST_T] = t - rng.uniform(-0.5, 7.0, cap)
    st[kernels.LAST_T, rng.random(cap) < 0.05] = -math.inf
    table.code[:] = rng.integers(0, 3, cap)
    table.seen[:] = rng.integers(0, 6, cap)
    rl = table.relink
    cands = list(range(cap))
    everything = {s: (int(table.code[s]), int(table.seen[s]), st[:, s].tolist()) for s in cands}
    picked = kept_total = 0
    for _ in range(300):
        s0 = int(rng.choice(np.flatnonzero(np.isfinite(st[kernels.LAST_T]))))
        gap = t - st[kernels.LAST_T, s0]
        # near where some slot is predicted to be, or anywhere
        x = st[kernels.X, s0] + st[kernels.VX, s0] * gap + rng.normal(0, 0.03) if rng.random() < 0.7 else rng.random()
        y = st[kernels.Y, s0] + st[kernels.VY, s0] * gap + rng.normal(0, 0.03)
        code, bw, bh = int(rng.integers(0, 3)), rng.uniform(0.01, 0.1), rng.uniform(0.01, 0.1)
        want = table._relink(cands, code, x, y, bw, bh, t, everything)
        at = np.array(cands, dtype=np.intp)
        k = kernels.relink_candidates(at, code, x, y, t, st, table.code, table.seen, rl.max_gap_s, rl.radius,
                                      rl.radius_per_travel)
        kept = at[:k].tolist()
        assert kept == [s for s in cands if s in set(kept)]  # in their order
        assert table._relink(kept, code, x, y, bw, bh, t, everything) == want
        picked += want is not None
        kept_total += k
    assert picked > 0 and kept_total < 300 * cap / 4  # it finds some, and keeps few


def test_event_id_is_uuid5_of_the_occurrence() -> None:
    """event_id makes the uuid5 hex it always made (ids already stored must match a replay's)."""
    import uuid

    from smartcity.analytics.base import EVENT_NAMESPACE, event_id

    rng = np.random.default_rng(5)
    for k in range(500):
        cam, rule, kind = f"cam-{k % 7}", f"rülé{k}", ("crossing", "dwell", "passage")[k % 3]
        track = None if k % 11 == 0 else int(rng.integers(0, 10**9))
        t = float(rng.uniform(0, 2e9)) if k % 5 else float(k)
        want = uuid.uuid5(EVENT_NAMESPACE, f"{cam}/{rule}/{track}/{kind}/{round(t * 1000)}").hex
        assert event_id(cam, rule, track, kind, t) == want
