"""The pipeline every tensor detector backend shares: letterbox, forward, decode, NMS.

A backend subclasses `TensorDetector` and implements `forward` (a `[B, 3, H, W]` batch in
[0, 1] to the model's raw output); the base class turns raw outputs of either layout into
`Detection`s in the pixels of the frames it was given.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from smartcity.core.vision import Detection
from smartcity.models.config import DetectorConfigBase
from smartcity.models.ops import letterbox, postprocess, rect_input_size

# Detector and MissingDependency are re-exported: the role protocols and errors live in models.roles
from smartcity.models.roles import Detector as Detector
from smartcity.models.roles import MissingDependency as MissingDependency
from smartcity.models.roles import ModelError

PAD_VALUES = {"darknet": 127, "yolov8": 114}
"""Letterbox border grey each family was trained with (Darknet: 0.5, Ultralytics: 114)."""


DetectorError = ModelError
"""A detector that cannot be created (missing file, unknown class, device...) or run (the name
detector code has always raised; the error of every model role is models.roles.ModelError)."""


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise DetectorError(f"device {spec!r} requested but CUDA is not available to torch {torch.__version__}")
    return torch.device(spec)


def read_names(path: Path) -> list[str]:
    """One class name per line; blank lines and surrounding spaces ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DetectorError(f"cannot read class names {path}: {exc}") from exc
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise DetectorError(f"class names file {path} is empty")
    return names


def config_names(config: DetectorConfigBase, embedded: list[str] | None, model: object) -> list[str]:
    """The class map: `names`, else `names_file`, else the names the model file carries."""
    if config.names is not None:
        return list(config.names)
    if config.names_file is not None:
        return read_names(config.names_file)
    if embedded:
        return embedded
    raise DetectorError(f"{model}: no class names in the model file; give names or names_file")


