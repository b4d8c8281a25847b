"""Configuration: one YAML file plus `SMARTCITY_*` environment overrides.

Every section is a pydantic model that forbids unknown keys; every field has a
description and bounds. `load_settings` returns valid settings or raises ConfigError
listing every problem as `path: message` (for example `cameras[2].url: ...`).
Validators never do I/O.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from smartcity.core.errors import ConfigError
from smartcity.core.netpolicy import CamerasPolicy, OutboundPolicy, check_camera_url, networks
from smartcity.core.privacy_config import PrivacyConfig

ENV_PREFIX = "SMARTCITY_"
DEMO_URL = "demo://vtest"
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ServerConfig(Section):
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.", min_length=1)
    port: int = Field(8000, description="TCP port of the HTTP server.", ge=0, le=65535)
    introspection: bool = Field(
        False,
        description="Answer GraphQL introspection (`__schema`, `__type`) to authenticated users; `smartcity demo` "
        "turns it on unless the file sets it. Anonymous callers never get it.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDR networks of the reverse proxies in front of the server, whose "
        "X-Forwarded-For/-Proto headers name the client (login limits, audit). Empty: those headers are "
        "ignored and the connecting address is the client.",
        max_length=64,
    )
    session_check_s: float = Field(
        5.0,
        description="Seconds between re-reads of an open subscription's user: a disabled account, a role or "
        "scope change or revoked tokens closes it with 'session revoked'.",
        gt=0,
        le=300,
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        return networks(v, "10.0.0.5 or 10.0.0.0/24")

    shutdown_timeout_s: float = Field(8.0, description="Seconds allowed for a clean stop.", gt=0, le=60)
    gc_tuning: bool = Field(
        True,
        description="Freeze start-up objects and collect garbage less often: graphql-core leaves cyclic "
        "garbage per rendered event, and default thresholds cost 0.5 s full collections at 1,000 subscribers. "
        "Also collects every minute (fully every 10), caps glibc's malloc arenas and fixes its mmap threshold, "
        "so memory stays flat.",
    )
    subscription_queue: int = Field(
        256, description="Events queued per live subscriber before it is closed as too slow.", ge=1, le=100_000
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token that Prometheus sends to scrape /metrics (`authorization: {credentials: ...}`; "
        "at least 16 characters). Without it, /metrics answers an admin's API token only.",
    )
    image_token_ttl_s: float = Field(
        300,
        description="Lifetime of the picture tokens carried by snapshotUrl/evidenceUrl (bound to one picture); "
        "the console asks for fresh URLs every 30 s.",
        ge=60,
        le=3600,
    )

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_len(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError("use at least 16 characters")
        return v
    max_body_bytes: int = Field(
        1 << 20,
        description="Largest HTTP request body accepted, bytes (the GraphQL documents and variables); a larger "
        "one is answered 413 before it is read, chunked or not. WebSocket messages get the same bound.",
        ge=1024,
        le=64 << 20,
    )


class DatabaseConfig(Section):
    url: str = Field(
        "sqlite+aiosqlite:///data/smartcity.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db.",
    )
    pool_size: int = Field(5, description="Connection pool size (PostgreSQL).", ge=1, le=100)
    echo: bool = Field(False, description="Log every SQL statement.")
    migrate_on_start: bool = Field(
        True, description="Apply pending migrations at start (else refuse to start when behind)."
    )

    @field_validator("url")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        scheme = v.split("://", 1)[0]
        if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(
                f"unsupported database driver {scheme!r}; use sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return v


class RayConfig(Section):
    address: str | None = Field(
        None, description="Ray cluster address (ray://host:10001 or auto); empty starts a local Ray."
    )
    namespace: str = Field("smartcity", description="Ray namespace of the actors.", pattern=_ID)
    num_cpus: int = Field(2, description="CPUs a local Ray may use.", ge=1, le=1024)
    num_gpus: int = Field(0, description="GPUs a local Ray may use.", ge=0, le=64)
    object_store_mb: int = Field(256, description="Object store size of a local Ray, MiB.", ge=78, le=1_000_000)
    actor_cpus: float = Field(0.25, description="CPUs reserved per camera-group actor.", ge=0, le=64)


class ActorsConfig(Section):
    health_interval_s: float = Field(
        5.0, description="Seconds between camera health events.", ge=0.05, le=3600
    )
    pull_interval_s: float = Field(0.2, description="Seconds between event pulls from actors.", ge=0.01, le=10)
    pull_batch: int = Field(2000, description="Maximum events taken per pull.", ge=1, le=100_000)
    reconcile_interval_s: float = Field(
        1.0, description="Seconds between reconciliations of desired and running actors.", ge=0.05, le=600
    )
    spool_max_events: int = Field(
        1_000_000, description="Events an actor keeps on disk while the server does not take them.", ge=100
    )
    start_timeout_s: float = Field(
        60.0,
        description="How long a camera-group actor may take to start (process, imports, cameras opened) before it "
        "is killed and started again; raise it on loaded nodes and when a node loss moves many groups at once.",
        ge=5,
        le=3600,
    )
    outbox: Literal["node", "database"] = Field(
        "node",
        description="Where each camera group keeps its events until the server has committed them: `node`, a "
        "SQLite file on the actor's node (one machine); `database`, the server's PostgreSQL, so that a group "
        "restarted on another node after a node loss loses and repeats nothing (several nodes).",
    )
    group_resources: dict[str, float] = Field(
        default_factory=dict,
        description="Ray custom resources every camera-group actor requires, e.g. {camera_slots: 1}: groups "
        "run only on the nodes that offer them (see ray_cluster.yaml).",
        max_length=16,
    )
    inference_per_node: bool = Field(
        False,
        description="Start the inference actors on every node that runs camera groups (those offering "
        "`group_resources`), and send each group's frames to the ones on its own node: no frame crosses nodes.",
    )

    @field_validator("group_resources")
    @classmethod
    def _resources(cls, v: dict[str, float]) -> dict[str, float]:
        for name, amount in v.items():
            if not (0 < amount <= 1_000_000) or not name or len(name) > 64:
                raise ValueError(f"resource {name!r}: a name of 1..64 characters and an amount in (0, 1e6]")
        return v


class ClusterConfig(Section):
    """Several `smartcity serve` processes sharing PostgreSQL and the Ray cluster (README "Scaling out")."""

    enabled: bool = Field(
        False,
        description="Run as one of several servers: every server serves the API and every subscription (events "
        "fanned out through PostgreSQL), one leader elected through a PostgreSQL advisory lock runs the camera "
        "actors, fusion, alert dispatch and retention. Needs database.url on PostgreSQL, actors.outbox: "
        "database and ray.address.",
    )
    server_id: str | None = Field(
        None,
        description="This server's name in the cluster (logs, health, the feed's origin); default: host name and "
        "process id.",
        pattern=_ID,
    )
    election_interval_s: float = Field(
        1.0,
        description="Seconds between a follower's tries to take the leadership and the leader's checks that it "
        "still holds it; a dead leader is replaced within about this plus the new leader's start.",
        ge=0.1,
        le=30,
    )
    feed_poll_s: float = Field(
        1.0,
        description="Seconds between reads of the event feed when no notification came (NOTIFY wakes the "
        "servers at once; the poll covers a lost notification).",
        gt=0,
        le=60,
    )
    feed_retention_s: float = Field(
        600.0,
        description="Seconds the event feed keeps events: a server away longer misses the rest (logged).",
        ge=10,
        le=86_400,
    )
    feed_batch: int = Field(1000, description="Events per feed append and per read.", ge=1, le=100_000)
    dedupe_window: int = Field(
        100_000,
        description="Recent event ids each server remembers, so that a live subscriber gets an event once "
        "although a new leader pulls again what the old one had already fanned out.",
        ge=1000,
        le=10_000_000,
    )


class AnalysisConfig(Section):
    """The video analysis pipeline: detector, batching, motion gate, tracker."""

    enabled: bool = Field(True, description="Run detection, tracking and rules (else health only).")
    detector: dict[str, Any] = Field(
        # 0.1: the tracker's second stage uses low-score boxes to keep tracks through partial
        # occlusion (new tracks need 0.6, rules 0.3 by default), and privacy pixelates every
        # person box, so dim, far or half-hidden people are hidden too
        default_factory=lambda: {"type": "darknet", "conf_threshold": 0.1},
        description="Detector: {type: darknet | onnx | torchscript, ...} (see `smartcity models`); shorthand "
        "for `models: [{role: detect, ...}]`.",
    )
    models: list[dict[str, Any]] | None = Field(
        None,
        description="The models and the role each plays: [{role: detect | pose | classify, type: ..., "
        "apply_to: [classes] (pose, classify), ...its fields}], exactly one detect model; a pose or "
        "classify model runs only on cameras with a rule that needs it. Default: `detector` as the "
        "detect model.",
        min_length=1,
        max_length=16,
    )
    max_batch: int = Field(8, description="Largest inference batch across cameras.", ge=1, le=256)
    max_wait_ms: float = Field(10.0, description="How long a frame waits for a batch to fill, ms.", ge=0, le=1000)
    inference_actors: int = Field(1, description="Inference actors (one per GPU or CPU slot).", ge=1, le=64)
    inference_cpus: float = Field(1.0, description="CPUs reserved per inference actor.", ge=0, le=256)
    inference_gpus: float = Field(0.0, description="GPUs reserved per inference actor.", ge=0, le=16)
    max_inflight: int = Field(3, description="Frames per camera awaiting inference at once.", ge=1, le=64)
    decode_resize: bool = Field(
        True,
        description="Decode frames for analysis straight to the size they take in the detector's input (one "
        "scaling from YUV in the camera's decoder); full frames are converted only for evidence and live views. "
        "False: analysis gets full frames (the detector scales them).",
    )
    motion: dict[str, Any] = Field(default_factory=dict, description="Motion gate settings.")
    tracker: dict[str, Any] = Field(default_factory=dict, description="Tracker settings.")
    summary_interval_s: float = Field(10.0, description="Seconds between detection summaries.", gt=0, le=3600)
    counts_flush_s: float = Field(10.0, description="Seconds between count bucket updates.", gt=0, le=3600)
    record_detections_dir: Path | None = Field(
        None, description="Opt-in: record anonymous detections logs (for `smartcity replay`) here."
    )

    def model_list(self) -> list[dict[str, Any]]:
        """Every model's settings with its role: `models`, or `detector` as the one detect model."""
        if self.models is not None:
            return [dict(m) for m in self.models]
        return [{**self.detector, "role": "detect"}]


