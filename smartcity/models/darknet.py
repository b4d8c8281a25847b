"""Darknet networks in torch: the `.cfg` parser, the layer graph, the `.weights` loader and YOLO decoding.

Supported sections: [net], [convolutional] (batch norm, leaky/linear/relu/mish/logistic),
[maxpool] (Darknet padding, including the stride-1 pool of YOLOv3-tiny), [route] (with
groups/group_id), [shortcut], [upsample] and [yolo] (anchors, mask, scale_x_y). That covers
YOLOv3, YOLOv3-tiny and YOLOv4-tiny. The model returns `[batch, N, 4 + 1 + classes]`:
box centre x/y and width/height in input pixels, objectness and per-class probabilities
(all after Darknet's activations), rows ordered head by head, then (y, x, anchor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from smartcity.core.errors import SmartcityError


class DarknetCfgError(SmartcityError, ValueError):
    """A `.cfg` file that cannot be parsed or built; the message names the section and key."""


class DarknetWeightsError(SmartcityError, ValueError):
    """A `.weights` file whose size does not match the network built from the cfg."""


@dataclass(frozen=True, slots=True)
class CfgSection:
    """One `[type]` block of a cfg. `index` is the layer index (-1 for [net]); `line` is 1-based."""

    type: str
    index: int
    line: int
    options: dict[str, str] = field(default_factory=dict)

    def where(self, key: str | None = None) -> str:
        head = "[net]" if self.index < 0 else f"layer {self.index} [{self.type}]"
        return f"{head} (line {self.line})" + (f", key {key!r}" if key else "")

    def text(self, key: str, default: str | None = None) -> str:
        if key in self.options:
            return self.options[key]
        if default is None:
            raise DarknetCfgError(f"{self.where(key)}: missing")
        return default

    def integer(self, key: str, default: int | None = None) -> int:
        raw = self.text(key, None if default is None else str(default))
        try:
            return int(raw)
        except ValueError:
            raise DarknetCfgError(f"{self.where(key)}: expected an integer, got {raw!r}") from None

    def number(self, key: str, default: float | None = None) -> float:
        raw = self.text(key, None if default is None else repr(default))
        try:
            return float(raw)
        except ValueError:
            raise DarknetCfgError(f"{self.where(key)}: expected a number, got {raw!r}") from None

    def integers(self, key: str, default: str | None = None) -> list[int]:
        raw = self.text(key, default)
        try:
            return [int(v) for v in raw.split(",") if v.strip()]
        except ValueError:
            raise DarknetCfgError(f"{self.where(key)}: expected comma-separated integers, got {raw!r}") from None


@dataclass(frozen=True, slots=True)
class DarknetCfg:
    net: CfgSection
    layers: tuple[CfgSection, ...]

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the network was configured for."""
        return (self.net.integer("height"), self.net.integer("width"))

    @property
    def channels(self) -> int:
        return self.net.integer("channels", 3)


def parse_cfg(text: str, source: str = "<cfg>") -> DarknetCfg:
    """Parse Darknet cfg text. Raises DarknetCfgError naming the line, section and key."""
    sections: list[tuple[str, int, dict[str, str]]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"\[([A-Za-z_0-9]+)\]", line)
        if m:
            sections.append((m.group(1).lower(), lineno, {}))
            continue
        if "=" not in line:
            raise DarknetCfgError(f"{source}:{lineno}: expected `key=value` or `[section]`, got {raw.strip()!r}")
        if not sections:
            raise DarknetCfgError(f"{source}:{lineno}: `{line}` before the first [section]")
        key, value = (s.strip() for s in line.split("=", 1))
        if not key:
            raise DarknetCfgError(f"{source}:{lineno}: empty key")
        sections[-1][2][key] = value
    if not sections or sections[0][0] not in ("net", "network"):
        raise DarknetCfgError(f"{source}: the first section must be [net]")
    net = CfgSection("net", -1, sections[0][1], sections[0][2])
    layers = tuple(CfgSection(t, i, ln, opts) for i, (t, ln, opts) in enumerate(sections[1:]))
    if not layers:
        raise DarknetCfgError(f"{source}: no layers after [net]")
    return DarknetCfg(net, layers)


