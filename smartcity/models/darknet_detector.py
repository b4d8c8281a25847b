"""The `darknet` detector (default: the installed YOLOv3-tiny) and its ONNX / TorchScript exports.

The network is this project's torch implementation of the Darknet cfg. On CPU it can run
through onnxruntime on an ONNX export made in memory at start-up; `runtime: auto` takes the
engine that bench/infer.py measured faster: torch in bfloat16 on CPUs with AMX, else
`CPU_RUNTIME` (float32), torch on CUDA.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from smartcity.models.base import (
    DetectorError,
    TensorDetector,
    bf16_precision,
    compute_dtype,
    half_precision,
    read_names,
    resolve_device,
    setup_threads,
)
from smartcity.models.config import DarknetDetectorConfig
from smartcity.models.darknet import DarknetCfg, DarknetModel, build_darknet
from smartcity.models.install import DEFAULT_CFG, DEFAULT_NAMES, DEFAULT_WEIGHTS, default_model_dir
from smartcity.models.onnx_backend import OrtRunner, export_module_onnx, write_atomic
from smartcity.models.torchscript_backend import EXTRA_FILE

CPU_RUNTIME = "onnxruntime"
"""The faster CPU engine for YOLOv3-tiny according to bench/infer.py (see its JSON output)."""


@dataclass(frozen=True, slots=True)
class DarknetFiles:
    cfg: Path
    weights: Path
    names: list[str]


def resolve_files(config: DarknetDetectorConfig, model_dir: Path | None = None) -> DarknetFiles:
    """The cfg, weights and class names a config points at (the installed default when unset)."""
    if config.cfg is None or config.weights is None:
        base = Path(model_dir) if model_dir is not None else default_model_dir()
        cfg, weights = base / DEFAULT_CFG, base / DEFAULT_WEIGHTS
        names_file: Path | None = config.names_file or base / DEFAULT_NAMES
        missing = [p.name for p in (cfg, weights, names_file) if p is not None and not p.is_file()]
        if missing:
            raise DetectorError(
                f"YOLOv3-tiny is not installed in {base} (missing {', '.join(missing)}): "
                "run `smartcity models install --model yolov3-tiny`"
            )
    else:
        cfg, weights = config.cfg, config.weights
        names_file = config.names_file
        for p in (cfg, weights):
            if not p.is_file():
                raise DetectorError(f"darknet model file {p} does not exist")
    if config.names is not None:
        names = list(config.names)
    elif names_file is not None:
        names = read_names(names_file)
    else:
        raise DetectorError(f"{cfg}: a Darknet model carries no class names; give names or names_file")
    return DarknetFiles(cfg, weights, names)


YOLOV3_TINY_ANCHORS = (10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319)


def check_anchor_masks(cfg: DarknetCfg, source: Path) -> None:
    """Refuse the YOLOv3-tiny cfg whose second [yolo] layer says `mask = 0,1,2` (it halves its boxes).

    That is the cfg `smartcity models install` wrote before it corrected it (see
    install.CFG_MASK_FIX). Refused rather than repaired here: the detector reads the model
    directory, it does not write it (it may be read-only or shared by several workers), and the
    installer is the one place that verifies what it writes.
    """
    yolos = [sec for sec in cfg.layers if sec.type == "yolo"]
    if len(yolos) != 2 or any(tuple(sec.integers("anchors", "")) != YOLOV3_TINY_ANCHORS for sec in yolos):
        return
    second = yolos[1]
    if second.integers("mask", "") == [0, 1, 2]:
        raise DetectorError(
            f"{source}: {second.where('mask')} is `0,1,2`, but the YOLOv3-tiny weights were trained with "
            "`1,2,3` there (with 0,1,2 its boxes come out half size): run "
            "`smartcity models install --model yolov3-tiny` to correct the installed cfg"
        )


def load_model(files: DarknetFiles) -> DarknetModel:
    model = build_darknet(files.cfg, files.weights)
    check_anchor_masks(model.cfg, files.cfg)
    if model.num_classes != len(files.names):
        raise DetectorError(
            f"{files.cfg}: the network has {model.num_classes} classes but the class map has {len(files.names)}"
        )
    return model


def _onnx_available() -> bool:
    """Both halves of the onnxruntime path (export needs `onnx`) import; else auto falls back to torch."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _input_size(config: DarknetDetectorConfig, model: DarknetModel) -> tuple[int, int]:
    return (config.input_size,) * 2 if config.input_size is not None else model.input_size


