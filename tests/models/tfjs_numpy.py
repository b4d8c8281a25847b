"""Test-only reference: a literal numpy interpreter of a TF.js graph model, written apart from the converter.

It follows TensorFlow's op definitions one node at a time (NHWC convolutions, explicit Pad and
Transpose nodes, half-pixel bilinear resizing...) with no rewriting, no folding and no torch,
so that `smartcity.models.tfjs_graph` can be checked against it. TensorFlow.js itself is not a
test dependency; `bench/nanodet_parity.py` checks the converter against it (pure-JS CPU backend
of @tensorflow/tfjs 4.22.0 under node: largest difference 1.9e-5 on 4 real frames).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _weights(doc: dict[str, Any], base: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for group in doc["weightsManifest"]:
        data = b"".join((base / p).read_bytes() for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            stored = np.float16 if w.get("quantization") else np.dtype(w["dtype"])
            arr = np.frombuffer(data, stored, n, pos)
            pos += n * np.dtype(stored).itemsize
            out[w["name"]] = arr.astype(np.dtype(w["dtype"])).reshape(w["shape"])
    return out


def _conv_nhwc(x: np.ndarray, w: np.ndarray, strides: list[int], padding: str) -> np.ndarray:
    kh, kw = w.shape[:2]
    sh, sw = strides[1], strides[2]
    if padding == "SAME":
        ph, pw = kh - 1, kw - 1
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    # windows: [N, OH, OW, C, KH, KW]; w: [KH, KW, C, O]
    return np.einsum("nhwcij,ijco->nhwo", windows, w, optimize=True)


def _maxpool_nhwc(x: np.ndarray, ksize: list[int], strides: list[int]) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(x, (ksize[1], ksize[2]), axis=(1, 2))
    return windows[:, :: strides[1], :: strides[2]].max(axis=(-2, -1))


def _resize_half_pixel(x: np.ndarray, size: list[int]) -> np.ndarray:
    """TF ResizeBilinear with half_pixel_centers=True, align_corners=False, NHWC."""

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        lo = np.floor(src)
        frac = (src - lo).astype(np.float32)
        return np.clip(lo, 0, n_in - 1).astype(int), np.clip(lo + 1, 0, n_in - 1).astype(int), frac

    y0, y1, fy = axis(x.shape[1], size[0])
    x0, x1, fx = axis(x.shape[2], size[1])
    top = x[:, y0][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y0][:, :, x1] * fx[None, None, :, None]
    bot = x[:, y1][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y1][:, :, x1] * fx[None, None, :, None]
    return top * (1 - fy)[None, :, None, None] + bot * fy[None, :, None, None]


def _ints(attr: dict[str, Any], key: str) -> list[int]:
    return [int(v) for v in attr[key]["list"]["i"]]


def _text(attr: dict[str, Any], key: str) -> str:
    return base64.b64decode(attr[key]["s"]).decode()


def _sparse_to_dense(a: list[Any], attr: dict[str, Any]) -> np.ndarray:
    out = np.full(a[1], a[3], dtype=a[2].dtype)
    for idx, v in zip(a[0].reshape(len(a[0]), out.ndim), np.broadcast_to(a[2], (len(a[0]),))):
        out[tuple(idx)] = v
    return out


_OPS: dict[str, Callable[[list[Any], dict[str, Any]], Any]] = {
    "Identity": lambda a, at: a[0],
    "Transpose": lambda a, at: np.transpose(a[0], a[1]),
    "Add": lambda a, at: a[0] + a[1],
    "AddV2": lambda a, at: a[0] + a[1],
    "Conv2D": lambda a, at: _conv_nhwc(a[0], a[1], _ints(at, "strides"), _text(at, "padding")),
    "LeakyRelu": lambda a, at: np.where(a[0] >= 0, a[0], a[0] * np.float32(at["alpha"]["f"])),
    "Sigmoid": lambda a, at: 1 / (1 + np.exp(-a[0])),
    "Pad": lambda a, at: np.pad(a[0], a[1]),
    "PadV2": lambda a, at: np.pad(a[0], a[1], constant_values=a[2]),
    "MaxPool": lambda a, at: _maxpool_nhwc(a[0], _ints(at, "ksize"), _ints(at, "strides")),
    "ConcatV2": lambda a, at: np.concatenate(a[:-1], axis=int(a[-1])),
    "ResizeBilinear": lambda a, at: _resize_half_pixel(a[0], list(a[1])),
    "SplitV": lambda a, at: np.split(a[0], np.cumsum(a[1])[:-1], axis=int(a[2])),
    "Reshape": lambda a, at: a[0].reshape(a[1]),
    "SparseToDense": _sparse_to_dense,
}


def run_graph(model_json: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the graph on `x` (the signature's input); returns every signature output by name."""
    doc = json.loads(Path(model_json).read_text())
    values: dict[str, Any] = dict(_weights(doc, Path(model_json).parent))
    nodes = {n["name"]: n for n in doc["modelTopology"]["node"]}
    (inp,) = doc["signature"]["inputs"].values()
    values[inp["name"].split(":")[0]] = x.astype(np.float32)

    def get(ref: str) -> Any:
        name, _, idx = ref.partition(":")
        v = values[name]
        return v[int(idx or 0)] if isinstance(v, list) else v

    def evaluate(node: dict[str, Any]) -> None:
        args = [get(i) for i in node.get("input", [])]
        values[node["name"]] = _OPS[node["op"]](args, node.get("attr", {}))

    pending = [n for n in nodes.values() if n["name"] not in values]
    while pending:  # file order is not topological: run whatever has its inputs, until done
        ready = [n for n in pending if all(i.partition(":")[0] in values for i in n.get("input", []))]
        assert ready, f"graph has a cycle or a dangling input among {[n['name'] for n in pending][:5]}"
        for n in ready:
            evaluate(n)
        pending = [n for n in pending if n["name"] not in values]
    outputs = doc["signature"]["outputs"].values()
    return {v["name"].split(":")[0]: np.asarray(get(v["name"].split(":")[0])) for v in outputs}
