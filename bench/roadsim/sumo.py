"""SUMO as the source of true trajectories: network build (netconvert), simulation (sumo with
FCD output at 0.1 s), parsing of the floating car data, and an on-disk cache of the result.

The binaries come with the `eclipse-sumo` wheel (extra `bench`); they run offline. One
simulation per (scene, seed, duration) is cached as an .npz file, so every frame rate and noise
level of a scene reuses it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

STEP_S = 0.1  # SUMO step; the analysis frame rates (5, 10 fps) are multiples of it
CACHE_VERSION = "3"  # bump when the scenes or the parsing change, so stale caches are not reused


class SumoUnavailable(RuntimeError):
    """eclipse-sumo is not installed (pip install -e '.[bench]')."""


def sumo_binary(name: str) -> str:
    """Path of a SUMO tool (`sumo`, `netconvert`) from the eclipse-sumo wheel, else from PATH."""
    try:
        sumo = importlib.import_module("sumo")  # the eclipse-sumo wheel (untyped)
        path = os.path.join(sumo.SUMO_HOME, "bin", name)
        if os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which(name)
    if found is None:
        raise SumoUnavailable(f"SUMO tool {name!r} not found: pip install -e '.[bench]' (eclipse-sumo)")
    return found


def sumo_available() -> bool:
    try:
        sumo_binary("sumo")
        sumo_binary("netconvert")
    except SumoUnavailable:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Network:
    """Plain-XML network of a scene (what netconvert turns into a .net.xml)."""

    nodes: str  # <nodes> document
    edges: str  # <edges> document
    connections: str = ""  # <connections> document (crossings), optional
    options: tuple[str, ...] = ()  # extra netconvert options


@dataclass(frozen=True, slots=True)
class Trajectories:
    """Floating car data of one simulation, one row per object per 0.1 s step, sorted by step.

    x, y: SUMO position (m; for vehicles the centre of the FRONT bumper, for persons their
    centre); angle: SUMO heading in degrees (0 = north = +y, clockwise); speed m/s.
    """

    step: npt.NDArray[np.int64]  # step index (time = step * STEP_S)
    obj: npt.NDArray[np.int64]  # index into ids
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    angle: npt.NDArray[np.float64]
    speed: npt.NDArray[np.float64]
    ids: tuple[str, ...]
    types: tuple[str, ...]  # SUMO vType id per object ("person" for pedestrians)

    @property
    def t(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.step * STEP_S, dtype=np.float64)


_ROW = re.compile(
    rb'<(vehicle|person) id="([^"]+)" x="([^"]+)" y="([^"]+)" angle="([^"]+)" type="([^"]+)" speed="([^"]+)"'
)
_TIME = re.compile(rb'<timestep time="([^"]+)"')


def parse_fcd(data: bytes) -> Trajectories:
    """Parse SUMO FCD XML (attributes in SUMO's order: id x y angle type speed ...)."""
    ids: dict[bytes, int] = {}
    types: list[str] = []
    rows: list[tuple[int, int, float, float, float, float]] = []
    times = [(m.start(), round(float(m.group(1)) / STEP_S)) for m in _TIME.finditer(data)]
    ti = 0
    step = 0
    for m in _ROW.finditer(data):
        while ti < len(times) and times[ti][0] < m.start():
            step = times[ti][1]
            ti += 1
        kind, oid, x, y, angle, vtype, speed = m.groups()
        k = ids.get(oid)
        if k is None:
            k = ids[oid] = len(ids)
            types.append("person" if kind == b"person" else vtype.decode())
        rows.append((step, k, float(x), float(y), float(angle), float(speed)))
    arr = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return Trajectories(
        step=arr[:, 0].astype(np.int64), obj=arr[:, 1].astype(np.int64), x=arr[:, 2], y=arr[:, 3],
        angle=arr[:, 4], speed=arr[:, 5], ids=tuple(k.decode() for k in ids), types=tuple(types),
    )


def cache_dir() -> Path:
    """ROADSIM_CACHE, else <tmp>/smartcity-roadsim."""
    return Path(os.environ.get("ROADSIM_CACHE") or Path(tempfile.gettempdir()) / "smartcity-roadsim")


def simulate(
    name: str, network: Network, routes: str, *, seed: int, end_s: float, cache: Path | None = None
) -> Trajectories:
    """Run netconvert + sumo for one scene (or load the cached result) and return its FCD."""
    key = hashlib.sha256(
        "\0".join((CACHE_VERSION, name, str(seed), f"{end_s:.1f}", network.nodes, network.edges,
                   network.connections, " ".join(network.options), routes)).encode()
    ).hexdigest()[:16]
    root = cache if cache is not None else cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    npz = root / f"{name}-s{seed}-{end_s:.0f}s-{key}.npz"
    if npz.exists():
        with np.load(npz, allow_pickle=False) as z:
            return Trajectories(
                step=z["step"], obj=z["obj"], x=z["x"], y=z["y"], angle=z["angle"], speed=z["speed"],
                ids=tuple(str(s) for s in z["ids"]), types=tuple(str(s) for s in z["types"]),
            )
    with tempfile.TemporaryDirectory(prefix=f"roadsim-{name}-") as tmp:
        d = Path(tmp)
        (d / "n.nod.xml").write_text(network.nodes)
        (d / "n.edg.xml").write_text(network.edges)
        net_cmd = [sumo_binary("netconvert"), "-n", "n.nod.xml", "-e", "n.edg.xml", "-o", "n.net.xml",
                   "--offset.disable-normalization", "true", "--no-turnarounds", "true", *network.options]
        if network.connections:
            (d / "n.con.xml").write_text(network.connections)
            net_cmd += ["-x", "n.con.xml"]
        _run(net_cmd, d)
        (d / "r.rou.xml").write_text(routes)
        _run([sumo_binary("sumo"), "-n", "n.net.xml", "-r", "r.rou.xml", "--step-length", f"{STEP_S}",
              "--end", f"{end_s:.1f}", "--seed", str(seed), "--fcd-output", "fcd.xml",
              "--fcd-output.attributes", "x,y,angle,type,speed", "--lanechange.duration", "1.5",
              "--no-step-log", "true", "--no-warnings", "true", "--duration-log.disable", "true",
              "--collision.action", "none", "--time-to-teleport", "-1"], d)
        traj = parse_fcd((d / "fcd.xml").read_bytes())
    tmp_npz = npz.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp_npz, step=traj.step, obj=traj.obj, x=traj.x, y=traj.y, angle=traj.angle, speed=traj.speed,
             ids=np.array(traj.ids, dtype=str), types=np.array(traj.types, dtype=str))
    os.replace(tmp_npz, npz)
    return traj


def _run(cmd: list[str], cwd: Path) -> None:
    env = dict(os.environ)
    home = os.path.dirname(os.path.dirname(cmd[0]))
    if os.path.isdir(os.path.join(home, "data")):  # the wheel's (or a SUMO install's) data: XML schemas
        env["SUMO_HOME"] = home
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{os.path.basename(cmd[0])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