class DarknetDetector(TensorDetector):
    def __init__(self, config: DarknetDetectorConfig, *, model_dir: Path | None = None) -> None:
        device = resolve_device(config.device)
        setup_threads(device, config.num_threads)
        half = half_precision(config, device)
        bf16 = bf16_precision(config, device)
        files = resolve_files(config, model_dir)
        model = load_model(files)
        size = _input_size(config, model)
        runtime: str = config.runtime
        if runtime == "auto":
            runtime = "torch" if device.type == "cuda" or bf16 or not _onnx_available() else CPU_RUNTIME
        self.runtime = runtime
        self.runner: OrtRunner | None = None
        self.model: DarknetModel | None = None
        if runtime == "onnxruntime":
            if half or bf16:
                if config.bf16 or config.fp16:
                    raise DetectorError(f"{'fp16' if half else 'bf16'} is only available with runtime torch")
                half = bf16 = False  # the CUDA and AMX defaults do not apply to onnxruntime
            onnx_bytes = export_module_onnx(model, size, names=files.names, layout="darknet")
            self.runner = OrtRunner(onnx_bytes, device=device, num_threads=config.num_threads, label=str(files.cfg))
        dtype = compute_dtype(half=half, bf16=bf16)
        if self.runner is None:
            # channels-last convolutions run ~1.7x faster on CPU (oneDNN) and suit tensor cores.
            self.model = model.to(device, dtype).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        super().__init__(
            config,
            names=files.names,
            input_size=size,
            device=device,
            input_dtype=dtype,
            layout="darknet",
            source=files.cfg,
        )
        # our torch network takes any multiple of 32; the in-memory ONNX export is fixed-size
        self.rect = config.rect if config.rect is not None else self.model is not None
        if self.rect and self.model is None:
            raise DetectorError("rect needs runtime torch (the onnxruntime export has a fixed input size)")
        self._finish_init()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if self.runner is not None:
            return self.runner.run(batch)
        assert self.model is not None
        out: torch.Tensor = self.model(batch.contiguous(memory_format=torch.channels_last))
        return out

    def __repr__(self) -> str:
        return (
            f"DarknetDetector({self.source}, runtime={self.runtime}, device={self.device}, "
            f"dtype={str(self._input_dtype).removeprefix('torch.')}, input={self.input_size}, rect={self.rect})"
        )


def export_onnx(
    config: DarknetDetectorConfig, out_path: Path, *, model_dir: Path | None = None, dynamic_batch: bool = True
) -> Path:
    """Write the Darknet network of `config` as ONNX (`[B, N, 5 + C]`, class names in metadata).

    The file loads with `OnnxDetectorConfig(model=out_path)` and no further settings.
    """
    files = resolve_files(config, model_dir)
    model = load_model(files)
    data = export_module_onnx(
        model, _input_size(config, model), names=files.names, layout="darknet", dynamic_batch=dynamic_batch
    )
    return write_atomic(out_path, data)


def export_torchscript(config: DarknetDetectorConfig, out_path: Path, *, model_dir: Path | None = None) -> Path:
    """Write the Darknet network of `config` as traced TorchScript with its class names and input size."""
    files = resolve_files(config, model_dir)
    model = load_model(files)
    size = _input_size(config, model)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the input size is fixed on purpose
        traced = torch.jit.trace(model, torch.zeros((1, 3, *size)), check_trace=False)
    extra = {EXTRA_FILE: json.dumps({"names": files.names, "imgsz": list(size), "layout": "darknet"})}
    buf = io.BytesIO()
    torch.jit.save(traced, buf, _extra_files=extra)
    return write_atomic(out_path, buf.getvalue())
