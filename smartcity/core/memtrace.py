"""Diagnostic memory tracing of a long-running process (bench/soak.py `--trace-dir`).

With `SMARTCITY_MEMTRACE_DIR` set, `start_from_env(label)` starts tracemalloc in this process and a
daemon thread that writes, every `SMARTCITY_MEMTRACE_EVERY_S` seconds (default 60) from
`SMARTCITY_MEMTRACE_DELAY_S` (default 60) on, a snapshot `<label>-<pid>-<k>.snap` and a census
`<label>-<pid>-<k>.txt` beside it: RSS, what tracemalloc traces, glibc's heap (in use and free, to
tell fragmentation from growth), gc generations and object counts by type. With
`SMARTCITY_MEMTRACE_FRAMES=0` only the census is written (no tracemalloc: its own memory and time
stay out of the figures). Without the variable
it does nothing. Ray workers inherit it from the server that starts a local cluster, so the camera
group and inference actors trace themselves too.

Compare two snapshots: `python -m smartcity.core.memtrace A.snap B.snap [--top 25]`.
Tracing slows a process and adds its own memory: a traced run's RSS is not a figure to report.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path

ENV_DIR = "SMARTCITY_MEMTRACE_DIR"
_started: set[str] = set()


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


@functools.cache
def libc() -> ctypes.CDLL | None:
    """glibc, loaded once for the process (the heap census, the trim, app.py's mallopt); None where
    there is none."""
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def glibc_heap() -> dict[str, int] | None:
    """glibc's malloc statistics (bytes): `in_use`, `free` inside the heap, `mmapped`; None off glibc."""
    fn = getattr(libc(), "mallinfo2", None)
    if fn is None:
        return None
    fn.restype = _MallInfo2
    info = fn()
    return {"in_use": int(info.uordblks), "free": int(info.fordblks), "mmapped": int(info.hblkhd)}


def trim_heap() -> bool:
    """Hand the free pages of glibc's heap back to the system (`malloc_trim(0)`); False off glibc.

    A process that decodes and analyses frames frees and allocates buffers of many sizes all the time;
    glibc keeps what it freed inside its arenas, fragmented, and the process's RSS creeps up by a few
    MiB per hour though nothing is live (bench/soak.py measured it in the camera-group actor). Run
    off the event loop: it holds the allocator's locks while it walks the heap (milliseconds)."""
    fn = getattr(libc(), "malloc_trim", None)
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    fn(0)
    return True


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def census() -> str:
    """RSS, traced and glibc heap figures, gc generations, then object counts by type (top 40)."""
    mib = 2**20
    traced, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
    heap = glibc_heap()
    lines = [f"rss {rss_bytes() / mib:.1f} MiB traced {traced / mib:.1f} MiB (peak {peak / mib:.1f})"]
    if heap is not None:
        lines.append(" ".join(f"heap_{k} {v / mib:.1f} MiB" for k, v in heap.items()))
    counts = Counter(type(o).__name__ for o in gc.get_objects())
    sizes = [len(gc.get_objects(generation=g)) for g in range(3)]
    lines.append(f"gc counts {gc.get_count()} sizes {sizes} frozen {gc.get_freeze_count()}")
    lines += [f"{n:9d} {name}" for name, n in counts.most_common(40)]
    return "\n".join(lines) + "\n"


def _loop(out: Path, label: str, every_s: float, delay_s: float, frames: int) -> None:
    # started once the process runs: tracing imports (torch, Ray) would slow its start for
    # minutes, and growth is what happens after it
    time.sleep(delay_s)
    if frames > 0:
        tracemalloc.start(frames)
    stem = f"{label}-{os.getpid()}"
    k = 0
    while True:
        time.sleep(every_s)
        k += 1
        if frames > 0:
            snap = tracemalloc.take_snapshot().filter_traces(
                (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"))
            )
            snap.dump(str(out / f"{stem}-{k:04d}.snap"))
        (out / f"{stem}-{k:04d}.txt").write_text(census())


def start_from_env(label: str) -> bool:
    """Start tracing this process under `label` if `SMARTCITY_MEMTRACE_DIR` is set (once per label)."""
    folder = os.environ.get(ENV_DIR)
    if not folder or label in _started:
        return False
    _started.add(label)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    every = float(os.environ.get("SMARTCITY_MEMTRACE_EVERY_S", "60"))
    delay = float(os.environ.get("SMARTCITY_MEMTRACE_DELAY_S", "60"))
    frames = int(os.environ.get("SMARTCITY_MEMTRACE_FRAMES", "8"))
    threading.Thread(target=_loop, args=(out, label, every, delay, frames), daemon=True, name="memtrace").start()
    return True


def diff(a: str, b: str, top: int = 25) -> str:
    old, new = tracemalloc.Snapshot.load(a), tracemalloc.Snapshot.load(b)
    stats = new.compare_to(old, "traceback")
    total = sum(s.size_diff for s in stats)
    lines = [f"total {total / 2**20:+.2f} MiB between {a} and {b}"]
    for s in stats[:top]:
        lines.append(f"{s.size_diff / 2**10:+9.1f} KiB {s.count_diff:+7d} blocks")
        lines += ["    " + line for line in s.traceback.format()[-8:]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m smartcity.core.memtrace A.snap B.snap [--top N]", file=sys.stderr)
        return 2
    top = int(argv[argv.index("--top") + 1]) if "--top" in argv else 25
    print(diff(argv[0], argv[1], top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
