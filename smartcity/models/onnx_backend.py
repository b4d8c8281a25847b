"""ONNX detectors run by onnxruntime (an optional dependency), and the ONNX export of torch models.

`OnnxDetector` runs YOLOv8/YOLO11 exports (`[B, 4 + C, N]`) and this project's own Darknet
exports (`[B, N, 5 + C]`). Class names come from the config, else from the model's metadata
(`names`: a JSON list, or the `{0: 'person', ...}` dict Ultralytics writes).
"""

from __future__ import annotations

import ast
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from smartcity.models.base import (
    DetectorError,
    MissingDependency,
    TensorDetector,
    config_names,
    half_precision,
    resolve_device,
    setup_threads,
)
from smartcity.models.config import OnnxDetectorConfig

DEFAULT_INPUT = 640
OPSET = 17


def _onnxruntime(needed_by: str) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependency("onnxruntime", needed_by) from exc
    return onnxruntime


def parse_names(raw: str | None) -> list[str] | None:
    """Class names from model metadata: a JSON list, or a Python dict literal keyed by index."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return None
    return names_from_value(value)


def names_from_value(value: object) -> list[str] | None:
    """A list of names, or a mapping of index (int or digit string) to name covering 0..n-1."""
    if isinstance(value, dict):
        try:
            items = sorted((int(k), str(v)) for k, v in value.items())
        except (TypeError, ValueError):
            return None
        if [k for k, _ in items] != list(range(len(items))):
            return None
        return [v for _, v in items]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


class OrtRunner:
    """One onnxruntime session with a single image input; splits batches for a fixed batch size."""

    def __init__(self, model: bytes | Path, *, device: torch.device, num_threads: int, label: str) -> None:
        ort = _onnxruntime(label)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise DetectorError(f"{label}: onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
            providers: list[Any] = [("CUDAExecutionProvider", {"device_id": device.index or 0})]
        else:
            providers = ["CPUExecutionProvider"]
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(source, sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise DetectorError(f"{label}: onnxruntime cannot load the model: {exc}") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [(i.name, i.shape) for i in inputs]
            raise DetectorError(f"{label}: expected one [B, 3, H, W] input, got {shapes}")
        self.input_name: str = inputs[0].name
        self.shape: list[Any] = list(inputs[0].shape)
        self.half = inputs[0].type == "tensor(float16)"
        batch = self.shape[0]
        self.fixed_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, str] = dict(meta)

    @property
    def static_hw(self) -> tuple[int, int] | None:
        h, w = self.shape[2], self.shape[3]
        return (h, w) if isinstance(h, int) and isinstance(w, int) else None

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.detach().to("cpu", torch.float16 if self.half else torch.float32).numpy()
        n = self.fixed_batch
        if n is None or n == len(x):
            return torch.from_numpy(self.session.run(None, {self.input_name: x})[0])
        outs = []
        for start in range(0, len(x), n):
            chunk = x[start : start + n]
            if len(chunk) < n:  # a fixed-batch model gets a zero-padded last chunk
                chunk = np.concatenate([chunk, np.zeros((n - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            outs.append(self.session.run(None, {self.input_name: chunk})[0])
        return torch.from_numpy(np.concatenate(outs)[: len(x)])


class OnnxDetector(TensorDetector):
    def __init__(self, config: OnnxDetectorConfig) -> None:
        device = resolve_device(config.device)
        setup_threads(device, config.num_threads)
        half_precision(config, device)  # rejects fp16 on CPU; precision is the model file's own
        if config.bf16:
            raise DetectorError(f"{config.model}: bf16 needs a torch runtime (darknet or torchscript)")
        if not config.model.is_file():
            raise DetectorError(f"ONNX model {config.model} does not exist")
        self.runner = OrtRunner(config.model, device=device, num_threads=config.num_threads, label=str(config.model))
        static = self.runner.static_hw
        if config.rect and static is not None:
            raise DetectorError(f"{config.model}: rect needs a model with a dynamic input size, this one is fixed at {static}")
        if config.input_size is not None and static is not None and static != (config.input_size,) * 2:
            raise DetectorError(f"{config.model}: fixed input {static}, config asks for {config.input_size}")
        size = static or (config.input_size or DEFAULT_INPUT,) * 2
        names = config_names(config, parse_names(self.runner.metadata.get("names")), config.model)
        layout = config.layout if config.layout != "auto" else self.runner.metadata.get("layout", "auto")
        if layout not in ("auto", "darknet", "yolov8"):
            layout = "auto"
        super().__init__(
            config,
            names=names,
            input_size=size,
            device=device,
            input_dtype=torch.float32,
            layout=layout,
            source=config.model,
        )
        self._finish_init()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.runner.run(batch)


def export_module_onnx(
    module: nn.Module,
    input_size: tuple[int, int],
    *,
    names: list[str],
    layout: str,
    dynamic_batch: bool = True,
    dynamic_size: bool = False,
    opset: int = OPSET,
    metadata: dict[str, str] | None = None,
) -> bytes:
    """Export a float32 CPU module taking `[B, 3, H, W]` to ONNX bytes, with names/layout metadata.
    `dynamic_size`: height and width stay free (the module must compute everything it derives from
    them from the input's shape), and the yolov8 output's anchor axis with them."""
    try:
        import onnx
    except ImportError as exc:
        raise MissingDependency("onnx", "ONNX export") from exc

    example = torch.zeros((1, 3, *input_size), dtype=torch.float32)
    buf = io.BytesIO()
    axes: dict[str, dict[int, str]] = {"images": {}, "output": {}}
    if dynamic_batch:
        axes = {"images": {0: "batch"}, "output": {0: "batch"}}
    if dynamic_size:
        axes["images"].update({2: "height", 3: "width"})
        axes["output"][2 if layout == "yolov8" else 1] = "anchors"
    with warnings.catch_warnings():
        # Tracing freezes a fixed spatial size into the graph, which is intended where the input is fixed.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            (example,),
            buf,  # type: ignore[arg-type]  # the TorchScript-based exporter (dynamo=False) takes file objects
            input_names=["images"],
            output_names=["output"],
            dynamic_axes=axes if any(axes.values()) else None,
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    base = {"names": json.dumps(names), "layout": layout, "imgsz": json.dumps(list(input_size))}
    for key, value in {**base, **(metadata or {})}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return bytes(proto.SerializeToString())


def write_atomic(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
