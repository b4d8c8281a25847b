"""smartcity.privacy: what an operator may see of a camera picture (pure: numpy and an in-memory
JPEG encoder, no I/O).

`boxes` says which boxes are private (people), `pixelate` hides them, `overlay` draws the rule
geometry, `picture` composes the three and encodes evidence snapshots. The camera actors render
snapshots and evidence with it, the live views render their frames with it.
"""

from smartcity.privacy.boxes import PRIVATE_CLASSES, private_boxes
from smartcity.privacy.overlay import GEOMETRY_RGB, RGB, OverlayRaster, OverlayShape, Point, rasterise
from smartcity.privacy.picture import compose, encode_jpeg, render_evidence
from smartcity.privacy.pixelate import pixelate

__all__ = [
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