def load_cfg(path: Path) -> DarknetCfg:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DarknetCfgError(f"cannot read cfg {path}: {exc}") from exc
    return parse_cfg(text, str(path))


_ACTIVATIONS = ("leaky", "linear", "relu", "mish", "logistic")


class ConvBlock(nn.Module):
    def __init__(self, sec: CfgSection, in_ch: int) -> None:
        super().__init__()
        self.batch_norm = sec.integer("batch_normalize", 0) != 0
        filters, size, stride = sec.integer("filters"), sec.integer("size", 1), sec.integer("stride", 1)
        groups = sec.integer("groups", 1)
        for key, value in (("filters", filters), ("size", size), ("stride", stride), ("groups", groups)):
            if value < 1:
                raise DarknetCfgError(f"{sec.where(key)}: must be >= 1, got {value}")
        if in_ch % groups or filters % groups:
            raise DarknetCfgError(f"{sec.where('groups')}: {groups} does not divide {in_ch} -> {filters}")
        pad = size // 2 if sec.integer("pad", 0) else sec.integer("padding", 0)
        self.activation = sec.text("activation", "logistic")
        if self.activation not in _ACTIVATIONS:
            raise DarknetCfgError(f"{sec.where('activation')}: unsupported {self.activation!r}")
        self.conv = nn.Conv2d(in_ch, filters, size, stride, pad, groups=groups, bias=True)
        # Darknet's batch norm; folded into the convolution once the weights are loaded.
        self.bn: nn.BatchNorm2d | None = nn.BatchNorm2d(filters, eps=1e-5) if self.batch_norm else None
        self.out_channels = filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.linear(x))

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """Convolution and batch norm, without the activation."""
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return x

    @property
    def monotonic(self) -> bool:
        """The activation never decreases: it commutes with max pooling."""
        return self.activation in ("leaky", "relu", "linear")

    def activate(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation == "leaky":
            return F.leaky_relu(x, 0.1)
        if self.activation == "relu":
            return F.relu(x)
        if self.activation == "mish":
            return F.mish(x)
        if self.activation == "logistic":
            return torch.sigmoid(x)
        return x

    def fuse(self) -> None:
        """Fold the batch norm into the convolution (inference only)."""
        if self.bn is None:
            return
        bn = self.bn
        assert bn.running_var is not None and bn.running_mean is not None
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        bias = self.conv.bias
        assert bias is not None
        with torch.no_grad():
            self.conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
            bias.copy_(bn.bias.detach() - bn.running_mean * scale)
        self.bn = None


class MaxPool(nn.Module):
    """Darknet max pooling: padding `size - 1` split left/right, padded cells never win."""

    def __init__(self, sec: CfgSection) -> None:
        super().__init__()
        self.size = sec.integer("size", 2)
        self.stride = sec.integer("stride", self.size)
        pad = sec.integer("padding", self.size - 1)
        if self.size < 1 or self.stride < 1 or pad < 0:
            raise DarknetCfgError(f"{sec.where()}: size/stride must be >= 1 and padding >= 0")
        self.pad = (pad // 2, pad - pad // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        lo, hi = self.pad
        # Darknet computes out = (in + padding - size) // stride + 1; drop padding no window reaches.
        out_h = (h + lo + hi - self.size) // self.stride + 1
        out_w = (w + lo + hi - self.size) // self.stride + 1
        hi_h = (out_h - 1) * self.stride + self.size - h - lo
        hi_w = (out_w - 1) * self.stride + self.size - w - lo
        if lo or hi_h > 0 or hi_w > 0:
            x = F.pad(x, (lo, max(hi_w, 0), lo, max(hi_h, 0)), value=float("-inf"))
        elif self.size == 2 and self.stride == 2 and h % 2 == 0 and w % 2 == 0 and not torch.onnx.is_in_onnx_export():
            # the common 2x2/2 pooling as three element-wise maxima of strided views: a third
            # faster than max_pool2d on channels-last tensors in torch on CPU, exactly the same
            # values (an ONNX export keeps MaxPool, which onnxruntime runs faster)
            return torch.maximum(
                torch.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]),
                torch.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]),
            )
        return F.max_pool2d(x, self.size, self.stride)


