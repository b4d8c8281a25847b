"""The server's periodic garbage collection: with its high thresholds (`GC_THRESHOLDS`), cyclic
garbage that reached the oldest generation would stay for good; `collect_garbage` frees it at its
next full pass, and garbage in the young generations at every pass."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from smartcity.app import GC_THRESHOLDS, collect_garbage


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


class _Stop(Exception):
    pass


@pytest.fixture
def server_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def _garbage_in_oldest_generation() -> weakref.ref[_Node]:
    node = _Node()
    gc.collect(1)  # still referenced: moved to the oldest generation
    ref = weakref.ref(node)
    del node  # now garbage that only a full collection frees
    return ref


async def test_garbage_in_the_oldest_generation_is_freed_by_the_full_pass(server_thresholds: None) -> None:
    old = _garbage_in_oldest_generation()
    young: list[weakref.ref[_Node]] = []
    passes = 0

    async def tick(_s: float) -> None:
        nonlocal passes
        passes += 1
        if passes == 10:  # the 10th pass (600 s / 60 s) is the full one: stop after it
            assert old() is not None, "the young passes do not reach the oldest generation"
            assert all(r() is None for r in young), "young garbage is freed at each pass"
        if passes == 11:
            raise _Stop
        node = _Node()
        young.append(weakref.ref(node))
        del node

    with pytest.raises(_Stop):
        await collect_garbage(60.0, 600.0, sleep=tick)
    assert old() is None


@pytest.mark.parametrize(
    ("setting", "env", "value"),
    [("limit_malloc_arenas", "MALLOC_ARENA_MAX", "4"), ("fix_mmap_threshold", "MALLOC_MMAP_THRESHOLD_", "262144")],
)
def test_malloc_is_tuned_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, setting: str, env: str, value: str
) -> None:
    import ctypes.util
    import sys

    import smartcity.app

    tune = getattr(smartcity.app, setting)
    monkeypatch.setenv(env, value)
    assert tune() is False  # an explicit setting wins
    monkeypatch.delenv(env)
    glibc = sys.platform.startswith("linux") and "libc.so" in (ctypes.util.find_library("c") or "")
    assert tune() is glibc
