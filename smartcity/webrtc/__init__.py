"""Live views over WebRTC (aiortc): one shared encoder per camera, people pixelated by default.

The app builds one `LiveViewHub(provider, LiveViewConfig)`; the GraphQL signalling mutation calls
`hub.answer(camera_id, offer_sdp, pixelate=..., overlay=...)`; the app's lifespan calls `hub.close()`.
"""

from smartcity.webrtc.config import IceServerConfig, LiveViewConfig
from smartcity.webrtc.hub import LiveViewHub, choose_codec
from smartcity.webrtc.types import (
    CameraLiveStats,
    FrameProvider,
    InvalidOffer,
    LiveFrame,
    LiveViewError,
    LiveViewStats,
    OverlayShape,
    TooManyViewers,
)

__all__ = [
    "CameraLiveStats",
    "FrameProvider",
    "IceServerConfig",
    "InvalidOffer",
    "LiveFrame",
    "LiveViewConfig",
    "LiveViewError",
    "LiveViewHub",
    "LiveViewStats",
    "OverlayShape",
    "TooManyViewers",
    "choose_codec",
]
