"""NanoDet-g: our TF.js converter against a numpy reference, the decoder, letterboxing, class groups.

Tests that need the real NanoDet-g files use the ones `scripts/setup.sh --test` installs
(`smartcity models install --model all`); they skip where it is not installed and fail in CI.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from smartcity.models.config import NanoDetDetectorConfig
from smartcity.models.install import default_model_dir
from smartcity.models.install_nanodet import installed_nanodet
from smartcity.models.nanodet import COCO_NAMES, ONNX_FILE, NanoDetDetector, NanoDetNet, decode, write_onnx
from smartcity.models.ops import letterbox, letterbox_params, postprocess, unletterbox
from smartcity.models.registry import create_detector
from smartcity.models.roles import ModelError
from smartcity.models.tfjs_graph import GraphError, GraphModule, read_graph

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tfjs_numpy import run_graph  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ANNOTATIONS = REPO / "tests" / "data" / "annotations" / "vtest_every20.json"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def nanodet_json() -> Path:
    found = installed_nanodet(default_model_dir()) or installed_nanodet(REPO / "models")
    if found is None:
        message = "NanoDet-g is not installed: run `smartcity models install --model nanodet-g`"
        if IN_CI:
            pytest.fail(message + " (scripts/setup.sh --test does)")
        pytest.skip(message)
    return found


# -- a small graph written here, covering every op type the converter supports -----------------


def _write_graph(
    tmp: Path, height: int = 8, width: int = 8, stem: str = "g", resize: tuple[int, int] | None = None
) -> Path:
    """The graph, written for a height x width input (its resize's size, by default the input's, and
    its signature follow)."""
    rng = np.random.default_rng(1)
    consts: list[tuple[str, np.ndarray, bool]] = []  # name, value, stored as float16

    def const(name: str, value: np.ndarray, half: bool = False) -> dict[str, object]:
        consts.append((name, value, half))
        return {"name": name, "op": "Const", "attr": {}}

    def node(name: str, op: str, inputs: list[str], **attr: object) -> dict[str, object]:
        return {"name": name, "op": op, "input": inputs, "attr": attr}

    i32 = np.int32
    valid = {"s": "VkFMSUQ="}  # base64("VALID")
    same = {"s": "U0FNRQ=="}
    ones = {"list": {"i": ["1", "1", "1", "1"]}}
    nodes = [
        const("pads", np.array([[0, 0], [0, 0], [1, 1], [1, 1]], i32)),
        const("nhwc", np.array([0, 2, 3, 1], i32)),
        const("nchw", np.array([0, 3, 1, 2], i32)),
        const("w1", rng.normal(size=(3, 3, 3, 4)).astype(np.float32), True),
        const("b1", rng.normal(size=(4,)).astype(np.float32), True),
        const("w2", rng.normal(size=(1, 1, 4, 6)).astype(np.float32), True),
        const("ninf", np.array(-np.inf, np.float32)),
        const("size_up", np.array(resize or (height, width), i32)),
        const("axis1", np.array(1, i32)),
        const("splits", np.array([7, 3], i32)),
        const("where", np.zeros((0, 1), i32)),
        const("dense_shape", np.array([3], i32)),
        const("dense_values", np.zeros((0,), i32)),
        const("zero", np.array(0, i32)),
        const("shape7", np.array([1, 7, -1], i32)),
        const("shape3", np.array([1, 3, -1], i32)),
        const("perm021", np.array([0, 2, 1], i32)),
        node("input_1", "Placeholder", []),
        node("pad", "Pad", ["input_1", "pads"]),
        node("t1", "Transpose", ["pad", "nhwc"]),
        node(
            "conv1",
            "Conv2D",
            ["t1", "w1"],
            padding=valid,
            strides=ones,
            dilations=ones,
            data_format={"s": "TkhXQw=="},
        ),
        node("add1", "Add", ["conv1", "b1"]),
        node("t2", "Transpose", ["add1", "nchw"]),
        node("lrelu", "LeakyRelu", ["t2"], alpha={"f": 0.1}),
        node("padv2", "PadV2", ["lrelu", "pads", "ninf"]),
        node("t3", "Transpose", ["padv2", "nhwc"]),
        node(
            "pool",
            "MaxPool",
            ["t3"],
            padding=valid,
            ksize={"list": {"i": ["1", "3", "3", "1"]}},
            strides={"list": {"i": ["1", "2", "2", "1"]}},
        ),  # fmt: skip
        node("conv2", "Conv2D", ["pool", "w2"], padding=same, strides=ones, dilations=ones),
        node("t4", "Transpose", ["pool", "nchw"]),
        node("t5", "Transpose", ["conv2", "nchw"]),
        node(
            "up",
            "ResizeBilinear",
            ["conv2", "size_up"],
            half_pixel_centers={"b": True},
            align_corners={"b": False},
        ),
        node("t6", "Transpose", ["up", "nchw"]),
        node("cat", "ConcatV2", ["t4", "t5", "axis1"]),
        node("split", "SplitV", ["cat", "splits", "axis1"]),
        node("sig", "Sigmoid", ["split"]),
        node("dense", "SparseToDense", ["where", "dense_shape", "dense_values", "zero"]),
        node("shape", "AddV2", ["shape7", "dense"]),
        node("r7", "Reshape", ["sig", "shape"]),
        node("tr7", "Transpose", ["r7", "perm021"]),
        node("r3", "Reshape", ["split:1", "shape3"]),
        node("out0", "Identity", ["tr7"]),
        node("out1", "Identity", ["r3"]),
        node("out2", "Identity", ["t6"]),
    ]
    weights, blobs = [], []
    for name, value, half in consts:
        dtype = "float32" if value.dtype == np.float32 else "int32"
        spec: dict[str, object] = {"name": name, "shape": list(value.shape), "dtype": dtype}
        if half:
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blobs.append(value.astype(np.float16).tobytes())
        else:
            blobs.append(value.tobytes())
        weights.append(spec)
    (tmp / f"{stem}.bin").write_bytes(b"".join(blobs))

    def tensor(name: str, dims: list[int]) -> dict[str, object]:
        return {
            "name": f"{name}:0",
            "dtype": "DT_FLOAT",
            "tensorShape": {"dim": [{"size": str(d)} for d in dims]},
        }

    doc = {
        "format": "graph-model",
        "signature": {
            "inputs": {"input_1:0": tensor("input_1", [1, 3, height, width])},
            "outputs": {
                "out0:0": tensor("out0", [1, height * width // 4, 7]),
                "out1:0": tensor("out1", [1, 3, height * width // 4]),
                "out2:0": tensor("out2", [1, 6, *(resize or (height, width))]),
            },
        },
        "modelTopology": {"node": nodes[::-1]},  # reversed: the converter must order the nodes itself
        "weightsManifest": [{"paths": [f"{stem}.bin"], "weights": weights}],
    }
    path = tmp / f"{stem}.json"
    path.write_text(json.dumps(doc))
    return path


def test_converter_matches_the_numpy_reference_on_every_op_type(tmp_path: Path) -> None:
    path = _write_graph(tmp_path)
    x = np.random.default_rng(2).normal(size=(2, 3, 8, 8)).astype(np.float32)
    module = GraphModule(read_graph(path))
    assert {s.op for s in module.steps} >= {
        "Conv2D",
        "MaxPool",
        "ResizeBilinear",
        "SplitV",
        "Reshape",
        "Sigmoid",
    }
    assert "Pad" not in {s.op for s in module.steps if s.name == "pad"}  # folded into conv1
    with torch.inference_mode():
        outs = module(torch.from_numpy(x))  # a batch of 2 through a graph traced at batch 1
    for b in range(2):
        ref = run_graph(path, x[b : b + 1])
        for name, out in zip(module.output_names, outs):
            assert out.shape[1:] == ref[name].shape[1:]
            np.testing.assert_allclose(out[b : b + 1].numpy(), ref[name], rtol=1e-5, atol=1e-5)


def test_a_graph_traced_square_runs_on_a_rectangle_as_if_written_for_it(tmp_path: Path) -> None:
    """Its resize became a scale of its input: traced at 8x8, run on 8x16, it computes what the same
    graph written for 8x16 computes (the numpy reference runs that one, with its fixed sizes)."""
    module = GraphModule(read_graph(_write_graph(tmp_path)))
    assert module.any_size
    assert [s.params.get("scale") for s in module.steps if s.op == "ResizeBilinear"] == [(2.0, 2.0)]
    wide = _write_graph(tmp_path, 8, 16, stem="wide")
    x = np.random.default_rng(3).normal(size=(1, 3, 8, 16)).astype(np.float32)
    ref = run_graph(wide, x)
    with torch.inference_mode():
        outs = module(torch.from_numpy(x))
    for name, out in zip(module.output_names, outs):
        assert out.shape == ref[name].shape
        np.testing.assert_allclose(out.numpy(), ref[name], rtol=1e-5, atol=1e-5)
    # a resize to 3x its input is no whole or half scale: the graph keeps its traced sizes
    fixed = GraphModule(read_graph(_write_graph(tmp_path, stem="fixed", resize=(12, 12))))
    assert not fixed.any_size
    assert [s.params for s in fixed.steps if s.op == "ResizeBilinear"] == [{"size": [12, 12]}]


def test_converter_refuses_unknown_ops_and_truncated_weights(tmp_path: Path) -> None:
    path = _write_graph(tmp_path)
    doc = json.loads(path.read_text())
    doc["modelTopology"]["node"].append({"name": "odd", "op": "Softmax", "input": ["out0"]})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(GraphError, match="node odd has op Softmax, which this converter does not support"):
        read_graph(bad)
    (tmp_path / "g.bin").write_bytes((tmp_path / "g.bin").read_bytes()[:-10])
    with pytest.raises(GraphError, match="truncated download"):
        read_graph(path)


def test_converted_nanodet_matches_the_numpy_reference(
    nanodet_json: Path, street_frames: list[np.ndarray]
) -> None:
    graph = read_graph(nanodet_json)
    net = NanoDetNet(graph).eval()
    x, _ = letterbox(street_frames[:1], (416, 416), fill=0)
    bgr = x[:, [2, 1, 0]] * 255
    normalised = ((bgr - net.mean) / net.std).contiguous()
    ref = run_graph(nanodet_json, normalised.numpy())
    with torch.inference_mode():
        outs = net.graph(normalised)
    for name, out in zip(net.graph.output_names, outs):
        np.testing.assert_allclose(out.numpy(), ref[name], rtol=1e-4, atol=1e-4)


# -- decoder -----------------------------------------------------------------------------------


def test_decode_distribution_focal_boxes_at_cell_centres() -> None:
    bins = torch.arange(11, dtype=torch.float32)
    centres = torch.tensor([[4.0, 4.0], [12.0, 4.0]])  # cells (0, 0) and (1, 0) of stride 8
    strides = torch.tensor([[8.0], [8.0]])
    reg = torch.full((1, 2, 44), -1e4)
    for side, bin_ in enumerate((1, 2, 3, 4)):  # left 1, top 2, right 3, bottom 4 cells
        reg[0, 0, side * 11 + bin_] = 0.0
    reg[0, 1].view(4, 11)[:, 2:4] = 0.0  # an even split of bins 2 and 3: 2.5 cells each side
    scores = torch.rand(1, 2, 80)
    out = decode(scores, reg, centres, strides, bins)
    assert out.shape == (1, 84, 2)
    # x1 = 4 - 8, y1 = 4 - 16, x2 = 4 + 24, y2 = 4 + 32 -> centre (12, 12), size 32 x 48
    torch.testing.assert_close(out[0, :4, 0], torch.tensor([12.0, 12.0, 32.0, 48.0]))
    torch.testing.assert_close(out[0, :4, 1], torch.tensor([12.0, 4.0, 40.0, 40.0]))
    torch.testing.assert_close(out[0, 4:, :], scores[0].T)


def test_decoder_on_a_known_frame_finds_the_annotated_people(
    nanodet_json: Path, street_frames: list[np.ndarray]
) -> None:
    truth = [
        o["box"] for o in json.loads(ANNOTATIONS.read_text())["frames"][0]["objects"] if o["cls"] == "person"
    ]
    assert len(truth) == 3  # vtest.avi frame 0, annotated by eye
    det = NanoDetDetector(
        NanoDetDetectorConfig(model=nanodet_json, device="cpu", runtime="torch", bf16=False)
    )
    people = [d.box for d in det.detect(street_frames[:1])[0] if d.cls == "person"]
    offsets = []
    for t in truth:
        best = max(people, key=lambda b: _iou(b, t))
        assert _iou(best, t) >= 0.5, (t, people)
        offsets.append(((best[0] + best[2] - t[0] - t[2]) / 2, (best[1] + best[3] - t[1] - t[3]) / 2))
    # boxes centred on the people (without the cell-centre offset they sit ~7 px up and left)
    assert np.abs(np.mean(offsets, axis=0)).max() < 3.0


def _iou(a: tuple[float, ...] | list[float], b: tuple[float, ...] | list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_engines_agree_on_a_real_frame(nanodet_json: Path, street_frames: list[np.ndarray]) -> None:
    def run(**kw: object) -> list[tuple[str, tuple[float, float, float, float]]]:
        det = create_detector({"type": "nanodet", "model": str(nanodet_json), "device": "cpu", **kw})
        return [(d.cls, d.box) for d in det.detect(street_frames)[1]]

    fp32 = run(runtime="torch", bf16=False)
    assert len(fp32) >= 5
    ort = run(runtime="onnxruntime")
    assert [c for c, _ in ort] == [c for c, _ in fp32]
    assert all(_iou(a, b) > 0.99 for (_, a), (_, b) in zip(ort, fp32))
    bf16 = run(runtime="torch", bf16=True)  # boxes of bf16 activations, decoded in float32
    matched = [max((_iou(b, a) for c2, b in bf16 if c2 == c), default=0.0) for c, a in fp32]
    assert sum(m >= 0.9 for m in matched) >= len(fp32) - 1


def test_anchors_follow_the_input_shape(nanodet_json: Path) -> None:
    net = NanoDetNet(read_graph(nanodet_json))
    assert net.any_size and net.head_strides == [8, 16, 32]
    square, square_strides = net.anchors(torch.zeros(1, 3, 416, 416))
    wide, wide_strides = net.anchors(torch.zeros(1, 3, 256, 416))
    assert square.shape == (3549, 2) and wide.shape == (52 * 32 + 26 * 16 + 13 * 8, 2)
    # each head's rows of the 416x256 input are the first rows of its 416x416 grid
    start_sq = start_wide = 0
    for stride in (8, 16, 32):
        n_sq, n_wide = (416 // stride) ** 2, (416 // stride) * (256 // stride)
        torch.testing.assert_close(wide[start_wide : start_wide + n_wide], square[start_sq : start_sq + n_wide])
        assert bool((wide_strides[start_wide : start_wide + n_wide] == stride).all())
        start_sq, start_wide = start_sq + n_sq, start_wide + n_wide
    assert wide[0].tolist() == [4.0, 4.0] and square_strides[-1].item() == 32.0


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_rectangular_inference_finds_what_the_square_input_finds(
    nanodet_json: Path, street_frames: list[np.ndarray], runtime: str
) -> None:
    """A 16:9 frame runs on 416x256 (38 % fewer pixels) and gives the square input's detections."""
    wide = [np.ascontiguousarray(f[72:504]) for f in street_frames]  # 768x432: 16:9
    kw = {"model": nanodet_json, "device": "cpu", "runtime": runtime, "bf16": False}
    rect = NanoDetDetector(NanoDetDetectorConfig(**kw))  # type: ignore[arg-type]
    square = NanoDetDetector(NanoDetDetectorConfig(**kw, rect=False))  # type: ignore[arg-type]
    shapes: list[tuple[int, ...]] = []
    forward = rect.forward
    rect.forward = lambda batch: (shapes.append(tuple(batch.shape)), forward(batch))[1]  # type: ignore[method-assign]
    got, want = rect.detect(wide), square.detect(wide)
    assert shapes == [(len(wide), 3, 256, 416)]
    for a, b in zip(got, want, strict=True):
        assert len(b) >= 3 and abs(len(a) - len(b)) <= 1
        matched = [max((_iou(x.box, y.box) for y in a if y.cls == x.cls), default=0.0) for x in b]
        assert sum(m >= 0.9 for m in matched) >= len(b) - 1, (a, b)


