"""TorchScript detectors (`torch.jit.load`), in either raw output layout.

Class names and input size come from the config, else from the `config.txt` extra file that
Ultralytics TorchScript exports and `export_torchscript` write (`{"names": ..., "imgsz": ...}`).
"""

from __future__ import annotations

import json
from typing import Any

import torch

from smartcity.models.base import (
    DetectorError,
    TensorDetector,
    bf16_precision,
    compute_dtype,
    config_names,
    half_precision,
    resolve_device,
    setup_threads,
)
from smartcity.models.config import TorchScriptDetectorConfig
from smartcity.models.onnx_backend import DEFAULT_INPUT, names_from_value

EXTRA_FILE = "config.txt"


class TorchScriptDetector(TensorDetector):
    def __init__(self, config: TorchScriptDetectorConfig) -> None:
        device = resolve_device(config.device)
        setup_threads(device, config.num_threads)
        half = half_precision(config, device)
        # a user's own network gets bfloat16 only when asked: its numerics are unknown here
        bf16 = bool(config.bf16) and bf16_precision(config, device)
        if not config.model.is_file():
            raise DetectorError(f"TorchScript model {config.model} does not exist")
        extra = {EXTRA_FILE: ""}
        try:
            module = torch.jit.load(str(config.model), map_location=device, _extra_files=extra)
        except RuntimeError as exc:
            raise DetectorError(f"{config.model}: not a TorchScript file: {exc}") from exc
        meta = _metadata(extra[EXTRA_FILE])
        module.eval()
        dtype = compute_dtype(half=half, bf16=bf16)
        self.module = module.to(dtype)
        embedded = names_from_value(meta.get("names"))
        size = _imgsz(meta.get("imgsz"))
        if config.input_size is not None:
            size = (config.input_size, config.input_size)
        layout = config.layout
        if layout == "auto" and meta.get("layout") in ("darknet", "yolov8"):
            layout = meta["layout"]
        super().__init__(
            config,
            names=config_names(config, embedded, config.model),
            input_size=size or (DEFAULT_INPUT, DEFAULT_INPUT),
            device=device,
            input_dtype=dtype,
            layout=layout,
            source=config.model,
        )
        self._finish_init()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.module(batch)
        if isinstance(out, (tuple, list)):  # some exports also return feature maps
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise DetectorError(f"{self.source}: forward returned {type(out).__name__}, expected a tensor")
        return out


def _metadata(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _imgsz(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (value[0], value[1])
    return None
