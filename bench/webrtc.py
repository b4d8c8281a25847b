"""Benchmark: live views of one 640x480 camera to 1, 4 and 8 WebRTC viewers through LiveViewHub.

The server (this process) runs the hub over a synthetic 25 fps camera whose frames carry their
number in pixels and two people to pixelate; the viewers are real aiortc peers in a separate
process (so the server's CPU figure is its own), connected over loopback host candidates.

Latency, per frame: capture time (frame number -> capture instant of the synthetic camera) to
  - `p50_ms`/`p95_ms`: the frame's last RTP packet received by the viewer (a browser decodes a
    frame as soon as its marker packet is in; decoding 640x480 adds ~1-2 ms);
  - `decoded_p50_ms`/`decoded_p95_ms`: the frame decoded by aiortc's receiver, whose jitter buffer
    releases a frame only when the next frame's first packet arrives (+1/fps, an aiortc artefact).
`cpu_cores`: server process CPU time / wall time while viewers watch. `encodes_per_frame`: encodes
per source frame taken (1 when shared). Baseline in the same run: 4 viewers with one encoder each
(four hubs, same encoder settings), so the sharing ratio survives a noisy machine.

    python bench/webrtc.py --quick      # ~40 s
    python bench/webrtc.py              # longer windows
The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aioice.ice  # noqa: E402

from smartcity.core.aio import wait_for
from smartcity.sources import generate_test_clip, read_frame_counter  # noqa: E402
from smartcity.webrtc import LiveFrame, LiveViewConfig, LiveViewHub  # noqa: E402
from smartcity.webrtc.hub import settle_then_close  # noqa: E402

WIDTH, HEIGHT, SRC_FPS, LIVE_FPS = 640, 480, 25.0, 10.0
COUNTER_BITS, COUNTER_ROWS = 16, 16


def draw_counter(img: np.ndarray, n: int) -> None:
    """The frame number in the layout `read_frame_counter` reads (as generate_test_clip draws it)."""
    cell = img.shape[1] // COUNTER_BITS
    img[:COUNTER_ROWS, : cell * COUNTER_BITS] = 0
    for bit in range(COUNTER_BITS):
        if (n >> (COUNTER_BITS - 1 - bit)) & 1:
            img[:COUNTER_ROWS, bit * cell : (bit + 1) * cell] = 255


class SyntheticCamera:
    """Frame i is captured at start + i / SRC_FPS: a moving-boxes clip, its number drawn on top."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self._frames = frames
        self.start = time.time()

    async def live_frame(self, camera_id: str) -> LiveFrame | None:
        index = int((time.time() - self.start) * SRC_FPS)
        img = self._frames[index % len(self._frames)].copy()
        draw_counter(img, index)
        x = 40 + (index * 4) % 400
        people = ((float(x), 200.0, x + 60.0, 380.0), (500.0, 150.0, 560.0, 330.0))
        return LiveFrame(image=img, t=self.start + index / SRC_FPS, index=index, person_boxes=people)


