"""Diagnostic memory tracing and the heap trim the camera-group actor runs every minute."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from smartcity.core import memtrace

glibc_only = pytest.mark.skipif(memtrace.glibc_heap() is None, reason="glibc's allocator only")


@glibc_only
def test_trim_heap_gives_fragmented_free_memory_back() -> None:
    # 48 MiB in blocks too large for Python's small-object allocator and too small for mmap: glibc's
    # heap; a block allocated after them pins the heap's top, so freeing them leaves a hole in the
    # middle that glibc keeps resident until trimmed
    blocks = [bytearray(4096) for _ in range(12_000)]
    pin = bytearray(4096)
    for b in blocks:
        b[::512] = b"x" * 8  # touch every page
    before_free = memtrace.rss_bytes()
    del blocks
    held = memtrace.rss_bytes()
    assert memtrace.trim_heap() is True
    after = memtrace.rss_bytes()
    assert held > before_free - 8 * 2**20, "glibc gave the freed blocks back by itself: the hole is not there"
    assert held - after >= 32 * 2**20, f"RSS {held / 2**20:.1f} -> {after / 2**20:.1f} MiB"
    assert pin[0] == 0


@glibc_only
def test_census_names_rss_heap_and_the_commonest_objects() -> None:
    text = memtrace.census()
    first, heap, gcline, *types = text.splitlines()
    assert first.startswith("rss ") and float(first.split()[1]) > 1.0
    assert heap.startswith("heap_in_use ") and "heap_free" in heap
    assert gcline.startswith("gc counts")
    assert len(types) == 40 and all(int(line.split()[0]) > 0 for line in types)


def test_start_from_env_is_off_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memtrace.ENV_DIR, raising=False)
    assert memtrace.start_from_env("test-off") is False


def test_diff_lists_what_grew_between_two_snapshots(tmp_path: Path) -> None:
    tracemalloc.start(4)
    try:
        a = tmp_path / "a.snap"
        tracemalloc.take_snapshot().dump(str(a))
        grown = [bytearray(1000) for _ in range(2000)]
        b = tmp_path / "b.snap"
        tracemalloc.take_snapshot().dump(str(b))
    finally:
        tracemalloc.stop()
    out = memtrace.diff(str(a), str(b), top=3)
    total = float(out.splitlines()[0].split()[1])
    assert total >= 1.5, out
    assert "test_memtrace.py" in out
    assert len(grown) == 2000
    assert memtrace.main([str(a), str(b), "--top", "1"]) == 0
    assert memtrace.main([]) == 2
