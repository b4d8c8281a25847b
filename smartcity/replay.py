"""Offline replay of a detections log through the tracker and the rule engine.

The log's format, the recorder that writes it and the validating reader are
`smartcity.sources.detlog`'s. Replay runs one fresh `ByteTracker` per camera and the rule engine
over the log and writes what the pipeline would have produced: rule events and count buckets as
JSON lines (`Event.to_dict()`), so a rule can be tried on recorded traffic before it goes live.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from smartcity.analytics import RuleEngine, RuleSpec, load_rules_file
from smartcity.analytics.counts import merge_parts
from smartcity.core.errors import ConfigError, ValidationFailed
from smartcity.core.events import CountBucket, RuleEvent
from smartcity.core.vision import FrameTracks, Track
from smartcity.sources.detlog import DetectionLogError, FrameRecord, read_detection_log
from smartcity.tracking import ByteTracker, TrackerConfig

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class ReplayStats:
    """What a replay went through and produced."""

    frames: int
    cameras: int
    events: int
    buckets: int
    detections: int = 0
    confirmed_tracks: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "cameras": self.cameras,
            "events": self.events,
            "buckets": self.buckets,
            "detections": self.detections,
            "confirmed_tracks": self.confirmed_tracks,
        }


class _AtomicLines:
    """JSON-lines output that appears at its path only when complete (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        self._tmp = Path(tmp)
        self._file: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self.lines = 0

    def write(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")
        self.lines += 1

    def commit(self) -> None:
        self._file.close()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class CameraReplay:
    """One camera's tracker and rule engine, driven frame by frame as the camera pipeline drives
    them (frame size included). replay() and the benches share it, so they measure the same thing."""

    def __init__(self, camera_id: str, rules: Sequence[RuleSpec], tracker_config: TrackerConfig | None = None) -> None:
        self.camera_id = camera_id
        self.tracker = ByteTracker(tracker_config if tracker_config is not None else TrackerConfig())
        self.engine = RuleEngine([r for r in rules if r.camera_id == camera_id], camera_id)

    def step(self, record: FrameRecord) -> tuple[list[Track], list[RuleEvent]]:
        """Track one analysed frame and run the rules on it: (live tracks, rule events)."""
        tracks = self.tracker.update(record.detections, record.t, (record.width, record.height))
        frame = FrameTracks(
            camera_id=record.camera, t=record.t, width=record.width, height=record.height, tracks=tuple(tracks),
            columns=self.tracker.columns,
        )
        return tracks, self.engine.update(frame)

    def count_buckets(self, flush_before: float | None) -> list[CountBucket]:
        """The parts of count buckets that changed (see RuleEngine.count_buckets)."""
        return self.engine.count_buckets(flush_before=flush_before)


def replay(
    rules_path: Path,
    detections_path: Path,
    events_out: Path,
    counts_out: Path,
    *,
    tracker_config: TrackerConfig | None = None,
) -> ReplayStats:
    """Run the rules of `rules_path` over the detections log, as the live pipeline would.

    One ByteTracker and one RuleEngine per camera met in the log (a camera without rules is
    tracked but yields nothing). Rule events go to `events_out` in the order they happen,
    count buckets to `counts_out` with their final totals, one line per bucket sorted by
    time; each line is an `Event.to_dict()`. Both files are written completely or not at
    all (an existing file is replaced only on success). Raises RuleValidationFailed for bad rules, DetectionLogError for a bad log
    line, OSError for unreadable or unwritable files.
    """
    rules = load_rules_file(rules_path)
    cameras: dict[str, CameraReplay] = {}
    confirmed: dict[str, set[int]] = {}
    parts: dict[tuple[str, str, str, str, float, int, str], CountBucket] = {}  # latest emission of each
    frames = detections = 0
    events_file = _AtomicLines(Path(events_out))
    counts_file = _AtomicLines(Path(counts_out))
    records = read_detection_log(detections_path)
    try:
        for record in records:
            camera = record.camera
            cam = cameras.get(camera)
            if cam is None:
                cam = cameras[camera] = CameraReplay(camera, rules, tracker_config)
                confirmed[camera] = set()
            tracks, events = cam.step(record)
            confirmed[camera].update(tr.track_id for tr in tracks if tr.confirmed)
            for event in events:
                events_file.write(event.to_dict())
            # The engine hands out the parts of buckets that changed, with their running totals,
            # and forgets those that ended before `flush_before`: a crossing confirmed later
            # opens a new part of its bucket. merge_parts sums the latest total of each part.
            parts.update((b.part_key(), b) for b in cam.count_buckets(flush_before=record.t))
            frames += 1
            detections += len(record.detections)
        for camera in sorted(cameras):
            parts.update((b.part_key(), b) for b in cameras[camera].count_buckets(flush_before=None))
        for bucket in merge_parts(parts.values()):
            counts_file.write(bucket.to_dict())
    except BaseException:
        events_file.discard()
        counts_file.discard()
        raise
    finally:
        records.close()
    events_file.commit()
    counts_file.commit()
    return ReplayStats(
        frames=frames,
        cameras=len(cameras),
        events=events_file.lines,
        buckets=counts_file.lines,
        detections=detections,
        confirmed_tracks=sum(len(ids) for ids in confirmed.values()),
    )


def _default_output(detections: Path, kind: str) -> Path:
    stem = detections.name.removesuffix(".jsonl").removesuffix(".json")
    return detections.with_name(f"{stem}.{kind}.jsonl")


def tracker_config_of(config_path: Path) -> TrackerConfig:
    """The tracker settings (`analysis.tracker`) of a server configuration file, read and checked
    as `smartcity serve` reads it (environment overrides included); raises ConfigError."""
    from smartcity.core.config import load_settings
    from smartcity.settings_check import check_settings

    settings = check_settings(load_settings(config_path))
    return TrackerConfig.model_validate(settings.analysis.tracker)


def main_replay(argv: Sequence[str]) -> int:
    """`smartcity replay --rules RULES.yaml DETECTIONS.jsonl [--config SERVER.yaml] [--events-out F]
    [--counts-out F]`.

    Prints the stats as one JSON line and returns 0; prints the problem on stderr and
    returns 1 when the rules, the log, the configuration or a file is bad. Bad arguments
    exit with status 2 (argparse).
    """
    parser = argparse.ArgumentParser(
        prog="smartcity replay",
        description="Replay a detections log through the tracker and the rules; write events and counts.",
    )
    parser.add_argument("--rules", required=True, type=Path, help="rules file (YAML or JSON list of rules)")
    parser.add_argument("detections", type=Path, help="detections log (JSON lines)")
    parser.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        help="server configuration file: replay tracks with its analysis.tracker settings, as the "
        "server would (default: the tracker's defaults)",
    )
    parser.add_argument(
        "--events-out", type=Path, default=None, help="rule events output (default: DETECTIONS.events.jsonl)"
    )
    parser.add_argument(
        "--counts-out",
        type=Path,
        default=None,
        help="count buckets output (default: DETECTIONS.counts.jsonl)",
    )
    args = parser.parse_args(list(argv))
    events_out = args.events_out or _default_output(args.detections, "events")
    counts_out = args.counts_out or _default_output(args.detections, "counts")
    tracker_config = None
    if args.config is not None:
        from smartcity.settings_check import config_error_lines

        try:
            tracker_config = tracker_config_of(args.config)
        except ConfigError as exc:
            print("\n".join(config_error_lines(args.config, exc)), file=sys.stderr)
            return 1
    try:
        stats = replay(args.rules, args.detections, events_out, counts_out, tracker_config=tracker_config)
    except DetectionLogError as exc:
        print(f"error: {args.detections}: {exc}", file=sys.stderr)
        return 1
    except ValidationFailed as exc:
        print(f"error: {args.rules}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(json.dumps({**stats.to_dict(), "events_out": str(events_out), "counts_out": str(counts_out)}))
    return 0