# -- letterbox geometry and the detector's set-up ----------------------------------------------


def test_letterbox_geometry_of_nanodet_input() -> None:
    frame = np.full((360, 640, 3), 200, np.uint8)
    frame[100:140, 320:400] = 255  # a white block, 80 x 40 px
    lb = letterbox_params(640, 360, (416, 416))
    assert (lb.scale_x, lb.scale_y, lb.pad_x, lb.pad_y) == (0.65, 0.65, 0, 91)  # 640x360 -> 416x234
    batch, (placed,) = letterbox([frame], (416, 416), fill=0)
    img = (batch[0] * 255).round().to(torch.uint8)
    assert placed == lb
    assert int(img[:, :91].max()) == 0 and int(img[:, 91 + 234 :].max()) == 0  # black borders
    assert int(img[:, 91:325].min()) >= 199
    rows, cols = torch.nonzero(img[0] >= 250, as_tuple=True)
    # the block's edges land where input = original * 0.65 + pad says (within a pixel of blending)
    assert (
        abs(rows.min().item() - (91 + 100 * 0.65)) <= 1
        and abs(rows.max().item() + 1 - (91 + 140 * 0.65)) <= 1
    )
    assert abs(cols.min().item() - 320 * 0.65) <= 1 and abs(cols.max().item() + 1 - 400 * 0.65) <= 1
    back = unletterbox(torch.tensor([[208.0, 156.0, 260.0, 182.0]]), lb)
    torch.testing.assert_close(back, torch.tensor([[320.0, 100.0, 400.0, 140.0]]))


