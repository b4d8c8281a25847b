"""Detector configuration: one pydantic model per detector `type`, joined in a discriminated union.

Importing this module is cheap (no torch): the application's settings can embed a
`DetectorConfig`. Validators check values only; files are opened when the detector is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from smartcity.core.errors import ConfigError

URBAN_CLASSES: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "truck",
    "backpack",
    "handbag",
    "suitcase",
)
"""COCO classes that matter in a street scene; the default `classes` filter."""

COCO_ALIASES: dict[str, str] = {
    "motorbike": "motorcycle",
    "aeroplane": "airplane",
    "sofa": "couch",
    "pottedplant": "potted plant",
    "diningtable": "dining table",
    "tvmonitor": "tv",
}
"""Darknet's coco.names spells six classes the VOC way; detectors report the COCO spelling
(as YOLOv8/YOLO11 exports do), so rules name a class the same whatever the model."""

Layout = Literal["auto", "darknet", "yolov8"]
"""Raw output layouts: `darknet` is `[B, N, 4 + 1 + C]` (objectness, then class probabilities),
`yolov8` is `[B, 4 + C, N]` (YOLOv8/YOLO11 exports: class scores, no objectness). Boxes are
centre x, centre y, width, height in input pixels. `auto` tells them apart by shape."""


ClassGroup = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100)]], Field(min_length=2, max_length=100)
]
"""Class names that NMS treats as one class."""


class DetectorConfigBase(BaseModel):
    """Fields every detector type shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    names: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None,
        description="Class names by class index (the model's class map). Default: names_file, "
        "else the names embedded in the model file.",
        min_length=1,
        max_length=10_000,
    )
    names_file: Path | None = Field(None, description="Text file with one class name per line.")
    rename: dict[str, Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=lambda: dict(COCO_ALIASES),
        description="Renames applied to the model's class names before `classes` is matched "
        "(default: Darknet's VOC spellings to COCO ones, e.g. motorbike -> motorcycle).",
        max_length=10_000,
    )
    classes: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        list(URBAN_CLASSES),
        description="Only report these classes (names from the class map); null reports every class.",
        min_length=1,
        max_length=10_000,
    )
    conf_threshold: float = Field(0.25, description="Minimum class confidence kept.", gt=0, lt=1)
    nms_iou: float = Field(0.45, description="IoU above which NMS drops the weaker box.", gt=0, le=1)
    max_detections: int = Field(300, description="Most detections reported per frame.", ge=1, le=10_000)
    input_size: int | None = Field(
        None,
        description="Square network input side in pixels (multiple of 32). Default: the model's own.",
        ge=32,
        le=4096,
        multiple_of=32,
    )
    device: str = Field(
        "auto",
        description="auto (CUDA when available, else CPU), cpu, cuda or cuda:N.",
        pattern=r"^(auto|cpu|cuda(:[0-9]{1,2})?)$",
    )
    fp16: bool | None = Field(None, description="Half precision; default on for CUDA, off on CPU (CUDA only).")
    bf16: bool | None = Field(
        None,
        description="bfloat16 weights and activations on CPU (torch runtimes). Default: on where the CPU has "
        "AMX (Intel Xeon 4th generation and later), which runs it ~2.5x faster than float32 (bench/infer.py); "
        "off elsewhere, where it is emulated and slower.",
    )
    num_threads: int = Field(1, description="CPU threads of the inference runtime.", ge=1, le=256)
    rect: bool | None = Field(
        None,
        description="Rectangular inference: pad each batch only up to the next multiple of 32 instead of the "
        "full square input (a 4:3 camera at 416 runs on 416x320, ~20 % less work). Default: on for the "
        "darknet detector in torch, off for ONNX and TorchScript files (their input size may be fixed).",
    )
    suppress_across: list[ClassGroup] = Field(
        default_factory=list,
        description="Groups of classes whose boxes suppress each other in NMS as if they were one class "
        "(e.g. [[car, truck, bus]]: one vehicle labelled both car and truck keeps only its best box). "
        "Other classes are suppressed per class.",
        max_length=100,
    )
    pad_value: int | None = Field(
        None,
        description="Grey level of the letterbox borders. Default: what the model was trained with, "
        "127 for the darknet layout (Darknet fills with 0.5), 114 for the yolov8 layout (Ultralytics).",
        ge=0,
        le=255,
    )

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            dup = sorted({c for c in v if v.count(c) > 1})
            raise ValueError(f"duplicate classes {dup}")
        return v

    @field_validator("suppress_across")
    @classmethod
    def _disjoint_groups(cls, v: list[list[str]]) -> list[list[str]]:
        seen: set[str] = set()
        for group in v:
            if seen & set(group):
                raise ValueError(f"class {sorted(seen & set(group))[0]!r} is in two suppress_across groups")
            seen.update(group)
        return v

    @model_validator(mode="after")
    def _one_class_map(self) -> DetectorConfigBase:
        if self.names is not None and self.names_file is not None:
            raise ValueError("give either names or names_file, not both")
        if self.fp16 and self.device == "cpu":
            raise ValueError("fp16 needs a CUDA device")
        if self.bf16 and self.device.startswith("cuda"):
            raise ValueError("bf16 is for CPU inference; on CUDA use fp16")
        if self.bf16 and self.fp16:
            raise ValueError("give fp16 or bf16, not both")
        return self


