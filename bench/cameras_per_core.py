"""Cameras per core: how many 720p cameras the real pipeline analyses at 5 fps on this machine.

One camera group of N cameras (vtest.avi scaled to 1280x720, H.264, 10 fps, paced like live
cameras) runs through Ray with the default detector (NanoDet-g) on one single-threaded inference
actor per core; N grows until more than 5 % of the frames due for analysis (5 per second per
camera) are not analysed. Each N is measured twice, back to back: as shipped (the decoder resizing
to the detector's input, `analysis.decode_resize`, and the detector on rectangular inputs,
`detector.rect`: 416x256 for 720p) and as the code path was before both (full frames sent to the
inference actors, letterboxed into the square 416x416 input), so that both figures share the
machine's load of the moment.

Usage: python bench/cameras_per_core.py [--quick] [--max-cameras N] [--profile SECONDS]
`--profile` records the camera-group actor and an inference actor with py-spy at 2 cameras, both
ways, and prints the functions that took the most samples in each.

Prints progress lines, then as its LAST line a JSON object:
  cameras_per_core            sustained cameras / cores, decoder resize on
  cameras_per_core_baseline   the same with full frames on the square input (resize and rect off),
                              measured in the same run
  cameras_per_core_cpu(_baseline)  1 / the cores (camera-group actor + inference actors, CPU time)
                              used per camera analysed at 5 fps, 2 cameras, median of 3 runs: what
                              the cameras cost, less distorted by a loaded machine than the ramp
  camera_actor_cores_per_camera(_baseline), inference_ms_per_frame(_baseline)
  cores, sustained, sustained_baseline, steps (per N and mode: analysed fps, dropped fraction),
  load_avg (before, after), profile (with --profile)

`measure_cameras_per_core(quick=...)` returns the same dict (for bench/cluster.py); it starts and
stops a local Ray of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import psutil  # noqa: E402

from smartcity.actors.camera_group import CameraSpec  # noqa: E402
from smartcity.actors.runtime import GroupSpec, Reconciler, start_ray, stop_ray  # noqa: E402
from smartcity.core.aio import cancel_and_wait  # noqa: E402
from smartcity.core.config import ActorsConfig, AnalysisConfig, RayConfig  # noqa: E402
from smartcity.models.install import default_model_dir, install_default_model  # noqa: E402
from smartcity.sources import demo_video_path  # noqa: E402

ANALYSIS_FPS = 5.0
CPU_CAMERAS = 2  # cameras of the CPU-time comparison
PY_SPY_RATE = 50
MAX_DROPPED = 0.05
WIDTH, HEIGHT = 1280, 720


def say(msg: str) -> None:
    print(msg, flush=True)


def load_avg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def make_clip(out: Path, seconds: float = 30.0) -> Path:
    """The demo clip (people walking, 768x576, 10 fps) scaled to 720p H.264 as a camera sends it:
    no B-frames, a key frame a second."""
    src = demo_video_path()
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        fps = Fraction(stream.average_rate or 10).limit_denominator(1001)
        n = max(1, round(seconds * fps))
        with av.open(str(out), mode="w") as container:
            enc = container.add_stream("libx264", rate=fps)
            assert isinstance(enc, av.VideoStream)
            enc.width, enc.height, enc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            enc.codec_context.gop_size = max(1, round(fps))
            enc.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "23"}
            for i, frame in enumerate(inp.decode(stream)):
                if i >= n:
                    break
                scaled = frame.reformat(width=WIDTH, height=HEIGHT, format="yuv420p")
                scaled.pts, scaled.time_base = i, 1 / fps
                for packet in enc.encode(scaled):
                    container.mux(packet)
            for packet in enc.encode():
                container.mux(packet)
    return out


def analysis_config(cores: int, *, decode_resize: bool) -> AnalysisConfig:
    """As shipped (`decode_resize`, rectangular detector input) or the baseline (neither)."""
    detector: dict[str, Any] = {"type": "nanodet", "num_threads": 1}
    if not decode_resize:
        detector["rect"] = False
    fields: dict[str, Any] = {
        "detector": detector,
        "max_batch": 8,
        "max_wait_ms": 15,
        "inference_actors": cores,
        "inference_cpus": 1,
        "max_inflight": 3,
    }
    if "decode_resize" in AnalysisConfig.model_fields:
        fields["decode_resize"] = decode_resize
    elif decode_resize:
        raise SystemExit("this checkout has no analysis.decode_resize")
    return AnalysisConfig(**fields)


class Sink:
    async def deliver(self, events: Any) -> None:
        pass


async def _run(
    n: int, clip: Path, analysis: AnalysisConfig, *, warmup_s: float, measure_s: float, profile_s: float = 0.0
) -> dict[str, Any]:
    cams = tuple(CameraSpec(id=f"hd{i}", url=f"file://{clip}", analysis_fps=ANALYSIS_FPS) for i in range(n))
    group = GroupSpec(f"cpc{n}", cams)

    async def desired() -> list[GroupSpec]:
        return [group]

    with tempfile.TemporaryDirectory() as tmp:
        rec = Reconciler(
            desired,
            Sink(),
            actors=ActorsConfig(health_interval_s=1.0, pull_interval_s=0.2, reconcile_interval_s=1.0),
            ray_cfg=RayConfig(actor_cpus=0),
            spool_dir=Path(tmp),
            analysis=analysis,
            realtime=True,
        )
        task = asyncio.get_running_loop().create_task(rec.run())
        try:

            async def ping() -> Any:
                h = rec.handle(group.name)
                if h is None:
                    return None
                try:
                    return await h.ping.remote()
                except Exception:
                    return None

            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                info = await ping()
                if info is not None and len(info.pipelines) == n and min(p.analysed for p in info.pipelines.values()) > 0:
                    break
                await asyncio.sleep(0.5)
            else:
                raise TimeoutError(f"{n} cameras did not start analysing within 180 s")
            await asyncio.sleep(warmup_s)
            handles = [rec.inference_handle(i) for i in range(analysis.inference_actors)]
            pids = [int((await h.info.remote())["pid"]) for h in handles if h is not None]
            first, t0 = await ping(), time.monotonic()
            cpu0 = _cpu_s(first.pid), sum(_cpu_s(p) for p in pids)
            profile = None
            if profile_s > 0:  # the camera-group actor and the first inference actor, side by side
                camera, inference = await asyncio.gather(
                    asyncio.to_thread(py_spy, first.pid, profile_s), asyncio.to_thread(py_spy, pids[0], profile_s)
                )
                profile = {"camera_group": camera, "inference": inference}
            await asyncio.sleep(max(0.0, measure_s - (time.monotonic() - t0)))
            last, t1 = await ping(), time.monotonic()
            cpu1 = _cpu_s(last.pid), sum(_cpu_s(p) for p in pids)
        finally:
            await cancel_and_wait(task)
    span = t1 - t0
    analysed = sum(last.pipelines[c].analysed - first.pipelines[c].analysed for c in last.pipelines)
    inferred = sum(last.pipelines[c].inferred - first.pipelines[c].inferred for c in last.pipelines)
    due = n * ANALYSIS_FPS * span
    group_cores, inference_cores = (cpu1[0] - cpu0[0]) / span, (cpu1[1] - cpu0[1]) / span
    out: dict[str, Any] = {
        "cameras": n,
        "analysed_fps": round(analysed / span, 2),
        "dropped": round(max(0.0, 1.0 - analysed / due), 4),
        "inferred": inferred,
        # CPU time, which a loaded machine stretches less than wall time: the camera-group actor's
        # per camera, the inference actors' per detector call, and both per camera analysed at
        # 5 fps (the decode of frames not analysed is counted in, so this leans pessimistic)
        "camera_actor_cores_per_camera": round(group_cores / n, 4),
        "inference_ms_per_frame": round(inference_cores * span / max(1, inferred) * 1000, 1),
        "cores_per_camera": round((group_cores + inference_cores) / max(1e-9, analysed / span / ANALYSIS_FPS), 4),
        "load_avg": load_avg(),
    }
    if profile is not None:
        out["profile"] = profile
    return out


def _cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def py_spy(pid: int, seconds: float, top: int = 25) -> dict[str, Any]:
    """py-spy samples of one process (all threads, native frames off): the functions with the most
    samples on the stack (inclusive) and at its top (self), as `file:function` -> share."""
    exe = Path(sys.executable).with_name("py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stacks.txt"
        # every thread py-spy does not see idle: on a loaded machine that includes threads waiting
        # for a core, so shares lean towards the decode threads (--gil was tried: under load it
        # caught too few samples to rank anything)
        cmd = [str(exe), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(PY_SPY_RATE)]
        cmd += ["--format", "raw", "--output", str(raw), "--nonblocking"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=seconds + 60)
        lines = raw.read_text().splitlines()
    return summarise_stacks(lines, seconds * PY_SPY_RATE, top)


def summarise_stacks(lines: list[str], slots: float, top: int = 25) -> dict[str, Any]:
    """py-spy's raw output (`frame;frame;... count` per line, root first) as the share of the
    samples each function was on the stack (inclusive) and at its top (self); samples waiting
    in Ray's core worker or on a condition variable are left out. `slots`: seconds x rate."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if frames and frames[-1] in _WAITING:
            continue
        total += n
        for f in set(frames):
            inclusive[f] += n
        if frames:
            own[frames[-1]] += n
    # samples / (seconds x rate): threads active on average (running or waiting for a core)
    return {
        "samples": total,
        "active_threads": round(total / max(1.0, slots), 3),
        "self": {k: round(v / max(1, total), 3) for k, v in own.most_common(top)},
        "inclusive": {k: round(v / max(1, total), 3) for k, v in inclusive.most_common(top)},
    }