def load_frames() -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        clip = generate_test_clip(Path(tmp) / "cam.mp4", width=WIDTH, height=HEIGHT, fps=SRC_FPS, seconds=2.0)
        with av.open(str(clip)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


# -- viewers (child process) ----------------------------------------------------------------------


async def ask_stdin() -> dict[str, Any]:
    line = await asyncio.to_thread(sys.stdin.readline)
    if not line:
        raise SystemExit(0)
    msg: dict[str, Any] = json.loads(line)
    return msg


def say(msg: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def record_marker_arrivals(receiver: Any) -> dict[int, float]:
    """RTP timestamp -> wall time the frame's last (marker) packet reached this viewer."""
    marks: dict[int, float] = {}
    original = receiver._handle_rtp_packet

    async def handle(packet: Any, arrival_time_ms: int) -> None:
        if packet.marker and packet.timestamp not in marks:
            marks[packet.timestamp] = time.time()
        await original(packet, arrival_time_ms)

    setattr(receiver, "_handle_rtp_packet", handle)  # noqa: B010 (bench-only probe on aiortc's receiver)
    return marks


async def watch_viewer(track: Any, marks: dict[int, float], window: dict[str, float], out: list[Any]) -> None:
    first_ts: int | None = None
    while True:
        frame = await track.recv()
        now = time.time()
        if first_ts is None:
            # aiortc's receiver numbers decoded frames from the first complete frame's RTP timestamp
            first_ts = min(marks) if marks else 0
        if "t0" not in window or now < window["t0"]:
            continue
        idx = read_frame_counter(frame.to_ndarray(format="rgb24"))
        ts = (first_ts + int(frame.pts)) % (1 << 32)
        out.append((idx, marks.get(ts, float("nan")), now))


async def client_round(n: int) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    pcs, tracks, arrivals = [], [], []
    for _ in range(n):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        tr = pc.addTransceiver("video", direction="recvonly")
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pc.on("track", lambda t, got=got: got.done() or got.set_result(t))
        arrivals.append(record_marker_arrivals(tr.receiver))
        await pc.setLocalDescription(await pc.createOffer())
        pcs.append(pc)
        tracks.append(got)
    say({"offers": [pc.localDescription.sdp for pc in pcs]})
    answer = await ask_stdin()
    for pc, sdp in zip(pcs, answer["answers"]):
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    live = [await wait_for(t, 10) for t in tracks]
    window: dict[str, float] = {}
    samples: list[list[Any]] = [[] for _ in range(n)]
    watchers = [asyncio.ensure_future(watch_viewer(live[k], arrivals[k], window, samples[k])) for k in range(n)]
    await asyncio.sleep(float(answer["warmup_s"]))
    window["t0"] = time.time()
    say({"measuring": True})
    await asyncio.sleep(float(answer["duration_s"]))
    say({"results": samples, "t0": window["t0"], "t1": time.time(), "start": float(answer["src_start"])})
    for w in watchers:
        w.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    await asyncio.gather(*(settle_then_close(pc) for pc in pcs))


async def client_main() -> None:
    while True:
        await client_round(int((await ask_stdin())["n"]))


# -- server (this process) ------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return round(float(np.percentile(values, q)), 1)


async def scenario(
    proc: asyncio.subprocess.Process, frames: list[np.ndarray], n: int, *, shared: bool, warm: float, dur: float
) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    cam = SyntheticCamera(frames)
    cfg = LiveViewConfig(fps=LIVE_FPS, bitrate_kbps=1000, max_width=WIDTH, max_height=HEIGHT)
    hubs = [LiveViewHub(cam, cfg) for _ in range(1 if shared else n)]

    async def ask(msg: dict[str, Any]) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(msg) + "\n").encode())
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        reply: dict[str, Any] = json.loads(line)
        return reply

    me = psutil.Process()
    try:
        offers = (await ask({"n": n}))["offers"]
        answers = [await hubs[i % len(hubs)].answer("cam", sdp) for i, sdp in enumerate(offers)]
        reply = await ask({"answers": answers, "src_start": cam.start, "warmup_s": warm, "duration_s": dur})
        assert reply.get("measuring")
        c0, w0 = me.cpu_times(), time.monotonic()
        stats0 = [h.stats().camera("cam") for h in hubs]
        line = await proc.stdout.readline()
        c1, w1 = me.cpu_times(), time.monotonic()
        stats1 = [h.stats().camera("cam") for h in hubs]
        result = json.loads(line)
    finally:
        for h in hubs:
            await h.close()
    complete, decoded = [], []
    per_viewer = []
    for samples in result["results"]:
        per_viewer.append(len(samples))
        for idx, t_complete, t_decoded in samples:
            captured = result["start"] + idx / SRC_FPS
            if t_complete == t_complete:  # not NaN
                complete.append((t_complete - captured) * 1000)
            decoded.append((t_decoded - captured) * 1000)
    encodes = sum(b.encodes - a.encodes for a, b in zip(stats0, stats1))
    frames_in = sum(b.frames_in - a.frames_in for a, b in zip(stats0, stats1))
    window = result["t1"] - result["t0"]
    return {
        "p50_ms": pct(complete, 50),
        "p95_ms": pct(complete, 95),
        "decoded_p50_ms": pct(decoded, 50),
        "decoded_p95_ms": pct(decoded, 95),
        "cpu_cores": round((c1.user + c1.system - c0.user - c0.system) / (w1 - w0), 3),
        "encodes_per_frame": round(encodes / max(1, frames_in), 3) if shared else round(encodes / max(1, frames_in / n), 3),
        "encoders": sum(s.encoders for s in stats1),
        "frames_per_viewer_per_s": round(statistics.mean(per_viewer) / window, 2),
        "viewers_decoding": sum(1 for c in per_viewer if c),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    frames = load_frames()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    warm, dur = (1.5, 4.0) if args.quick else (3.0, 15.0)
    out: dict[str, Any] = {"bench": "webrtc", "camera": f"{WIDTH}x{HEIGHT}", "source_fps": SRC_FPS, "live_fps": LIVE_FPS,
                           "codec": LiveViewConfig().codecs[0], "cpus": psutil.cpu_count(), "viewers": {}}
    try:
        for n in (1, 4, 8):
            out["viewers"][str(n)] = await scenario(proc, frames, n, shared=True, warm=warm, dur=dur)
            print(f"{n} viewers, shared encoder: {out['viewers'][str(n)]}", flush=True)
        base = await scenario(proc, frames, 4, shared=False, warm=warm, dur=dur)
        print(f"4 viewers, one encoder each (baseline): {base}", flush=True)
        out["baseline_per_viewer_encoders"] = {"4": base}
        shared4 = out["viewers"]["4"]
        out["cpu_ratio_baseline_over_shared_4"] = round(base["cpu_cores"] / max(1e-6, shared4["cpu_cores"]), 2)
        out["goal_8_viewers_p95_le_150ms_le_1_core"] = bool(
            out["viewers"]["8"]["p95_ms"] <= 150 and out["viewers"]["8"]["cpu_cores"] <= 1.0
        )
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await proc.wait()
    return out


def _loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


# Both ends (this process and the --client one) offer only 127.0.0.1 host candidates: aioice
# skips loopback by default, and the benchmark must not address any other interface.
aioice.ice.get_host_addresses = _loopback_only  # type: ignore[assignment]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short windows (about 40 s in all)")
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.client:
        asyncio.run(client_main())
    else:
        print(json.dumps(asyncio.run(main(a))))
