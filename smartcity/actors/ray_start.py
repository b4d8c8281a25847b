"""`ray start` for a node whose every socket stays on loopback: Ray's own CLI, run with
clusters off (the node IP is then 127.0.0.1) but accepting `--address` (a worker node).

Ray resolves 127.0.0.1 to the primary interface and binds every server to it whenever
"clusters" are on (Linux's default); with them off, as on macOS, it keeps loopback, but
`ray start --address` then refuses to start a worker node. Several nodes on one machine
(tests, benchmarks, a single-box deployment with node isolation) need both, so the refusal,
and only it, sees clusters on. Usage: `python -m smartcity.actors.ray_start start ...`
with the arguments of `ray start`.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class _ClustersOn:
    """Ray's constants module as `ray start`'s own checks see it: clusters allowed."""

    ENABLE_RAY_CLUSTER = True

    def __init__(self, constants: ModuleType) -> None:
        self._constants = constants

    def __getattr__(self, name: str) -> Any:
        return getattr(self._constants, name)


def main(argv: list[str] | None = None) -> None:
    os.environ[CLUSTER_ENV] = "0"  # read once, at Ray's import, here and in every child
    from ray._private import ray_constants
    from ray.scripts import scripts

    scripts.ray_constants = _ClustersOn(ray_constants)  # type: ignore[assignment]
    sys.argv = ["ray", *(sys.argv[1:] if argv is None else argv)]
    scripts.main()


if __name__ == "__main__":
    main()
