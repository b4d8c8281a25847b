"""Hours of negative camera time for the fire and smoke bench: real street footage looped without a
cut, with look-alikes of fire drawn in at seeded places and times.

A colour model's hard cases, each drawn from a seed (`NegativeCamera.distractors`):
- vehicles in orange, yellow, red (and grey, white) crossing at 0.5 to 8 m/s, some stopping with
  their amber hazard lights blinking (1.2 to 2 Hz) for 10 to 40 s;
- sodium street lamps (orange glow with a halo) switching on during the clip, their brightness
  flickering by 5 to 30 % from frame to frame (a camera's exposure beating with the mains);
- amber road-works beacons flashing at 1 to 3 Hz for one to two minutes;
- a sunset: the whole picture turns orange over two minutes, the sky most;
- a wet road's reflection of a lamp: an orange streak whose rows ripple from frame to frame;
- the camera: mirrored or not, an automatic gain that drifts, sensor noise.
The drawn objects are not boxed by the camera's detector (the worst case: no veto).

The source (vtest.avi or the road clip, decoded once at the analysis rate) plays back and forth, so
a camera of any length has no scene cut (a real camera has none). Nothing is copied from
../shared/data; nothing is written.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]
ORANGE, YELLOW, RED = (235, 120, 25), (240, 195, 35), (200, 35, 30)
AMBER = (255, 170, 30)
PLAIN = ((200, 200, 205), (90, 92, 98))


@dataclass(frozen=True)
class Vehicle:
    colour: tuple[int, int, int]
    lane: float  # bottom of the body, normalised y
    size: float  # length, share of the frame width (the height is 0.45 of it)
    speed: float  # frame widths per second; negative: right to left
    t0: float
    stop_x: float | None  # the vehicle's centre stops here (normalised)...
    stop_s: float  # ...for this long, hazard lights blinking
    blink_hz: float

    def x(self, t: float) -> float | None:
        """Centre x (normalised) at `t`, None when off the picture."""
        if t < self.t0:
            return None
        start = -self.size if self.speed > 0 else 1 + self.size
        d = (t - self.t0) * self.speed
        if self.stop_x is not None:
            reach = (self.stop_x - start) / self.speed
            if t - self.t0 >= reach:
                d = self.stop_x - start + max(0.0, t - self.t0 - reach - self.stop_s) * self.speed
        x = start + d
        return x if -self.size <= x <= 1 + self.size else None

    def stopped(self, t: float) -> bool:
        if self.stop_x is None:
            return False
        reach = (self.stop_x - (-self.size if self.speed > 0 else 1 + self.size)) / self.speed
        return 0 <= t - self.t0 - reach < self.stop_s

    def draw(self, img: Frame, t: float, rng: np.random.Generator) -> None:
        cx = self.x(t)
        if cx is None:
            return
        h, w = img.shape[:2]
        length = self.size * w
        height = 0.45 * length
        x1, x2 = round(cx * w - length / 2), round(cx * w + length / 2)
        y2 = round(self.lane * h)
        y1 = round(y2 - height)
        body = np.empty((y2 - y1, x2 - x1, 3), dtype=np.float32)
        body[:] = self.colour
        rows = np.linspace(1.12, 0.8, y2 - y1, dtype=np.float32)[:, None, None]  # lit from above
        body *= rows
        wy1, wy2 = round(0.15 * height), round(0.45 * height)
        body[wy1:wy2, round(0.12 * length) : round(0.88 * length)] = (40, 48, 60)  # windows
        body[-max(2, round(0.12 * height)) :] = 20  # wheels and shadow
        if self.stopped(t) and (t * self.blink_hz) % 1.0 < 0.5:
            s = max(2, round(0.07 * length))
            body[round(0.55 * height) : round(0.55 * height) + s, :s] = AMBER
            body[round(0.55 * height) : round(0.55 * height) + s, -s:] = AMBER
        _paste(img, body, x1, y1)


@dataclass(frozen=True)
class Lamp:
    """A sodium lamp: on from `t_on` (warming up over 6 s), its brightness beating frame to frame."""

    x: float
    y: float
    radius: float  # share of the frame width
    t_on: float
    flicker: float

    def draw(self, img: Frame, t: float, rng: np.random.Generator) -> None:
        if t < self.t_on:
            return
        level = min(1.0, 0.3 + (t - self.t_on) / 6.0) * (1.0 + self.flicker * float(rng.uniform(-1, 1)))
        _glow(img, self.x, self.y, self.radius, (255, 150, 45), (255, 225, 160), level)


@dataclass(frozen=True)
class Beacon:
    x: float
    y: float
    radius: float
    hz: float
    t0: float
    t1: float

    def draw(self, img: Frame, t: float, rng: np.random.Generator) -> None:
        if self.t0 <= t < self.t1 and ((t - self.t0) * self.hz) % 1.0 < 0.5:
            _glow(img, self.x, self.y, self.radius, AMBER, (255, 235, 170), 1.0)


@dataclass(frozen=True)
class Sunset:
    t0: float
    ramp_s: float
    strength: float

    def draw(self, img: Frame, t: float, rng: np.random.Generator) -> None:
        a = self.strength * min(1.0, max(0.0, (t - self.t0) / self.ramp_s))
        if a <= 0:
            return
        h = img.shape[0]
        sky = np.linspace(1.0, 0.3, h, dtype=np.float32)[:, None, None] * a  # the sky turns most
        tint = np.array([0.3, 0.02, -0.35], dtype=np.float32)
        out = img.astype(np.float32) * (1.0 + sky * tint) + sky * np.array([60, 15, 0], dtype=np.float32)
        img[:] = np.clip(out, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Reflection:
    """A lamp's streak on a wet road: rows shifted and dimmed at random every frame (ripples)."""

    x: float
    y: float  # top of the streak
    width: float
    length: float
    t0: float

    def draw(self, img: Frame, t: float, rng: np.random.Generator) -> None:
        if t < self.t0:
            return
        h, w = img.shape[:2]
        sw, sh = max(4, round(self.width * w)), max(6, round(self.length * h))
        x0, y0 = round(self.x * w - sw / 2), round(self.y * h)
        yy = np.arange(sh, dtype=np.float32)[:, None]
        xx = np.arange(sw, dtype=np.float32)[None, :]
        shift = 0.25 * sw * np.sin(yy / 3.0 + 6.0 * t) + rng.normal(0, 0.08 * sw, (sh, 1))
        across = np.exp(-(((xx - sw / 2 - shift) / (0.3 * sw)) ** 2))
        along = np.clip(rng.uniform(0.4, 1.0, (sh, 1)) * (1.1 - yy / sh), 0, 1)
        alpha = (across * along)[..., None].astype(np.float32)
        colour = np.array([235, 140, 50], dtype=np.float32)
        _blend(img, colour, alpha, x0, y0)