def split_raw(raw: torch.Tensor, layout: str, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw model output to `[B, N, 4]` cxcywh boxes and `[B, N, C]` class confidences."""
    if layout == "darknet":
        return raw[..., :4], raw[..., 4:5] * raw[..., 5:]
    rows = raw.transpose(1, 2)
    return rows[..., :4], rows[..., 4:]


def detect_layout(shape: Sequence[int], num_classes: int, model: object) -> str:
    if len(shape) == 3:
        darknet = shape[2] == 5 + num_classes
        yolov8 = shape[1] == 4 + num_classes
        if darknet != yolov8:
            return "darknet" if darknet else "yolov8"
        if darknet:
            raise DetectorError(f"{model}: output {list(shape)} fits both layouts; set layout")
    raise DetectorError(
        f"{model}: output shape {list(shape)} matches neither [B, N, 5 + {num_classes}] (darknet) nor "
        f"[B, 4 + {num_classes}, N] (yolov8) for {num_classes} class names"
    )


class TensorDetector:
    """Shared detect() pipeline; subclasses provide `forward` and call `_finish_init` last."""

    def __init__(
        self,
        config: DetectorConfigBase,
        *,
        names: list[str],
        input_size: tuple[int, int],
        device: torch.device,
        input_dtype: torch.dtype,
        layout: str,
        source: object,
    ) -> None:
        self.config = config
        self._names = [config.rename.get(n, n) for n in names]
        self._input_size = input_size
        self._device = device
        self._input_dtype = input_dtype
        self.layout = layout
        self.source = source
        self.pad_value = 0  # settled with the layout in _finish_init
        self.rect = bool(config.rect)  # a subclass whose network takes any size may default it on
        self.class_ids = self._class_ids(config.classes)
        self.class_groups = self._class_groups(config.suppress_across)

    @property
    def names(self) -> list[str]:
        return self._names

    @property
    def input_size(self) -> tuple[int, int]:
        return self._input_size

    @property
    def device(self) -> str:
        return str(self._device)

    def _class_ids(self, classes: list[str] | None) -> torch.Tensor | None:
        if classes is None:
            return None
        unknown = sorted(set(classes) - set(self._names))
        if unknown:
            raise DetectorError(
                f"{self.source}: classes {unknown} are not in the model's class map "
                f"({len(self._names)} names: {', '.join(self._names[:12])}{'...' if len(self._names) > 12 else ''})"
            )
        wanted = set(classes)
        ids = [i for i, n in enumerate(self._names) if n in wanted]
        return torch.tensor(ids, dtype=torch.long, device=self._device)

    def _class_groups(self, groups: list[list[str]]) -> torch.Tensor | None:
        """Class index -> NMS group: a group's classes share the index of its first class present."""
        if not groups:
            return None
        index = {n: i for i, n in enumerate(self._names)}
        unknown = sorted({c for g in groups for c in g} - set(index))
        if unknown:
            raise DetectorError(
                f"{self.source}: suppress_across names classes {unknown} that are not in the class map"
            )
        table = list(range(len(self._names)))
        for g in groups:
            first = min(index[c] for c in g)
            for c in g:
                table[index[c]] = first
        return torch.tensor(table, dtype=torch.long, device=self._device)

    def _finish_init(self) -> None:
        """Run one blank batch: checks the output shape, settles `layout` and warms the runtime up."""
        blank = torch.zeros((1, 3, *self._input_size), dtype=self._input_dtype, device=self._device)
        with torch.inference_mode():
            raw = self.forward(blank)
        if self.layout == "auto":
            self.layout = detect_layout(tuple(raw.shape), len(self._names), self.source)
        if self.config.pad_value is not None:
            self.pad_value = self.config.pad_value
        else:
            self.pad_value = PAD_VALUES[self.layout]
        expected = 5 + len(self._names) if self.layout == "darknet" else 4 + len(self._names)
        got = raw.shape[2] if self.layout == "darknet" else raw.shape[1]
        if raw.ndim != 3 or got != expected:
            raise DetectorError(
                f"{self.source}: output shape {list(raw.shape)} does not fit layout {self.layout!r} "
                f"with {len(self._names)} class names"
            )

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """`[B, 3, H, W]` input in [0, 1] to the raw output of the model's layout."""
        raise NotImplementedError

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        if len(frames) == 0:
            return []
        cfg = self.config
        size = rect_input_size(frames, self._input_size) if self.rect else self._input_size
        with torch.inference_mode():
            batch, boxes = letterbox(frames, size, device=self._device, dtype=self._input_dtype, fill=self.pad_value)
            raw = self.forward(batch)
            if raw.dtype == torch.bfloat16:  # boxes decoded in float32: bf16 has 2 px steps at 300 px
                raw = raw.float()
            xywh, scores = split_raw(raw, self.layout, len(self._names))
            return postprocess(
                xywh,
                scores,
                boxes,
                self._names,
                conf_threshold=cfg.conf_threshold,
                nms_iou=cfg.nms_iou,
                max_detections=cfg.max_detections,
                class_ids=self.class_ids.to(xywh.device) if self.class_ids is not None else None,
                class_groups=self.class_groups.to(xywh.device) if self.class_groups is not None else None,
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source}, device={self.device}, input={self._input_size})"


def setup_threads(device: torch.device, num_threads: int) -> None:
    """CPU inference uses the configured thread count (process-wide in torch)."""
    if device.type == "cpu" and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)


@functools.cache
def cpu_has_amx_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware tiles (AMX): bf16 inference pays there."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def bf16_precision(config: DetectorConfigBase, device: torch.device) -> bool:
    """Whether a torch detector runs in bfloat16: as configured, else on CPUs with AMX."""
    if config.bf16 and device.type != "cpu":
        raise DetectorError(f"bf16 is for CPU inference, the detector runs on {device}: use fp16")
    if config.bf16 is not None:
        return config.bf16
    return device.type == "cpu" and not config.fp16 and cpu_has_amx_bf16()


def compute_dtype(*, half: bool, bf16: bool) -> torch.dtype:
    """The weights' and input's dtype for the precision chosen."""
    return torch.float16 if half else torch.bfloat16 if bf16 else torch.float32


def half_precision(config: DetectorConfigBase, device: torch.device) -> bool:
    if config.fp16 and device.type != "cuda":
        raise DetectorError(f"fp16 needs a CUDA device, the detector runs on {device}")
    return config.fp16 if config.fp16 is not None else device.type == "cuda"
