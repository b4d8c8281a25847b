"""The size of what a live viewer sees: the largest even size within the configured limits.

Pixelation, overlays and composing the picture are `smartcity.privacy`'s (shared with snapshots
and evidence); the encoder module turns the pictures into packets.
"""

from __future__ import annotations


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest even size within the limits that keeps the aspect ratio (never upscales)."""
    scale = min(1.0, max_width / width, max_height / height)
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return w, h
