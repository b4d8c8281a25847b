"""The Ray this server runs on: connect to a cluster, or start a local one bound to loopback
with token authentication, and stop it. Ray is imported only when called."""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

from smartcity.core.config import RayConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RayStarted:
    """The Ray this process uses: its GCS address, and whether this process started it
    (then it is this process's to stop)."""

    address: str
    started: bool


def start_ray(cfg: RayConfig) -> RayStarted:
    """Connect to `cfg.address`, or start a local Ray without dashboard, bounded by config."""
    import ray

    if ray.is_initialized():
        return RayStarted(address=ray.get_runtime_context().gcs_address, started=False)
    # Ray installs abseil's failure handler on SIGTERM, which aborts the process 3 s later
    # instead of letting the server shut down gracefully: keep the handlers we had.
    saved = _signal_handlers()
    try:
        return _init_ray(cfg)
    finally:
        _restore_signal_handlers(saved)


def _signal_handlers() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore_signal_handlers(saved: dict[int, Any]) -> None:
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)


def _init_ray(cfg: RayConfig) -> RayStarted:
    import ray

    from smartcity.models.install import MODEL_DIR_ENV, default_model_dir

    # workers inherit the environment: give them an absolute model directory
    os.environ[MODEL_DIR_ENV] = str(default_model_dir().resolve())

    if cfg.address:
        if _on_loopback(cfg.address):  # a cluster of this machine (`actors.local_cluster`)
            _local_ray_on_loopback()
        _token_mode_from_environment()
        ctx = ray.init(address=cfg.address, namespace=cfg.namespace, log_to_driver=False)
    else:
        _local_ray_on_loopback()
        # the local Ray's daemons and workers inherit this environment: few malloc arenas and a
        # fixed mmap threshold, as in the server (`app.limit_malloc_arenas`,
        # `app.fix_mmap_threshold`), so their RSS levels off instead of creeping up
        os.environ.setdefault(MALLOC_ARENA_ENV, str(MALLOC_ARENAS))
        os.environ.setdefault(MALLOC_MMAP_ENV, str(MMAP_THRESHOLD))
        ctx = ray.init(
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
            object_store_memory=cfg.object_store_mb * 1024 * 1024,
            include_dashboard=False,
            namespace=cfg.namespace,
            log_to_driver=False,
            configure_logging=False,
            _node_ip_address=LOOPBACK,
        )
    del ctx
    address: str = ray.get_runtime_context().gcs_address
    if not cfg.address:
        _check_local_ray(address)
    return RayStarted(address=address, started=True)


LOOPBACK = "127.0.0.1"
# glibc gives threads that allocate at once arenas of their own (up to 8 per core), whose freed
# pages fragment, a common cause of RSS that creeps up for hours; with 2, the inference actor of
# bench/soak.py held ~40 MiB less (662 vs 701 MiB in two 11-minute runs)
MALLOC_ARENA_ENV = "MALLOC_ARENA_MAX"
MALLOC_ARENAS = 2
# glibc serves a block of at least the mmap threshold (128 KiB) with a mapping of its own, given
# back at free(), but raises the threshold to the size of each such block freed, up to 32 MiB:
# after the first big one, the frames (436 KiB to 1.3 MiB planes and pictures, made and freed by
# decoder, worker and Ray threads at 10-30 a second) came from the arenas, whose freed holes they
# fragment. bench/soak.py's camera group grew from 193 to 478 MiB of anonymous memory in its
# first 10 minutes, 163 MiB of it free inside the arenas (malloc_info). A fixed threshold (which
# also stops the raising) keeps them in mappings of their own: the same group stayed within
# 150-380 MiB, up and down with the frames in flight.
MALLOC_MMAP_ENV = "MALLOC_MMAP_THRESHOLD_"
MMAP_THRESHOLD = 128 * 1024
_AUTH_MODE_ENV = "RAY_AUTH_MODE"
# Ray binds its GCS, raylet, workers and agents to the node IP, which it resolves to the
# primary interface (and turns a given 127.0.0.1 back into it) unless "clusters" are off, as on
# macOS: then the node IP is loopback and so is every listening socket. Ray reads the variable
# once at import (the driver may have imported it already) and its children at their start.
_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _on_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in (LOOPBACK, "::1", "localhost")


def _local_ray_on_loopback() -> None:
    """Before starting a local Ray: node IP on loopback, token auth on (Ray >= 2.59 turns it
    on for local clusters unless RAY_AUTH_MODE says otherwise, so an override is dropped)."""
    from ray._private import ray_constants

    os.environ[_CLUSTER_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    mode = os.environ.get(_AUTH_MODE_ENV)
    if mode is not None and mode.lower() != "token":
        log.warning("%s=%s ignored: the local Ray always uses token authentication", _AUTH_MODE_ENV, mode)
        del os.environ[_AUTH_MODE_ENV]


def _token_mode_from_environment() -> None:
    """Ray caches its settings at import: a RAY_AUTH_MODE=token set later (a test, a bench
    attaching to the cluster it started) is applied before connecting."""
    if os.environ.get(_AUTH_MODE_ENV, "").lower() == "token":
        from ray._private.authentication.authentication_token_setup import _enable_token_auth

        _enable_token_auth()


def _check_local_ray(gcs_address: str) -> None:
    """Refuse to run on a local Ray that is reachable from the network or has no token auth
    (a Ray version that ignores the settings above): anyone who reaches it runs code as us."""
    host = gcs_address.rsplit(":", 1)[0].strip("[]")
    problems = []
    if host not in (LOOPBACK, "::1", "localhost"):
        problems.append(f"its GCS is on {host}, not loopback")
    if os.environ.get(_AUTH_MODE_ENV, "").lower() != "token":
        problems.append("token authentication is off")
    if problems:
        stop_ray()
        raise RuntimeError(f"local Ray refused: {'; '.join(problems)} (check the installed Ray version, >= 2.59)")


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
