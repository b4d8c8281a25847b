"""Camera sources: RTSP, HTTP, file and demo streams decoded with PyAV, with health and reconnects.

The Ray camera-group actor runs one `CameraSource` per camera; each decodes in its own thread.
"""

from smartcity.sources.camera import CameraSource
from smartcity.sources.clips import demo_video_path, generate_test_clip, read_frame_counter
from smartcity.sources.options import Backoff, SourceOptions
from smartcity.sources.target import Target, describe_open_error, resolve_target
from smartcity.sources.types import Frame, SourceHealth

__all__ = [
    "Backoff",
    "CameraSource",
    "Frame",
    "SourceHealth",
    "SourceOptions",
    "Target",
    "demo_video_path",
    "describe_open_error",
    "generate_test_clip",
    "read_frame_counter",
    "resolve_target",
]
