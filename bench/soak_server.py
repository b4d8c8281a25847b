"""The server of bench/soak.py: `smartcity.cli` run in this process, with its WebRTC host
candidates on 127.0.0.1 only (aioice leaves loopback out by default, and the bench addresses no
other interface), so that the soak's live view connects over loopback.

With `SOAK_TRACE_DIR` set (bench/soak.py `--trace-dir`), tracemalloc is on and a snapshot is
written there every `SOAK_TRACE_EVERY_S` seconds (default 60), from `SOAK_TRACE_DELAY_S`
(default 60) after the start on, with a gc/object census next to it. Compare two snapshots with `python bench/soak_server.py --diff A.snap B.snap [--top 25]`.
Diagnostic only: tracemalloc slows the server and adds its own memory, so the RSS figures of a
traced run are not the ones to report.
"""

from __future__ import annotations

import gc
import os
import runpy
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path


def loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def census() -> str:
    """Object counts by type (top 40), the gc generations' sizes, and frozen objects."""
    counts = Counter(type(o).__name__ for o in gc.get_objects())
    sizes = [len(gc.get_objects(generation=g)) for g in range(3)]
    lines = [f"gc counts {gc.get_count()} sizes {sizes} frozen {gc.get_freeze_count()} stats {gc.get_stats()}"]
    lines += [f"{n:9d} {name}" for name, n in counts.most_common(40)]
    return "\n".join(lines) + "\n"


def snapshots(out: Path, every_s: float, delay_s: float, frames: int) -> None:
    # started once the server runs: tracing its imports (torch, Ray) would slow the start-up
    # for minutes, and growth is what happens after it
    time.sleep(delay_s)
    tracemalloc.start(frames)
    k = 0
    while True:
        time.sleep(every_s)
        k += 1
        snap = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"))
        )
        snap.dump(str(out / f"server-{k:04d}.snap"))
        (out / f"census-{k:04d}.txt").write_text(census())


def diff(a: str, b: str, top: int) -> None:
    old, new = tracemalloc.Snapshot.load(a), tracemalloc.Snapshot.load(b)
    stats = new.compare_to(old, "traceback")
    total = sum(s.size_diff for s in stats)
    print(f"total {total / 2**20:+.2f} MiB between {a} and {b}")
    for s in stats[:top]:
        print(f"{s.size_diff / 2**10:+9.1f} KiB {s.count_diff:+7d} blocks")
        for line in s.traceback.format()[-8:]:
            print("    " + line)


def main() -> None:
    if sys.argv[1:2] == ["--diff"]:
        top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
        diff(sys.argv[2], sys.argv[3], top)
        return
    import aioice.ice

    aioice.ice.get_host_addresses = loopback_only  # type: ignore[assignment]
    if os.environ.get("SOAK_TRACE_DIR"):
        out = Path(os.environ["SOAK_TRACE_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        every = float(os.environ.get("SOAK_TRACE_EVERY_S", "60"))
        delay = float(os.environ.get("SOAK_TRACE_DELAY_S", "60"))
        frames = int(os.environ.get("SOAK_TRACE_FRAMES", "8"))
        threading.Thread(target=snapshots, args=(out, every, delay, frames), daemon=True, name="soak-trace").start()
    sys.argv = ["smartcity.cli", *sys.argv[1:]]
    runpy.run_module("smartcity.cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