def test_nanodet_detector_set_up(nanodet_json: Path) -> None:
    det = NanoDetDetector(
        NanoDetDetectorConfig(model=nanodet_json, device="cpu", runtime="torch", bf16=False)
    )
    assert det.input_size == (416, 416) and det.pad_value == 0 and det.rect  # rectangular by default
    assert not NanoDetDetector(
        NanoDetDetectorConfig(model=nanodet_json, device="cpu", runtime="torch", bf16=False, rect=False)
    ).rect
    assert det.names == list(COCO_NAMES) and det.layout == "yolov8"
    assert det.class_groups is not None
    car, truck, bus = (COCO_NAMES.index(c) for c in ("car", "truck", "bus"))
    assert det.class_groups[truck] == det.class_groups[bus] == car
    with pytest.raises(ModelError, match=r"suppress_across names classes \['lorry'\]"):
        NanoDetDetector(
            NanoDetDetectorConfig(model=nanodet_json, device="cpu", suppress_across=[["car", "lorry"]])
        )


def test_default_cpu_engine_is_onnxruntime_float32_and_bf16_means_torch(nanodet_json: Path) -> None:
    """In the pipeline onnxruntime float32 cost less CPU per frame than torch bfloat16 on AMX: the
    default on CPU whatever the processor; bf16 (asked, or the AMX default of runtime torch) is torch."""
    default = NanoDetDetector(NanoDetDetectorConfig(model=nanodet_json, device="cpu"))
    assert (default.runtime, default._input_dtype) == ("onnxruntime", torch.float32)
    asked = NanoDetDetector(NanoDetDetectorConfig(model=nanodet_json, device="cpu", bf16=True))
    assert (asked.runtime, asked._input_dtype) == ("torch", torch.bfloat16)


