"""Detector throughput: YOLOv3-tiny through torch (float32 and bfloat16) and onnxruntime on CPU
(and CUDA fp16 when present).

Usage: python bench/infer.py [--quick] [--seconds S] [--model-dir DIR]
The last line printed is JSON:
{"infer_fps": {"torch": {"1": ..., "8": ...}, "torch_bf16": {...}, "onnxruntime": {"1": ..., "8": ...}},
 "device": ..., "amx_bf16": ..., "faster_cpu_backend": ..., "cuda_fp16_b32_fps": ... (CUDA only)}
Inputs are 416x416 frames (the network size), CPU runs use one thread. `runtime: auto` follows
this table: torch_bf16 where the CPU has AMX, else onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcity.models.base import cpu_has_amx_bf16  # noqa: E402
from smartcity.models.benchmark import cpu_detectors, measure_infer_fps  # noqa: E402
from smartcity.models.config import DarknetDetectorConfig  # noqa: E402
from smartcity.models.darknet_detector import DarknetDetector  # noqa: E402
from smartcity.models.install import default_model_dir, install_default_model  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (whole bench under 90 s)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per measurement")
    parser.add_argument("--model-dir", type=Path, default=None, help="where the default model lives")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (4.0 if args.quick else 15.0)
    model_dir = install_default_model(args.model_dir or default_model_dir())
    torch.set_num_threads(1)

    fps: dict[str, dict[str, float]] = {}
    for name, detector in cpu_detectors(model_dir).items():
        fps[name] = {str(b): round(measure_infer_fps(detector, b, seconds), 2) for b in (1, 8)}
        print(f"{name:12s} cpu 1 thread: {fps[name]} frames/s", flush=True)
    result: dict[str, object] = {
        "infer_fps": fps,
        "device": f"cpu ({platform.processor() or platform.machine()}), torch {torch.__version__}",
        "amx_bf16": cpu_has_amx_bf16(),
        "faster_cpu_backend": max(fps, key=lambda r: fps[r]["8"]),
    }
    if torch.cuda.is_available():
        config = DarknetDetectorConfig(device="cuda", runtime="torch", fp16=True, classes=None)
        detector = DarknetDetector(config, model_dir=model_dir)
        result["cuda_fp16_b32_fps"] = round(measure_infer_fps(detector, 32, seconds), 1)
        result["cuda_device"] = torch.cuda.get_device_name()
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