class Upsample(nn.Module):
    def __init__(self, sec: CfgSection) -> None:
        super().__init__()
        self.stride = sec.integer("stride", 2)
        if self.stride < 1:
            raise DarknetCfgError(f"{sec.where('stride')}: must be >= 1, got {self.stride}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=float(self.stride), mode="nearest")


class YoloHead(nn.Module):
    """Decodes one [yolo] layer into `[batch, H*W*A, 5 + classes]` rows in input pixels."""

    def __init__(self, sec: CfgSection, in_ch: int) -> None:
        super().__init__()
        self.classes = sec.integer("classes")
        anchors = sec.integers("anchors")
        if len(anchors) % 2 or not anchors:
            raise DarknetCfgError(f"{sec.where('anchors')}: expected pairs of width,height")
        pairs = [(anchors[i], anchors[i + 1]) for i in range(0, len(anchors), 2)]
        mask = sec.integers("mask", ",".join(str(i) for i in range(len(pairs))))
        bad = [m for m in mask if not 0 <= m < len(pairs)]
        if bad:
            raise DarknetCfgError(f"{sec.where('mask')}: {bad} outside the {len(pairs)} anchors")
        self.num_anchors = len(mask)
        if in_ch != self.num_anchors * (5 + self.classes):
            raise DarknetCfgError(
                f"{sec.where('classes')}: the previous layer has {in_ch} filters, expected "
                f"{self.num_anchors} * (5 + {self.classes}) = {self.num_anchors * (5 + self.classes)}"
            )
        self.scale_xy = sec.number("scale_x_y", 1.0)
        self.anchors: torch.Tensor
        self.register_buffer("anchors", torch.tensor([pairs[m] for m in mask], dtype=torch.float32), False)

    def forward(self, x: torch.Tensor, input_hw: tuple[int, int]) -> torch.Tensor:
        # Decoded in float32 even under fp16: half precision has 0.25 px steps at 300 px.
        a, h, w = self.num_anchors, x.shape[2], x.shape[3]
        p = x.float().reshape(x.shape[0], a, 5 + self.classes, h, w).permute(0, 3, 4, 1, 2)
        gy, gx = torch.meshgrid(
            torch.arange(h, device=x.device, dtype=torch.float32),
            torch.arange(w, device=x.device, dtype=torch.float32),
            indexing="ij",
        )
        grid = torch.stack((gx, gy), -1).reshape(1, h, w, 1, 2)
        stride = torch.tensor([input_hw[1] / w, input_hw[0] / h], device=x.device)
        xy = torch.sigmoid(p[..., 0:2])
        if self.scale_xy != 1.0:
            xy = xy * self.scale_xy - (self.scale_xy - 1.0) / 2.0
        xy = (xy + grid) * stride
        wh = torch.exp(p[..., 2:4]) * self.anchors.float()
        rest = torch.sigmoid(p[..., 4:])
        return torch.cat((xy, wh, rest), -1).reshape(x.shape[0], h * w * a, 5 + self.classes)


class DarknetModel(nn.Module):
    """A Darknet network built from its cfg; `forward` returns the decoded YOLO rows."""

    def __init__(self, cfg: DarknetCfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_size = cfg.input_size
        self.layers = nn.ModuleList()
        self.kinds: list[str] = []
        self.sources: list[list[int]] = []  # absolute inputs of route/shortcut layers
        self.route_groups: list[tuple[int, int]] = []
        channels: list[int] = []
        classes: set[int] = set()
        in_ch = cfg.channels
        for sec in cfg.layers:
            i = sec.index
            prev = channels[-1] if channels else in_ch
            sources: list[int] = []
            groups = (1, 0)
            module: nn.Module
            if sec.type in ("convolutional", "conv"):
                module = ConvBlock(sec, prev)
                out = module.out_channels
            elif sec.type == "maxpool":
                module, out = MaxPool(sec), prev
            elif sec.type == "upsample":
                module, out = Upsample(sec), prev
            elif sec.type == "route":
                sources = [self._absolute(sec, "layers", i, s) for s in sec.integers("layers")]
                n, gid = sec.integer("groups", 1), sec.integer("group_id", 0)
                if n < 1 or not 0 <= gid < n:
                    raise DarknetCfgError(f"{sec.where('group_id')}: needs 0 <= group_id < groups")
                if any(channels[s] % n for s in sources):
                    raise DarknetCfgError(f"{sec.where('groups')}: {n} does not divide the channels")
                groups = (n, gid)
                module, out = nn.Identity(), sum(channels[s] for s in sources) // n
            elif sec.type == "shortcut":
                sources = [i - 1, self._absolute(sec, "from", i, sec.integer("from"))]
                if sec.text("activation", "linear") != "linear":
                    raise DarknetCfgError(f"{sec.where('activation')}: only linear shortcuts are supported")
                if channels[sources[1]] != prev:
                    raise DarknetCfgError(f"{sec.where('from')}: {channels[sources[1]]} channels, expected {prev}")
                module, out = nn.Identity(), prev
            elif sec.type in ("yolo", "region"):
                if sec.type == "region":
                    raise DarknetCfgError(f"{sec.where()}: YOLOv2 [region] layers are not supported")
                module = YoloHead(sec, prev)
                classes.add(module.classes)
                out = prev
            else:
                raise DarknetCfgError(f"{sec.where()}: unsupported section type [{sec.type}]")
            self.layers.append(module)
            self.kinds.append(sec.type)
            self.sources.append(sources)
            self.route_groups.append(groups)
            channels.append(out)
        if not classes:
            raise DarknetCfgError("the cfg has no [yolo] layer")
        if len(classes) != 1:
            raise DarknetCfgError(f"[yolo] layers disagree on classes: {sorted(classes)}")
        self.num_classes = classes.pop()
        # Outputs that later layers read again; everything else is dropped as soon as it is used.
        self._keep = {s for srcs in self.sources for s in srcs}
        # conv -> leaky -> maxpool runs as conv -> maxpool -> leaky: a non-decreasing activation
        # commutes with max, so the result is the same bit for bit and the activation touches a
        # quarter of the values (it was a sixth of the CPU time in bfloat16, py-spy)
        self._pool_first: dict[int, ConvBlock] = {
            i: layer
            for i, layer in enumerate(self.layers[:-1])
            if isinstance(layer, ConvBlock)
            and layer.monotonic
            and isinstance(self.layers[i + 1], MaxPool)
            and i not in self._keep
        }

    @staticmethod
    def _absolute(sec: CfgSection, key: str, index: int, ref: int) -> int:
        target = index + ref if ref < 0 else ref
        if not 0 <= target < index:
            raise DarknetCfgError(f"{sec.where(key)}: {ref} does not name an earlier layer")
        return target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        input_hw = (int(x.shape[2]), int(x.shape[3]))
        saved: dict[int, torch.Tensor] = {}
        heads: list[torch.Tensor] = []
        # onnxruntime fuses Conv + LeakyRelu itself: an export keeps the cfg's order
        pool_first = {} if torch.onnx.is_in_onnx_export() else self._pool_first
        for i, (kind, layer) in enumerate(zip(self.kinds, self.layers)):
            if kind == "route":
                parts = [saved[s] for s in self.sources[i]]
                x = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
                n, gid = self.route_groups[i]
                if n > 1:
                    x = torch.chunk(x, n, dim=1)[gid]
            elif kind == "shortcut":
                x = saved[self.sources[i][0]] + saved[self.sources[i][1]]
            elif kind == "yolo":
                heads.append(layer(x, input_hw))
            elif i in pool_first:
                x = pool_first[i].linear(x)
            elif i - 1 in pool_first:
                x = pool_first[i - 1].activate(layer(x))
            else:
                x = layer(x)
            if i in self._keep:
                saved[i] = x
        return torch.cat(heads, 1)

    def fuse(self) -> DarknetModel:
        """Fold every batch norm into its convolution; call once, after loading weights."""
        for layer in self.layers:
            if isinstance(layer, ConvBlock):
                layer.fuse()
        return self


@dataclass(frozen=True, slots=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    seen: int


def load_weights(model: DarknetModel, path: Path) -> WeightsHeader:
    """Read a Darknet `.weights` file into `model` (before `fuse`).

    Per convolution, in file order: with batch norm, the bn biases, scales, running means and
    variances, then the kernel; without, the conv biases then the kernel.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DarknetWeightsError(f"cannot read weights {path}: {exc}") from exc
    if len(data) < 20:
        raise DarknetWeightsError(f"{path}: {len(data)} bytes, too short for a Darknet header")
    major, minor, revision = (int(v) for v in np.frombuffer(data, dtype="<i4", count=3))
    wide_seen = (major * 10 + minor) >= 2 and major < 1000 and minor < 1000
    seen = int(np.frombuffer(data, dtype="<i8" if wide_seen else "<i4", count=1, offset=12)[0])
    offset = 12 + (8 if wide_seen else 4)
    if (len(data) - offset) % 4:
        raise DarknetWeightsError(f"{path}: body of {len(data) - offset} bytes is not float32")
    values = torch.from_numpy(np.frombuffer(data, dtype="<f4", offset=offset).copy())
    pos = 0

    def take(t: torch.Tensor, what: str) -> None:
        nonlocal pos
        n = t.numel()
        if pos + n > values.numel():
            raise DarknetWeightsError(
                f"{path}: ends at {values.numel()} floats while reading {what} "
                f"({n} floats from {pos}); the cfg asks for more weights than the file has"
            )
        with torch.no_grad():
            t.copy_(values[pos : pos + n].view_as(t))
        pos += n

    for i, layer in enumerate(model.layers):
        if not isinstance(layer, ConvBlock):
            continue
        bias = layer.conv.bias
        assert bias is not None
        if layer.bn is not None:
            assert layer.bn.running_mean is not None and layer.bn.running_var is not None
            take(layer.bn.bias, f"layer {i} bn biases")
            take(layer.bn.weight, f"layer {i} bn scales")
            take(layer.bn.running_mean, f"layer {i} bn means")
            take(layer.bn.running_var, f"layer {i} bn variances")
            with torch.no_grad():
                bias.zero_()
        else:
            take(bias, f"layer {i} biases")
        take(layer.conv.weight, f"layer {i} kernel")
    if pos != values.numel():
        raise DarknetWeightsError(
            f"{path}: {values.numel() - pos} floats left over after the last layer; cfg and weights do not match"
        )
    return WeightsHeader(major, minor, revision, seen)


def build_darknet(cfg_path: Path, weights_path: Path, *, fuse: bool = True) -> DarknetModel:
    """Parse the cfg, load the weights, fold batch norms and switch to eval mode."""
    model = DarknetModel(load_cfg(cfg_path))
    load_weights(model, weights_path)
    model.eval()
    return model.fuse() if fuse else model
