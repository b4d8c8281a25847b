"""One camera's privacy in its actor: the masker fed with every analysed frame, the camera's
privacy zones and its view mode, and the pictures that may leave the actor (zones filled in
every one of them, the admin's clear view included)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smartcity.core.privacy_config import PrivacyConfig, ViewMode
from smartcity.core.privacy_mask import PrivacyMask
from smartcity.core.vision import Detection, Track
from smartcity.privacy.mask import PrivacyMasker
from smartcity.privacy.overlay import OverlayShape
from smartcity.privacy.picture import render_evidence
from smartcity.privacy.zones import PrivacyZones, ZonePainter


@dataclass(frozen=True, slots=True, eq=False)
class PrivateView:
    """A picture ready to leave the actor: zones filled; `mask` None hides it whole; `background`
    (zones filled too) set in background mode."""

    image: np.ndarray
    mask: PrivacyMask | None
    background: np.ndarray | None


class CameraPrivacy:
    def __init__(
        self, config: PrivacyConfig, zones: PrivacyZones = PrivacyZones(), view: ViewMode | None = None
    ) -> None:
        self.config = config
        self.masker = PrivacyMasker(config.mask, config.background)
        self.painter = ZonePainter(zones)
        self.view: ViewMode = view or config.default_view

    def set_zones(self, zones: PrivacyZones, view: ViewMode | None) -> None:
        """New zones or view mode, live: the masker (and its learned background) is kept."""
        if zones != self.painter.zones:
            self.painter = ZonePainter(zones)
        self.view = view or self.config.default_view

    def observe(
        self,
        image: np.ndarray,
        t: float,
        shown: Sequence[Detection],
        tracks: Sequence[Track],
        *,
        detected: bool,
    ) -> PrivacyMask | None:
        """The mask of one analysed frame; `detected`: the detector's answer for this frame (or
        its previous one, nothing having moved) rather than the tracker's predictions."""
        if detected:
            self.masker.detector_answered(t)
        return self.masker.update(image, t, shown, tracks)

    def view_of(self, image: np.ndarray, mask: PrivacyMask | None) -> PrivateView:
        """What may leave the actor of `image` and its mask (None: hide it all)."""
        background = None
        if self.view == "background" and mask is not None:
            bg = self.masker.background.background()
            background = None if bg is None else self.painter.paint(bg)
        return PrivateView(self.painter.paint(image), mask, background)

    def evidence(
        self,
        image: np.ndarray,
        geometry: Sequence[OverlayShape | Sequence[Sequence[float]]],
        mask: PrivacyMask | None,
    ) -> bytes:
        """An evidence JPEG: zones filled, the private mask pixelated (evidence is always the
        pixelated picture, never the background view: it records what happened)."""
        return render_evidence(self.painter.paint(image), geometry, mask)
