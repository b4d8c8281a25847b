"""Detections logs: their format, the opt-in recorder the camera actors write, and a validating
reader (replay reads them).

Format (JSON lines, UTF-8, one analysed frame per line, in the order frames were analysed):

    {"camera": "north-gate", "t": 1732800000.2, "width": 1920, "height": 1080,
     "detections": [{"box": [x1, y1, x2, y2], "class": "car", "score": 0.87}, ...]}

- `camera`: camera id (non-empty string).
- `t`: time of the frame, unix seconds (finite number). Per camera, frames follow each other
  in time; cameras may be interleaved.
- `width`, `height`: frame size in pixels (positive integers); rules use normalised
  coordinates, so replay needs them.
- `detections`: what the detector returned for that frame, possibly empty. `box` is four
  finite numbers in pixels of the frame with x1 <= x2 and y1 <= y2, `class` a non-empty
  string, `score` a number in [0, 1].

No other field is allowed and no line is skipped: an empty or invalid line stops the
reader with `line N: field.path: what is wrong`. The log holds anonymous boxes only: no
image, no track id, nothing that identifies a person or a vehicle.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from smartcity.core.errors import ValidationFailed
from smartcity.core.files import open_private, private_dir
from smartcity.core.vision import Detection

log = logging.getLogger(__name__)

_FRAME_KEYS = ("camera", "t", "width", "height", "detections")
_DETECTION_KEYS = ("box", "class", "score")


class DetectionLogError(ValidationFailed):
    """A line of a detections log that does not follow the format; names the line and the field."""

    def __init__(self, line: int, field_path: str, message: str) -> None:
        super().__init__(f"line {line}: {field_path}: {message}")
        self.line = line
        self.field_path = field_path
        self.problem = message


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One analysed frame of a detections log."""

    camera: str
    t: float
    width: int
    height: int
    detections: tuple[Detection, ...] = field(default_factory=tuple)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_keys(obj: dict[str, Any], allowed: tuple[str, ...], where: str, line: int) -> None:
    for key in obj:
        if key not in allowed:
            raise DetectionLogError(line, f"{where}{'.' if where else ''}{key}", "unknown field")
    for key in allowed:
        if key not in obj:
            raise DetectionLogError(line, f"{where}{'.' if where else ''}{key}", "field required")


def _detection(obj: Any, where: str, line: int) -> Detection:
    if not isinstance(obj, dict):
        raise DetectionLogError(line, where, f"expected an object, got {_json_type(obj)}")
    _check_keys(obj, _DETECTION_KEYS, where, line)
    box = obj["box"]
    if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
        raise DetectionLogError(line, f"{where}.box", "expected 4 numbers")
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 < x1 or y2 < y1:
        raise DetectionLogError(line, f"{where}.box", "expected x1 <= x2 and y1 <= y2")
    cls = obj["class"]
    if not isinstance(cls, str) or not cls:
        raise DetectionLogError(line, f"{where}.class", "expected a non-empty string")
    score = obj["score"]
    if not _is_number(score) or not 0.0 <= score <= 1.0:
        raise DetectionLogError(line, f"{where}.score", "expected a number in [0, 1]")
    return Detection(box=(x1, y1, x2, y2), cls=cls, score=float(score))


def _json_type(v: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(v), "a number")


def frame_record_from_json(obj: Any, line: int) -> FrameRecord:
    """Validate one decoded line; raises DetectionLogError naming `line` and the field."""
    if not isinstance(obj, dict):
        raise DetectionLogError(line, "(root)", f"expected an object, got {_json_type(obj)}")
    _check_keys(obj, _FRAME_KEYS, "", line)
    camera = obj["camera"]
    if not isinstance(camera, str) or not camera:
        raise DetectionLogError(line, "camera", "expected a non-empty string")
    t = obj["t"]
    if not _is_number(t):
        raise DetectionLogError(line, "t", "expected a finite number of seconds")
    for key in ("width", "height"):
        v = obj[key]
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise DetectionLogError(line, key, "expected a positive integer")
    detections = obj["detections"]
    if not isinstance(detections, list):
        raise DetectionLogError(line, "detections", f"expected a list, got {_json_type(detections)}")
    dets = tuple(_detection(d, f"detections[{i}]", line) for i, d in enumerate(detections))
    return FrameRecord(camera=camera, t=float(t), width=obj["width"], height=obj["height"], detections=dets)


def parse_detection_line(text: str, line: int) -> FrameRecord:
    """Decode and validate one line of a detections log (without its newline)."""
    if not text.strip():
        raise DetectionLogError(line, "(root)", "empty line")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise DetectionLogError(line, "(root)", f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:  # NaN / Infinity, which JSON does not have
        raise DetectionLogError(line, "(root)", str(exc)) from None
    return frame_record_from_json(obj, line)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_detection_log(path: str | Path) -> Generator[FrameRecord, None, None]:
    """Yield the frames of a detections log in file order, validating every line.

    Raises DetectionLogError at the first bad line (`line 12: detections[3].box: expected 4
    numbers`) and OSError if the file cannot be read. The file stays open until the
    iterator is exhausted or closed.
    """
    return _records(Path(path))


def _records(path: Path) -> Generator[FrameRecord, None, None]:
    with open(path, encoding="utf-8", newline="") as f:
        for number, raw in enumerate(f, start=1):
            yield parse_detection_line(raw.rstrip("\r\n"), number)


def detection_log_line(
    camera: str, t: float, width: int, height: int, detections: Sequence[Detection]
) -> str:
    """One frame as a log line (with its newline); validated so the reader always accepts it."""
    obj = {
        "camera": camera,
        "t": float(t) if _is_number(t) else t,
        "width": width,
        "height": height,
        # float(): detectors often hand numpy scalars, which json cannot encode.
        "detections": [
            {"box": [float(v) for v in d.box], "class": d.cls, "score": float(d.score)} for d in detections
        ],
    }
    frame_record_from_json(obj, 0)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"


class DetectionLogWriter:
    """Appends analysed frames to a detections log, one line per frame, flushed at once.

    Opt-in (the pipeline records only when asked). Safe to call from several threads. In
    append mode a partial last line left by a crash is cut off first (with a warning), so
    the log stays readable. Flushing hands each line to the OS; it does not fsync.
    """

    def __init__(self, path: str | Path, *, append: bool = True) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)  # where and when people and vehicles were: ours only
        self._lock = threading.Lock()
        self.frames_written = 0
        if append:
            _cut_partial_last_line(self.path)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        self._file: IO[str] | None = os.fdopen(open_private(self.path, flags), "w", encoding="utf-8", newline="\n")

    def write(self, camera: str, t: float, width: int, height: int, detections: Sequence[Detection]) -> None:
        """Record one analysed frame; raises ValidationFailed (nothing written) on bad values."""
        line = detection_log_line(camera, t, width, height, detections)
        with self._lock:
            if self._file is None:
                raise ValueError(f"detections log {self.path} is closed")
            self._file.write(line)
            self._file.flush()
            self.frames_written += 1

    def close(self) -> None:
        """Close the file; closing twice is harmless."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> DetectionLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cut_partial_last_line(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # Walk back to the last newline; a log line is small, so read in modest chunks.
        pos = size
        keep = 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = pos + nl + 1
                break
        f.truncate(keep)
    log.warning("detections log %s: cut a partial last line of %d bytes (left by a crash)", path, size - keep)
