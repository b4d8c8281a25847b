"""smartcity.privacy: what an operator may see of a camera picture (pure: numpy and an in-memory
JPEG encoder, no I/O).

`boxes` says which boxes are private (people), `mask` builds the fail-closed private mask (boxes,
predicted tracks, what moves against `background`'s model, keypoint hulls), `zones` fills a
camera's static privacy zones, `pixelate` hides, `overlay` draws the rule geometry, `picture`
composes them (pixelated or background view) and encodes evidence snapshots. The camera actors
render snapshots and evidence with it, the live views render their frames with it.
"""

from smartcity.privacy.background import BackgroundModel
from smartcity.privacy.boxes import PRIVATE_CLASSES, private_boxes
from smartcity.privacy.camera import CameraPrivacy, PrivateView
from smartcity.privacy.mask import PrivacyMask, PrivacyMasker
from smartcity.privacy.overlay import GEOMETRY_RGB, RGB, OverlayRaster, OverlayShape, Point, rasterise
from smartcity.privacy.picture import compose, encode_jpeg, render_evidence
from smartcity.privacy.pixelate import pixelate
from smartcity.privacy.zones import PrivacyZones, ZonePainter

__all__ = [
    "BackgroundModel",
    "CameraPrivacy",
    "PrivateView",
    "PrivacyMask",
    "PrivacyMasker",
    "PrivacyZones",
    "ZonePainter",
    "GEOMETRY_RGB",
    "PRIVATE_CLASSES",
    "RGB",
    "OverlayRaster",
    "OverlayShape",
    "Point",
    "compose",
    "encode_jpeg",
    "pixelate",
    "private_boxes",
    "rasterise",
    "render_evidence",
]