Distractor = Vehicle | Lamp | Beacon | Sunset | Reflection


def _paste(img: Frame, patch: npt.NDArray[np.float32], x1: int, y1: int) -> None:
    h, w = img.shape[:2]
    ph, pw = patch.shape[:2]
    ax1, ay1, ax2, ay2 = max(0, x1), max(0, y1), min(w, x1 + pw), min(h, y1 + ph)
    if ax1 >= ax2 or ay1 >= ay2:
        return
    img[ay1:ay2, ax1:ax2] = np.clip(patch[ay1 - y1 : ay2 - y1, ax1 - x1 : ax2 - x1], 0, 255).astype(np.uint8)


def _blend(img: Frame, colour: npt.NDArray[np.float32], alpha: npt.NDArray[np.float32], x1: int, y1: int) -> None:
    h, w = img.shape[:2]
    ph, pw = alpha.shape[:2]
    ax1, ay1, ax2, ay2 = max(0, x1), max(0, y1), min(w, x1 + pw), min(h, y1 + ph)
    if ax1 >= ax2 or ay1 >= ay2:
        return
    a = alpha[ay1 - y1 : ay2 - y1, ax1 - x1 : ax2 - x1]
    region = img[ay1:ay2, ax1:ax2].astype(np.float32)
    img[ay1:ay2, ax1:ax2] = np.clip(region * (1 - a) + colour * a, 0, 255).astype(np.uint8)


def _glow(
    img: Frame, x: float, y: float, radius: float, halo: tuple[int, ...], core: tuple[int, ...], level: float
) -> None:
    """A light: a near-white core in a coloured halo that fades with distance (added light)."""
    h, w = img.shape[:2]
    r = max(2.0, radius * w)
    n = round(3 * r)
    cx, cy = round(x * w), round(y * h)
    yy, xx = np.mgrid[-n : n + 1, -n : n + 1].astype(np.float32)
    d = np.hypot(xx, yy) / r
    halo_a = np.clip(np.exp(-(d**2)) * 1.2 * level, 0, 1)[..., None]
    core_a = np.clip((1.0 - d) * 2.0 * level, 0, 1)[..., None]
    x1, y1 = cx - n, cy - n
    _blend(img, np.array(halo, dtype=np.float32), halo_a, x1, y1)
    _blend(img, np.array(core, dtype=np.float32), core_a, x1, y1)


