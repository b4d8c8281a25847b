"""A pinhole camera over the SUMO world, and the 2D boxes of the 3D boxes of road users.

World frame: SUMO's, x east, y north, z up, metres. Camera: position (x, y, height), yaw as a
compass heading of the optical axis (0 = north = +y, 90 = east, like SUMO angles), pitch =
tilt below the horizon, horizontal field of view, resolution. Image: x right, y down, pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

NEAR_M = 0.5  # a corner closer than this along the optical axis is behind (or at) the lens
MIN_VISIBLE = 0.5  # share of a box that must be inside the image for the object to be seen at all
MIN_SIDE_PX = 6.0  # smaller boxes are below what a detector resolves


@dataclass(frozen=True, slots=True)
class Camera:
    x: float
    y: float
    height: float = 8.0
    yaw_deg: float = 0.0
    pitch_deg: float = 20.0
    hfov_deg: float = 70.0
    width: int = 1280
    height_px: int = 720

    @classmethod
    def looking_at(cls, x: float, y: float, target: tuple[float, float], *, height: float = 8.0,
                   hfov_deg: float = 70.0, width: int = 1280, height_px: int = 720) -> Camera:
        """A camera at (x, y, height) whose optical axis meets the ground at `target`."""
        dx, dy = target[0] - x, target[1] - y
        return cls(x=x, y=y, height=height, yaw_deg=math.degrees(math.atan2(dx, dy)),
                   pitch_deg=math.degrees(math.atan2(height, math.hypot(dx, dy))), hfov_deg=hfov_deg,
                   width=width, height_px=height_px)

    @property
    def focal_px(self) -> float:
        return (self.width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)

    def axes(self) -> tuple[F64, F64, F64]:
        """Unit vectors (right, down, forward) of the camera in the world frame."""
        yaw, pitch = math.radians(self.yaw_deg), math.radians(self.pitch_deg)
        fwd = np.array([math.sin(yaw) * math.cos(pitch), math.cos(yaw) * math.cos(pitch), -math.sin(pitch)])
        right = np.array([math.cos(yaw), -math.sin(yaw), 0.0])
        down = np.cross(fwd, right)
        return right, down, fwd

    def project(self, pts: F64) -> tuple[F64, F64, F64]:
        """(u, v, depth) of world points (..., 3); u, v in pixels, depth along the optical axis (m)."""
        right, down, fwd = self.axes()
        rel = pts - np.array([self.x, self.y, self.height])
        depth = rel @ fwd
        safe = np.where(depth > 1e-6, depth, 1e-6)
        f = self.focal_px
        u = self.width / 2.0 + f * (rel @ right) / safe
        v = self.height_px / 2.0 + f * (rel @ down) / safe
        return u, v, depth

    def ground_to_norm(self, gx: float, gy: float) -> tuple[float, float]:
        """Normalised image point [0, 1] of a ground point (for drawing rules)."""
        u, v, depth = self.project(np.array([[gx, gy, 0.0]]))
        if depth[0] <= NEAR_M:
            raise ValueError(f"ground point ({gx}, {gy}) is behind the camera")
        return float(u[0]) / self.width, float(v[0]) / self.height_px

    def to_dict(self) -> dict[str, float | int]:
        return {"x": self.x, "y": self.y, "height_m": self.height, "yaw_deg": round(self.yaw_deg, 3),
                "pitch_deg": round(self.pitch_deg, 3), "hfov_deg": self.hfov_deg, "focal_px": round(self.focal_px, 2),
                "width": self.width, "height": self.height_px}


@dataclass(frozen=True, slots=True)
class Boxes2D:
    """2D boxes of many objects: clipped to the image, with what the camera could see of them."""

    box: F64  # (n, 4) x1, y1, x2, y2 clipped to the image, pixels
    depth: F64  # (n,) depth of the box centre along the optical axis (m): occlusion order
    visible: npt.NDArray[np.bool_]  # in front of the lens, mostly inside the image, big enough

    def ground_points(self, width: int, height: int) -> tuple[F64, F64]:
        """Normalised bottom-centre points, exactly what the rules take from a box."""
        return (self.box[:, 0] + self.box[:, 2]) * (0.5 / width), self.box[:, 3] * (1.0 / height)


def box_corners(cx: F64, cy: F64, heading_deg: F64, length: F64, width: F64, height: F64) -> F64:
    """(n, 8, 3) world corners of boxes centred on (cx, cy) at ground level, long axis along heading."""
    a = np.radians(heading_deg)
    fx, fy = np.sin(a), np.cos(a)  # forward (compass heading)
    rx, ry = fy, -fx  # right of forward
    out = np.empty((len(cx), 8, 3))
    k = 0
    for sl in (0.5, -0.5):
        for sw in (0.5, -0.5):
            for z in (0.0, 1.0):
                out[:, k, 0] = cx + sl * length * fx + sw * width * rx
                out[:, k, 1] = cy + sl * length * fy + sw * width * ry
                out[:, k, 2] = z * height
                k += 1
    return out


def project_boxes(cam: Camera, corners: F64) -> Boxes2D:
    """Project (n, 8, 3) corners; take the 2D bounding box; clip; judge visibility."""
    u, v, depth = cam.project(corners)
    front = depth.min(axis=1) > NEAR_M
    raw = np.stack((u.min(axis=1), v.min(axis=1), u.max(axis=1), v.max(axis=1)), axis=1)
    clip = raw.copy()
    clip[:, [0, 2]] = np.clip(raw[:, [0, 2]], 0.0, cam.width)
    clip[:, [1, 3]] = np.clip(raw[:, [1, 3]], 0.0, cam.height_px)
    area_raw = np.maximum(raw[:, 2] - raw[:, 0], 1e-9) * np.maximum(raw[:, 3] - raw[:, 1], 1e-9)
    area = (clip[:, 2] - clip[:, 0]) * (clip[:, 3] - clip[:, 1])
    visible = (
        front
        & (area / area_raw >= MIN_VISIBLE)
        & (clip[:, 2] - clip[:, 0] >= MIN_SIDE_PX)
        & (clip[:, 3] - clip[:, 1] >= MIN_SIDE_PX)
    )
    return Boxes2D(box=clip, depth=depth.mean(axis=1), visible=visible)


_GRID = (np.arange(6) + 0.5) / 6.0  # 6 x 6 sample points per box for the occlusion estimate


def occluded_share(box: F64, depth: F64) -> F64:
    """Share of each box hidden behind the union of the boxes nearer to the camera (sampled)."""
    n = len(box)
    out = np.zeros(n)
    if n < 2:
        return out
    gx = box[:, 0:1] + (box[:, 2:3] - box[:, 0:1]) * _GRID[None, :]  # (n, 6)
    gy = box[:, 1:2] + (box[:, 3:4] - box[:, 1:2]) * _GRID[None, :]
    px = np.repeat(gx, 6, axis=1)  # (n, 36)
    py = np.tile(gy, (1, 6))
    nearer = depth[None, :] < depth[:, None]  # [i, j]: j is nearer than i
    for i in np.nonzero(nearer.any(axis=1))[0]:
        b = box[nearer[i]]
        inside = (
            (px[i][:, None] >= b[None, :, 0]) & (px[i][:, None] <= b[None, :, 2])
            & (py[i][:, None] >= b[None, :, 1]) & (py[i][:, None] <= b[None, :, 3])
        )
        out[i] = inside.any(axis=1).mean()
    return out