def test_missing_install_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="run `smartcity models install --model nanodet-g`"):
        NanoDetDetector(NanoDetDetectorConfig(device="cpu"), model_dir=tmp_path)


def test_config_refuses_what_the_graph_cannot_do() -> None:
    with pytest.raises(ValidationError, match="fixed 416x416 input"):
        NanoDetDetectorConfig(input_size=320)
    with pytest.raises(ValidationError, match="'car' is in two suppress_across groups"):
        NanoDetDetectorConfig(suppress_across=[["car", "truck"], ["bus", "car"]])


# -- cross-class suppression -------------------------------------------------------------------


def test_suppress_across_keeps_one_box_per_vehicle() -> None:
    names = ["person", "car", "truck"]
    boxes = torch.tensor(
        [[[100.0, 100.0, 80.0, 40.0], [102.0, 101.0, 82.0, 42.0], [100.0, 100.0, 20.0, 50.0]]]
    )
    scores = torch.tensor([[[0.0, 0.8, 0.1], [0.0, 0.1, 0.6], [0.7, 0.0, 0.0]]])  # car, truck on it, a person
    lb = letterbox_params(416, 416, (416, 416))
    kw = {"conf_threshold": 0.25, "nms_iou": 0.45, "max_detections": 10}
    per_class = postprocess(boxes, scores, [lb], names, **kw)[0]
    assert sorted(d.cls for d in per_class) == ["car", "person", "truck"]
    grouped = postprocess(boxes, scores, [lb], names, class_groups=torch.tensor([0, 1, 1]), **kw)[0]
    assert sorted((d.cls, round(d.score, 2)) for d in grouped) == [("car", 0.8), ("person", 0.7)]


def test_install_time_onnx_export_is_used_and_matches(
    nanodet_json: Path, tmp_path: Path, street_frames: list[np.ndarray]
) -> None:
    for name in ("nanodet.json", "nanodet.bin"):
        (tmp_path / name).write_bytes((nanodet_json.parent / name).read_bytes())
    config = NanoDetDetectorConfig(model=tmp_path / "nanodet.json", device="cpu", runtime="onnxruntime")
    in_memory = NanoDetDetector(config)
    assert in_memory.onnx_source is None  # nothing written yet: exported at start-up
    written = write_onnx(tmp_path / "nanodet.json")
    assert written == tmp_path / ONNX_FILE and written.stat().st_size > 1_000_000
    from_file = NanoDetDetector(config)
    assert from_file.onnx_source == written
    a, b = in_memory.detect(street_frames[:1])[0], from_file.detect(street_frames[:1])[0]
    assert [(d.cls, d.box) for d in a] == [(d.cls, d.box) for d in b] and len(a) >= 3
    written.write_bytes(b"not onnx")  # a damaged export is ignored, not trusted
    assert NanoDetDetector(config).onnx_source is None
