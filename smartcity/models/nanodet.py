"""The `nanodet` detector: NanoDet-g 416 (COCO, Apache-2.0 weights) from its TF.js graph, and its decoder.

The graph (`smartcity models install --model nanodet-g`) is converted at start-up by
`tfjs_graph.GraphModule`; `NanoDetNet` wraps it with what the graph leaves out, so that the
torch module and its ONNX export both take the `[B, 3, H, W]` RGB input in [0, 1] that
every detector gets (H and W multiples of 32 up to 416: rectangular inference, `rect`, on by
default; the anchors follow the input's shape) and return the `yolov8` layout (`[B, 4 + 80, N]`, centre-size boxes in
input pixels, class scores) that `TensorDetector` decodes:

- normalisation: BGR channel order, `(pixel - mean) / std` with NanoDet's ImageNet constants;
- distribution-focal boxes: per anchor and side (left, top, right, bottom) a softmax over
  `REG_MAX + 1` bins whose expectation, times the stride, is the distance from the anchor;
- anchors at cell centres, `((col + 0.5) * stride, (row + 0.5) * stride)`: measured against the
  by-eye boxes of tests/data/annotations (every 4th annotated frame), without the offset the
  matched boxes sit 7-8 px up and left of the truth on both videos (29 of 59 vtest persons at
  IoU >= 0.5), with it 0.4-1.8 px (55 of 59).

Frames are letterboxed to the square input (stretching them loses vehicles seen from above)
with black borders, as NanoDet was trained. `suppress_across` (default car, truck, bus) makes
one NMS group of classes the network confuses on one vehicle.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

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
from smartcity.models.config import NanoDetDetectorConfig
from smartcity.models.install_nanodet import NANODET_JSON, installed_nanodet
from smartcity.models.onnx_backend import OrtRunner, export_module_onnx, write_atomic
from smartcity.models.tfjs_graph import GraphModule, TfjsGraph, read_graph

REG_MAX = 10
"""Distribution-focal regression: each box side is a distribution over REG_MAX + 1 bins."""
MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)
PAD_VALUE = 0
CENTRE_OFFSET = 0.5
"""Anchor points sit at cell centres (see the module docstring for the measurement)."""
ONNX_FILE = "nanodet-g.onnx"
"""The ONNX export `smartcity models install` writes next to the graph (start-up in 0.6 s instead of
the 5 s an in-memory export takes: a restarted inference actor is back sooner)."""
CONVERTER_VERSION = "2"
"""Bump when tfjs_graph or NanoDetNet changes what the network computes: an export written by another
version is ignored (and the network exported in memory) until the next install rewrites it."""
CPU_RUNTIME = "onnxruntime"
"""The faster CPU engine for NanoDet-g in float32 according to bench/detector.py."""

COCO_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
"""The 80 COCO classes in training order (the graph carries no names)."""


class NanoDetNet(nn.Module):
    """Normalisation + the converted graph + the distribution-focal decoder, `[B, 84, N]` out.

    The graph's resizes are scaled to their inputs (`GraphModule.any_size`), so the network takes
    any input whose sides are multiples of 32 up to its 416x416: the anchors are laid out from the
    input's shape at each call (traced from it in an ONNX export with free height and width)."""

    mean: torch.Tensor
    std: torch.Tensor
    bins: torch.Tensor

    def __init__(self, graph: TfjsGraph, num_classes: int = len(COCO_NAMES)) -> None:
        super().__init__()
        self.graph = GraphModule(graph)
        _, _, height, width = graph.input_shape
        self.input_size = (height, width)
        bins = 4 * (REG_MAX + 1)
        cls_out: dict[int, int] = {}
        reg_out: dict[int, int] = {}
        for k, name in enumerate(graph.outputs):
            shape = graph.output_shapes[name]
            if len(shape) != 3 or shape[2] not in (num_classes, bins):
                raise DetectorError(
                    f"graph output {name} {list(shape)}: expected [1, N, {num_classes} or {bins}]"
                )
            (cls_out if shape[2] == num_classes else reg_out)[shape[1]] = k
        if sorted(cls_out) != sorted(reg_out) or not cls_out:
            raise DetectorError(
                f"graph outputs {list(graph.output_shapes.values())}: class and box heads do not pair up"
            )
        counts = sorted(cls_out, reverse=True)  # finest stride first
        self.order = [(cls_out[n], reg_out[n]) for n in counts]
        self.head_strides: list[int] = []
        for n in counts:
            side = math.isqrt(n)
            stride = width // side
            if side * side != n or stride * side != width or height != width:
                raise DetectorError(f"graph head of {n} anchors does not tile a {height}x{width} input")
            self.head_strides.append(stride)
        self.register_buffer("mean", torch.tensor(MEAN_BGR).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD_BGR).view(1, 3, 1, 1))
        self.register_buffer("bins", torch.arange(REG_MAX + 1, dtype=torch.float32))

    @property
    def any_size(self) -> bool:
        """The graph runs on any input size (its resizes are scales of their inputs)."""
        return self.graph.any_size

    def anchors(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`[N, 2]` anchor points (cell centres, input pixels) and `[N, 1]` strides for the input's
        height and width, finest stride first, each head's cells row by row as its output lists them."""
        centres, strides = [], []
        for stride in self.head_strides:
            rows = torch.arange(rgb.shape[2] // stride, device=rgb.device, dtype=torch.float32)
            cols = torch.arange(rgb.shape[3] // stride, device=rgb.device, dtype=torch.float32)
            row, col = torch.meshgrid(rows, cols, indexing="ij")
            xy = (torch.stack((col.flatten(), row.flatten()), -1) + CENTRE_OFFSET) * stride
            centres.append(xy)
            strides.append(torch.full_like(xy[:, :1], float(stride)))
        return torch.cat(centres), torch.cat(strides)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        bgr = rgb[:, [2, 1, 0]] * 255.0
        outs = self.graph((bgr - self.mean.to(bgr.dtype)) / self.std.to(bgr.dtype))
        scores = torch.cat([outs[c] for c, _ in self.order], 1).float()
        reg = torch.cat([outs[r] for _, r in self.order], 1).float()
        centres, strides = self.anchors(rgb)
        return decode(scores, reg, centres, strides, self.bins.float())


def decode(
    scores: torch.Tensor, reg: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor, bins: torch.Tensor
) -> torch.Tensor:
    """`[B, N, C]` scores and `[B, N, 4 * bins]` box logits to `[B, 4 + C, N]` (cx, cy, w, h, scores...)."""
    b, n, _ = reg.shape
    dist = (F.softmax(reg.view(b, n, 4, len(bins)), -1) * bins).sum(-1) * strides  # l, t, r, b
    x1y1 = centres - dist[..., :2]
    x2y2 = centres + dist[..., 2:]
    return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1, scores), -1).transpose(1, 2)


def resolve_graph(config: NanoDetDetectorConfig, model_dir: Path | None = None) -> Path:
    if config.model is not None:
        if not config.model.is_file():
            raise DetectorError(f"NanoDet graph {config.model} does not exist")
        return config.model
    found = installed_nanodet(model_dir)
    if found is None:
        raise DetectorError(
            f"NanoDet-g is not installed ({NANODET_JSON} missing): run `smartcity models install --model nanodet-g`"
        )
    return found


def _export(net: NanoDetNet, names: list[str]) -> bytes:
    return export_module_onnx(
        net,
        net.input_size,
        names=names,
        layout="yolov8",
        dynamic_size=net.any_size,
        metadata={"converter": CONVERTER_VERSION},
    )


def write_onnx(model_json: Path) -> Path:
    """Write (or rewrite, when another converter version wrote it) the ONNX export next to the graph."""
    target = Path(model_json).parent / ONNX_FILE
    if _export_version(target) == CONVERTER_VERSION:
        return target
    net = NanoDetNet(read_graph(model_json)).eval()
    return write_atomic(target, _export(net, list(COCO_NAMES)))


def _export_version(path: Path) -> str | None:
    """The converter version an ONNX export was written by (None: missing or unreadable)."""
    if not path.is_file():
        return None
    try:
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception:  # a truncated or foreign file: treated as absent
        return None
    return meta.get("converter")


def _written_runner(path: Path, device: torch.device, num_threads: int) -> OrtRunner | None:
    """A session on the install-time export when it is there, loads, and this converter wrote it
    (read from the session's metadata: no `onnx` import, no second parse of the file)."""
    if not path.is_file():
        return None
    try:
        runner = OrtRunner(path, device=device, num_threads=num_threads, label=str(path))
    except DetectorError:  # damaged: exported again in memory
        return None
    return runner if runner.metadata.get("converter") == CONVERTER_VERSION else None


def _onnx_available() -> bool:
    """onnxruntime and onnx (for an export made at start-up) are installed; looked up, not imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


class NanoDetDetector(TensorDetector):
    def __init__(self, config: NanoDetDetectorConfig, *, model_dir: Path | None = None) -> None:
        device = resolve_device(config.device)
        setup_threads(device, config.num_threads)
        half = half_precision(config, device)
        # bfloat16 only where asked for, or with runtime torch: in the pipeline (an inference actor per
        # core beside the camera actors) onnxruntime float32 took 28-29 ms of CPU per frame against 44
        # for torch bfloat16 on AMX (bench/cameras_per_core.py, same run), though alone both take ~22
        bf16 = bf16_precision(config, device) if config.bf16 is not None or config.runtime == "torch" else False
        path = resolve_graph(config, model_dir)
        net = NanoDetNet(read_graph(path)).eval()
        names = config_names(config, list(COCO_NAMES), path)
        if len(names) != len(COCO_NAMES):
            raise DetectorError(
                f"{path}: the network has {len(COCO_NAMES)} classes but the class map has {len(names)}"
            )
        runtime: str = config.runtime
        if runtime == "auto":
            runtime = "torch" if device.type == "cuda" or bf16 or not _onnx_available() else CPU_RUNTIME
        self.runtime = runtime
        self.runner: OrtRunner | None = None
        self.net: NanoDetNet | None = None
        self.onnx_source: Path | None = None
        if runtime == "onnxruntime":
            if config.bf16 or config.fp16:
                raise DetectorError(
                    f"{'fp16' if config.fp16 else 'bf16'} is only available with runtime torch"
                )
            half = bf16 = False
            # the install-time export when it is current (fast start), else one made now in memory
            self.runner = _written_runner(path.parent / ONNX_FILE, device, config.num_threads)
            if self.runner is not None:
                self.onnx_source = path.parent / ONNX_FILE
            else:
                data = _export(net, names)
                self.runner = OrtRunner(data, device=device, num_threads=config.num_threads, label=str(path))
        dtype = compute_dtype(half=half, bf16=bf16)
        if self.runner is None:
            self.net = net.to(device, dtype)
        super().__init__(
            config,
            names=names,
            input_size=net.input_size,
            device=device,
            input_dtype=dtype,
            layout="yolov8",
            source=path,
        )
        # rectangular inference (a 720p camera runs on 416x256, 40 % less work than 416x416)
        # wherever the graph takes any size, which the export then does too
        self.rect = net.any_size if config.rect is None else config.rect
        if self.rect and not net.any_size:
            raise DetectorError(f"{path}: the graph's resizes are fixed to 416x416 (no rectangular inference)")
        self._finish_init()
        self.pad_value = config.pad_value if config.pad_value is not None else PAD_VALUE

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if self.runner is not None:
            return self.runner.run(batch)
        assert self.net is not None
        out: torch.Tensor = self.net(batch)
        return out

    def __repr__(self) -> str:
        return (
            f"NanoDetDetector({self.source}, runtime={self.runtime}, device={self.device}, "
            f"dtype={str(self._input_dtype).removeprefix('torch.')}, rect={self.rect})"
        )