class StorageConfig(Section):
    data_dir: Path = Field(Path("data"), description="Directory for the database, spools and evidence.")
    retention_days: int = Field(30, description="Days events and evidence are kept.", ge=1, le=3650)
    writer_batch: int = Field(5000, description="Maximum events per write transaction.", ge=1, le=100_000)
    writer_max_wait_ms: float = Field(
        20.0, description="How long the writer waits to fill a batch, ms.", ge=0, le=10_000
    )


class CameraGroupConfig(Section):
    name: str = Field(description="Group name (a Ray actor owns each group).", pattern=_ID)
    description: str = Field("", description="Free text.", max_length=500)


class CameraConfig(Section):
    id: str = Field(description="Stable camera id.", pattern=_ID)
    name: str = Field("", description="Human name shown to operators.", max_length=200)
    url: str = Field(description="rtsp://, rtsps://, http(s)://, file:// or demo:// source.", min_length=1)
    group: str = Field("default", description="Camera group that owns this camera.", pattern=_ID)
    enabled: bool = Field(True, description="Whether the camera is analysed.")
    analysis_fps: float = Field(5.0, description="Frames analysed per second.", gt=0, le=60)
    site: str = Field("", description="Site name used to correlate cameras.", max_length=200)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        p = urlparse(v)
        if p.scheme not in ("rtsp", "rtsps", "http", "https", "file", "demo"):
            raise ValueError(f"unsupported scheme {p.scheme or '(none)'!r}: use rtsp, http(s), file or demo")
        if p.scheme in ("rtsp", "rtsps", "http", "https") and not p.hostname:
            raise ValueError("missing host")
        if p.scheme == "file" and not p.path:
            raise ValueError("missing file path")
        return v