@dataclass(frozen=True)
class NegativeCamera:
    """`minutes` of a source played back and forth, with the look-alikes of `seed` drawn in."""

    name: str
    source: str  # vtest or road
    seed: int
    minutes: float
    held_out: bool  # never looked at while the detector's thresholds were chosen
    mirror: bool = False
    gain: float = 1.0
    noise: float = 2.0
    distractors: tuple[Distractor, ...] = field(default=())


def make_camera(name: str, source: str, seed: int, minutes: float, held_out: bool) -> NegativeCamera:
    """A camera with a seeded mix of look-alikes (see the module docstring)."""
    rng = np.random.default_rng(seed)
    total = minutes * 60.0
    out: list[Distractor] = []
    t = float(rng.uniform(5, 20))
    while t < total:
        colour = [ORANGE, YELLOW, RED, *PLAIN][int(rng.integers(0, 5))]
        stops = rng.random() < 0.35
        out.append(
            Vehicle(
                colour=colour,
                lane=float(rng.uniform(0.45, 0.98)),
                size=float(rng.uniform(0.12, 0.35)),
                speed=float(rng.choice([-1, 1]) * rng.uniform(0.02, 0.3)),
                t0=t,
                stop_x=float(rng.uniform(0.2, 0.8)) if stops else None,
                stop_s=float(rng.uniform(10, 40)),
                blink_hz=float(rng.uniform(1.2, 2.0)),
            )
        )
        t += float(rng.exponential(25.0)) + 3.0
    for _ in range(int(rng.integers(1, 3))):
        lamp = Lamp(
            float(rng.uniform(0.1, 0.9)),
            float(rng.uniform(0.05, 0.5)),
            float(rng.uniform(0.01, 0.03)),
            float(rng.uniform(10, total * 0.6)),
            float(rng.uniform(0.05, 0.3)),
        )
        out.append(lamp)
        if rng.random() < 0.5:
            out.append(Reflection(lamp.x, float(rng.uniform(0.6, 0.8)), lamp.radius * 2, 0.2, lamp.t_on))
    t_b = float(rng.uniform(10, max(11.0, total - 120)))
    out.append(
        Beacon(
            float(rng.uniform(0.1, 0.9)),
            float(rng.uniform(0.3, 0.9)),
            float(rng.uniform(0.006, 0.02)),
            float(rng.uniform(1.0, 3.0)),
            t_b,
            t_b + float(rng.uniform(60, 120)),
        )
    )
    if rng.random() < 0.5:
        out.append(Sunset(float(rng.uniform(0, total / 2)), 120.0, float(rng.uniform(0.4, 1.0))))
    return NegativeCamera(
        name=name,
        source=source,
        seed=seed,
        minutes=minutes,
        held_out=held_out,
        mirror=bool(rng.random() < 0.5),
        gain=float(rng.uniform(0.7, 1.2)),
        noise=float(rng.uniform(1.0, 4.0)),
        distractors=tuple(out),
    )


def negative_cameras(quick: bool) -> list[NegativeCamera]:
    """Full: 8 cameras of 8 minutes (64 min), half on each source; quick: 2 of 4 minutes. Odd
    cameras are held out (their seeds were never run while choosing thresholds)."""
    n, minutes = (2, 4.0) if quick else (8, 8.0)
    return [
        make_camera(f"neg{i}.{src}", src, 1000 + i, minutes, held_out=i % 2 == 1)
        for i in range(n)
        for src in ["vtest" if i % 4 in (0, 3) else "road"]
    ]


def play(
    cam: NegativeCamera, source: list[Frame], fps: float
) -> Iterator[tuple[float, int, Frame]]:
    """(t, index of the source frame, frame) for the camera's length: the source back and forth,
    mirrored, with its gain drifting, its noise, and the look-alikes drawn in."""
    rng = np.random.default_rng(cam.seed + 7)
    n = len(source)
    period = max(1, 2 * n - 2)
    noise = [rng.normal(0, cam.noise, source[0].shape).astype(np.int16) for _ in range(8)]
    for k in range(round(cam.minutes * 60.0 * fps)):
        t = k / fps
        i = k % period
        i = i if i < n else period - i
        img = source[i][:, ::-1] if cam.mirror else source[i]
        g = cam.gain * (1.0 + 0.06 * math.sin(2 * math.pi * t / 47.0))  # the camera's gain drifts
        lut = np.clip(np.arange(256, dtype=np.float32) * g, 0, 255).astype(np.int16)
        out = np.clip(lut[img] + noise[k % len(noise)], 0, 255).astype(np.uint8)
        for d in cam.distractors:
            d.draw(out, t, rng)
        yield t, i, out


def mirror_box(box: Box) -> Box:
    x1, y1, x2, y2 = box
    return (1.0 - x2, y1, 1.0 - x1, y2)