_WAITING = frozenset({"worker.py:Worker.main_loop", "threading.py:Condition.wait", "selectors.py:EpollSelector.select"})


def _frame_name(frame: str) -> str:
    # py-spy raw frames: "function (path/to/file.py:line)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[parts.index("smartcity") :]) if "smartcity" in parts else Path(path).name
    return f"{short}:{name}"


def measure_cameras_per_core(
    *, quick: bool = False, max_cameras: int = 12, profile_s: float = 0.0, cores: int | None = None
) -> dict[str, Any]:
    """Ramp 720p cameras (decoder resize on, then off, at each count) until more than 5 % of due
    frames are dropped both ways; `cameras_per_core` = the largest count sustained / cores."""
    import ray

    if ray.is_initialized():  # start_ray would attach to it: the figure is this machine's, alone
        raise RuntimeError("measure_cameras_per_core starts a local Ray of its own: call it with Ray stopped")
    cores = cores or os.cpu_count() or 1
    install_default_model(default_model_dir())
    warmup_s, measure_s = (3.0, 8.0) if quick else (5.0, 20.0)
    result: dict[str, Any] = {"cores": cores, "input": f"{WIDTH}x{HEIGHT} H.264 10 fps (vtest.avi scaled)"}
    load0 = load_avg()
    start_ray(RayConfig(num_cpus=cores, object_store_mb=256, namespace="bench-cpc"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            clip = make_clip(Path(tmp) / "720p.mp4", seconds=20.0 if quick else 30.0)
            modes = {"resize": True, "baseline": False}
            if profile_s > 0:
                result["profile"] = {}
                for mode, resize in modes.items():
                    step = asyncio.run(
                        _run(2, clip, analysis_config(cores, decode_resize=resize), warmup_s=warmup_s,
                             measure_s=profile_s + 2, profile_s=profile_s)
                    )
                    result["profile"][mode] = step.pop("profile")
                    say(f"profile {mode}: {json.dumps(result['profile'][mode])}")
            # CPU per camera at a fixed count, the modes interleaved (the median of the runs counts)
            cpu: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            for _ in range(2 if quick else 3):
                for mode, resize in modes.items():
                    step = asyncio.run(
                        _run(CPU_CAMERAS, clip, analysis_config(cores, decode_resize=resize), warmup_s=warmup_s, measure_s=measure_s)
                    )
                    cpu[mode].append(step)
                    say(json.dumps({"cpu_run": mode, **step}))
            for mode in modes:
                runs = sorted(cpu[mode], key=lambda r: r["cores_per_camera"])
                mid = runs[len(runs) // 2]
                suffix = "" if mode == "resize" else "_baseline"
                result[f"cameras_per_core_cpu{suffix}"] = round(1.0 / mid["cores_per_camera"], 2)
                result[f"camera_actor_cores_per_camera{suffix}"] = round(
                    statistics.median(r["camera_actor_cores_per_camera"] for r in runs), 4
                )
                result[f"inference_ms_per_frame{suffix}"] = round(
                    statistics.median(r["inference_ms_per_frame"] for r in runs), 1
                )
            sustained = dict.fromkeys(modes, 0)
            steps: list[dict[str, Any]] = []
            live = dict.fromkeys(modes, True)
            for n in range(1, max_cameras + 1):
                for mode, resize in modes.items():
                    if not live[mode]:
                        continue
                    step = asyncio.run(
                        _run(n, clip, analysis_config(cores, decode_resize=resize), warmup_s=warmup_s, measure_s=measure_s)
                    )
                    step["mode"] = mode
                    steps.append(step)
                    say(json.dumps(step))
                    if step["dropped"] <= MAX_DROPPED:
                        sustained[mode] = n
                    else:
                        live[mode] = False
                if not any(live.values()):
                    break
    finally:
        stop_ray()
    result.update(
        cameras_per_core=round(sustained["resize"] / cores, 2),
        cameras_per_core_baseline=round(sustained["baseline"] / cores, 2),
        sustained=sustained["resize"],
        sustained_baseline=sustained["baseline"],
        goal_cameras_per_core=3,
        steps=steps,
        load_avg=[load0, load_avg()],
    )
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter phases (8 s per step)")
    p.add_argument("--max-cameras", type=int, default=12)
    p.add_argument("--profile", type=float, default=0.0, metavar="SECONDS", help="py-spy the camera-group actor and an inference actor first")
    args = p.parse_args()
    print(json.dumps(measure_cameras_per_core(quick=args.quick, max_cameras=args.max_cameras, profile_s=args.profile)))


if __name__ == "__main__":
    main()