class Settings(BaseSettings):
    """The whole configuration. Environment variables override the YAML file:
    `SMARTCITY_DATABASE__URL=...`, `SMARTCITY_RAY__ADDRESS=...`."""

    model_config = SettingsConfigDict(
        extra="forbid", env_prefix=ENV_PREFIX, env_nested_delimiter="__", frozen=True
    )

    server: ServerConfig = Field(default_factory=ServerConfig, description="HTTP server.")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="Database.")
    ray: RayConfig = Field(default_factory=RayConfig, description="Ray runtime.")
    actors: ActorsConfig = Field(default_factory=ActorsConfig, description="Camera actors.")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="Several servers (scaling out).")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Storage.")
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig, description="Video analysis.")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="Privacy: default view, private mask.")
    live_view: dict[str, Any] = Field(
        default_factory=dict,
        description="WebRTC live views (fps, bitrate, ice_servers...); validated by "
        "smartcity.webrtc.LiveViewConfig when the server starts or check-config runs.",
    )
    alerts: dict[str, Any] = Field(
        default_factory=dict,
        description="Incidents and alerts (fusion, policies, twilio, webhooks, mqtt); validated by "
        "smartcity.integrations.config.AlertsConfig when the server starts or check-config runs.",
    )
    camera_groups: list[CameraGroupConfig] = Field(
        default_factory=list, description="Camera groups.", max_length=10_000
    )
    cameras: list[CameraConfig] = Field(default_factory=list, description="Cameras.", max_length=100_000)
    cameras_policy: CamerasPolicy = Field(
        default_factory=CamerasPolicy, description="What a camera URL may name: schemes, file folders, networks."
    )
    outbound_policy: OutboundPolicy = Field(
        default_factory=OutboundPolicy, description="Networks that alert integrations (webhooks, MQTT) may reach."
    )
    extensions: list[dict[str, object]] = Field(
        default_factory=list,
        description="Extensions to start, in order: one entry per type, `{type: <name>, ...}` with the fields "
        "of that type's config model; validated through smartcity.extensions' registry when the server "
        "starts or check-config runs.",
        max_length=64,
    )

    @model_validator(mode="after")
    def _outbox_needs_postgresql(self) -> Settings:
        if self.actors.outbox == "database" and not self.database.url.startswith("postgresql"):
            raise ValueError("actors.outbox: database needs database.url on PostgreSQL (postgresql+asyncpg://...)")
        if self.cluster.enabled:
            missing = [
                need
                for need, ok in (
                    ("database.url on PostgreSQL", self.database.url.startswith("postgresql")),
                    ("actors.outbox: database", self.actors.outbox == "database"),
                    ("ray.address (the servers share one Ray cluster)", bool(self.ray.address)),
                )
                if not ok
            ]
            if missing:
                raise ValueError(f"cluster.enabled needs {', '.join(missing)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # environment beats the file (init kwargs carry the YAML content)
        return (env_settings, init_settings)


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """A pydantic error location as a config path: `cameras[2].url` (`(root)` when empty)."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(root)"


def format_validation_error(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "field required"
        lines.append(f"{field_path(tuple(err['loc']))}: {msg}")
    return lines


def semantic_errors(s: Settings) -> list[str]:
    """Cross-field checks that a single field validator cannot see."""
    errors: list[str] = []
    if s.analysis.models is not None and "detector" in s.analysis.model_fields_set:
        errors.append("analysis.models: give analysis.models or analysis.detector (a single detect model), not both")
    seen_groups: set[str] = set()
    for i, g in enumerate(s.camera_groups):
        if g.name in seen_groups:
            errors.append(f"camera_groups[{i}].name: duplicate group {g.name!r}")
        seen_groups.add(g.name)
    seen: set[str] = set()
    for i, c in enumerate(s.cameras):
        if c.id in seen:
            errors.append(f"cameras[{i}].id: duplicate camera id {c.id!r}")
        seen.add(c.id)
        if s.camera_groups and c.group not in seen_groups:
            errors.append(f"cameras[{i}].group: unknown group {c.group!r} (not in camera_groups)")
        if (refused := check_camera_url(c.url, s.cameras_policy, s.storage.data_dir)) is not None:
            errors.append(f"cameras[{i}].url: {refused}")
    return errors


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError([f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"(root): expected a mapping of sections, got {type(data).__name__}"])
    return data


def load_settings(
    path: Path | str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the YAML file (optional), apply env and `overrides`, validate everything at once."""
    data: dict[str, Any] = read_yaml(Path(path)) if path is not None else {}
    if overrides:
        data = _deep_merge(data, dict(overrides))
    saved = None
    if environ is not None:
        saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
        for k in saved:
            del os.environ[k]
        os.environ.update({k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)})
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    finally:
        if saved is not None:
            for k in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
                del os.environ[k]
            os.environ.update(saved)
    errors = semantic_errors(settings)
    if errors:
        raise ConfigError(errors)
    return settings


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def demo_settings(base: Settings | None = None) -> Settings:
    """The embedded defaults plus the bundled demo camera (used by `smartcity demo`), with
    introspection on for its users unless the configuration chose otherwise."""
    s = base or load_settings()
    server = s.server
    if "introspection" not in server.model_fields_set:
        server = server.model_copy(update={"introspection": True})
    cameras = list(s.cameras)
    if not any(c.url.startswith("demo://") for c in cameras):
        cameras.append(CameraConfig(id="demo", name="Demo camera", url=DEMO_URL, group="default"))
    groups = list(s.camera_groups)
    if groups and not any(g.name == "default" for g in groups):
        groups.append(CameraGroupConfig(name="default"))
    return s.model_copy(update={"server": server, "cameras": cameras, "camera_groups": groups})