class DarknetDetectorConfig(DetectorConfigBase):
    """A Darknet cfg + weights run by this project's torch code (default: YOLOv3-tiny, COCO)."""

    type: Literal["darknet"] = Field("darknet", description="Detector type.")
    cfg: Path | None = Field(None, description="Darknet .cfg file. Default: the installed YOLOv3-tiny.")
    weights: Path | None = Field(None, description="Darknet .weights file. Default: the installed YOLOv3-tiny.")
    runtime: Literal["auto", "torch", "onnxruntime"] = Field(
        "auto",
        description="Engine that runs the network: torch, or onnxruntime on an in-memory ONNX export. "
        "auto picks the faster one measured by bench/infer.py (torch on CUDA).",
    )

    @model_validator(mode="after")
    def _both_files(self) -> DarknetDetectorConfig:
        if (self.cfg is None) != (self.weights is None):
            raise ValueError("give both cfg and weights, or neither for the default model")
        return self


class OnnxDetectorConfig(DetectorConfigBase):
    """An ONNX detector run by onnxruntime: YOLOv8/YOLO11 exports or `smartcity models export`."""

    type: Literal["onnx"] = Field("onnx", description="Detector type.")
    model: Path = Field(description="The .onnx file.")
    layout: Layout = Field("auto", description="Raw output layout (auto: from the output shape).")


class TorchScriptDetectorConfig(DetectorConfigBase):
    """A TorchScript detector (`torch.jit.save` / YOLOv8 `format=torchscript`)."""

    type: Literal["torchscript"] = Field("torchscript", description="Detector type.")
    model: Path = Field(description="The TorchScript file.")
    layout: Layout = Field("auto", description="Raw output layout (auto: from the output shape).")


VEHICLE_GROUP: tuple[str, ...] = ("car", "truck", "bus")
"""Classes a detector may confuse on one vehicle (NanoDet-g labels some vans both car and truck)."""


class NanoDetDetectorConfig(DetectorConfigBase):
    """NanoDet-g 416 (COCO, Apache-2.0 weights) converted from its TF.js graph by our own code."""

    type: Literal["nanodet"] = Field("nanodet", description="Detector type.")
    model: Path | None = Field(
        None,
        description="The TF.js graph model JSON (its weight file next to it). Default: the NanoDet-g installed "
        "by `smartcity models install --model nanodet-g`.",
    )
    runtime: Literal["auto", "torch", "onnxruntime"] = Field(
        "auto",
        description="Engine that runs the network: torch, or onnxruntime on its ONNX export. auto: torch on CUDA "
        "or where bf16 is set, else onnxruntime float32 (in the pipeline it cost 28-29 ms of CPU per frame "
        "against 44 for torch bfloat16 on AMX, bench/cameras_per_core.py; bf16 defaults off here unless "
        "runtime is torch).",
    )
    suppress_across: list[ClassGroup] = Field(
        default_factory=lambda: [list(VEHICLE_GROUP)],
        description="Groups of classes suppressed together in NMS. Default: car, truck and bus (one vehicle, "
        "one box).",
        max_length=100,
    )
    conf_threshold: float = Field(
        0.4,
        description="Minimum class confidence kept. Default 0.4: NanoDet's scores are IoU-quality estimates and "
        "run lower than YOLO's; 0.4 was chosen from the sweep bench/detector.py prints (at 0.25 it boxes many "
        "shadows and signs, at 0.5 it loses vehicles seen from above).",
        gt=0,
        lt=1,
    )
    pad_value: int | None = Field(
        None,
        description="Grey level of the letterbox borders. Default: 0 (NanoDet was trained with black borders).",
        ge=0,
        le=255,
    )
    rect: bool | None = Field(
        None,
        description="Rectangular inference: each batch runs on the smallest multiple-of-32 rectangle within "
        "416x416 that holds its letterboxed frames (a 16:9 camera on 416x256, 38 % fewer pixels; a 4:3 one on "
        "416x320). Default: on (the graph's resizes follow its input's size); false runs every batch on 416x416.",
    )

    @field_validator("input_size")
    @classmethod
    def _fixed_input(cls, v: int | None) -> int | None:
        if v is not None and v != 416:
            raise ValueError("NanoDet-g's graph has a fixed 416x416 input")
        return v


DetectorConfig = Annotated[
    DarknetDetectorConfig | OnnxDetectorConfig | TorchScriptDetectorConfig | NanoDetDetectorConfig,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[DetectorConfig] = TypeAdapter(DetectorConfig)


def parse_detector_config(data: Mapping[str, Any], *, path: str = "detector") -> DetectorConfig:
    """Validate a mapping (from YAML) into the config of its `type`; ConfigError lists `path.field: msg`."""
    try:
        return _ADAPTER.validate_python(dict(data))
    except ValidationError as exc:
        raise ConfigError(validation_error_lines(path, exc)) from None


def validation_error_lines(path: str, exc: ValidationError) -> list[str]:
    """A model config's validation errors as `path.field: message` lines."""
    return [_error_line(path, err) for err in exc.errors()]


def _error_line(path: str, err: Any) -> str:
    loc = list(err["loc"])
    if loc and loc[0] in _TYPES:  # pydantic prefixes the tag of the union member
        loc = loc[1:]
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc, msg = ["type"], f"expected one of {sorted(_TYPES)}, got {_tag(err)}"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "field required"
    else:
        msg = str(err["msg"]).removeprefix("Value error, ")
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    return f"{path}{where}: {msg}"


def _tag(err: Any) -> str:
    ctx = err.get("ctx") or {}
    return repr(ctx["tag"]) if "tag" in ctx else "no type"


_TYPES = ("darknet", "onnx", "torchscript", "nanodet")
