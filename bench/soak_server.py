"""The server of bench/soak.py: `smartcity.cli` run in this process, with its WebRTC host
candidates on 127.0.0.1 only (aioice leaves loopback out by default, and the bench addresses no
other interface), so that the soak's live view connects over loopback.

With `SMARTCITY_MEMTRACE_DIR` set (bench/soak.py `--trace-dir`), this process and the Ray actors it
starts trace their memory (smartcity/core/memtrace.py): snapshots and censuses in that folder.
Compare two: `python -m smartcity.core.memtrace A.snap B.snap [--top 25]`.
Diagnostic only: tracemalloc slows the processes and adds its own memory, so the RSS figures of a
traced run are not the ones to report.
"""

from __future__ import annotations

import runpy
import sys


def loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def main() -> None:
    import aioice.ice

    from smartcity.core import memtrace

    aioice.ice.get_host_addresses = loopback_only  # type: ignore[assignment]
    memtrace.start_from_env("server")
    sys.argv = ["smartcity.cli", *sys.argv[1:]]
    runpy.run_module("smartcity.cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
