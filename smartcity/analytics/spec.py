"""Rule specifications as stored and sent by the API: RuleSpec, Schedule, validation with field paths.

A rule's `params` are validated by the pydantic model of its type (`RULE_TYPES[type].Params`);
errors name the field path, for example `params.zone: polygon self-intersects at edges 1 and 3`.
"""

from __future__ import annotations

import builtins
import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smartcity.analytics.registry import RULE_TYPES
from smartcity.core.config import field_path
from smartcity.core.errors import ValidationFailed

if TYPE_CHECKING:
    from smartcity.analytics.base import Rule

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class RuleValidationFailed(ValidationFailed):
    """A rule that does not validate; `errors` holds one `path: message` line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("invalid rule:\n" + "\n".join(f"  {e}" for e in errors))
        self.errors = errors


class WeeklyWindow(BaseModel):
    """A window of activity repeated every week, in the schedule's time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    days: list[int] = Field(
        description="Days of the week the window starts on, 0 = Monday .. 6 = Sunday.", min_length=1, max_length=7
    )
    start: str = Field(description="Start time HH:MM (local).")
    end: str = Field(description="End time HH:MM (local); at or before start means it ends the next day.")

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        for d in v:
            if not 0 <= d <= 6:
                raise ValueError(f"day {d} is not in 0 (Monday) .. 6 (Sunday)")
        return sorted(set(v))

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"{v!r} is not a time HH:MM (00:00 .. 24:00)")
        return v

    def minutes(self) -> tuple[int, int]:
        sh, sm = (int(x) for x in self.start.split(":"))
        eh, em = (int(x) for x in self.end.split(":"))
        return sh * 60 + sm, eh * 60 + em


class Schedule(BaseModel):
    """When a rule is active: permanently, for a duration, until a date, or in weekly windows."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["permanent", "for_duration", "until", "weekly"] = Field(
        "permanent", description="permanent | for_duration (duration_s from starts_at) | until | weekly."
    )
    duration_s: float | None = Field(
        None, description="for_duration: seconds the rule stays active (1 h = 3600).", gt=0, le=10 * 365 * 86400
    )
    starts_at: float | None = Field(
        None, description="for_duration: unix time the duration starts (the API sets it at creation).", ge=0
    )
    until: float | None = Field(None, description="until: unix time the rule stops being active.", ge=0)
    windows: list[WeeklyWindow] = Field(
        default_factory=list, description="weekly: the windows of activity.", max_length=100
    )
    tz: str = Field("UTC", description="weekly: IANA time zone of the windows, e.g. Europe/Paris.", min_length=1)

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        # ZoneInfo reads the local tz database (bundled with the system/python), not the network.
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _complete(self) -> Schedule:
        if self.kind == "for_duration":
            if self.duration_s is None:
                raise ValueError("duration_s is required when kind is for_duration")
            if self.starts_at is None:
                raise ValueError("starts_at is required when kind is for_duration")
        if self.kind == "until" and self.until is None:
            raise ValueError("until is required when kind is until")
        if self.kind == "weekly" and not self.windows:
            raise ValueError("windows must list at least one window when kind is weekly")
        return self

    @cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def is_active(self, t: float) -> bool:
        if self.kind == "permanent":
            return True
        if self.kind == "for_duration":
            assert self.starts_at is not None and self.duration_s is not None
            return self.starts_at <= t < self.starts_at + self.duration_s
        if self.kind == "until":
            assert self.until is not None
            return t < self.until
        local = datetime.fromtimestamp(t, self._zone)
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        for w in self.windows:
            s, e = w.minutes()
            if e > s:
                if day in w.days and s <= minute < e:
                    return True
            else:  # wraps past midnight
                if (day in w.days and minute >= s) or ((day - 1) % 7 in w.days and minute < e):
                    return True
        return False

    def granularity_s(self) -> float:
        """How long `is_active` can be trusted to stay the same: weekly windows change on minutes."""
        return 60.0 if self.kind == "weekly" else 0.0


class RuleSpec(BaseModel):
    """One operator rule on one camera, as stored and as sent by the API."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(description="Stable rule id.", pattern=_ID)
    camera_id: str = Field(description="Camera the rule watches.", min_length=1, max_length=128)
    type: str = Field(description="Registered rule type, e.g. line_count, dwell.")
    name: str = Field("", description="Human name shown to operators.", max_length=200)
    enabled: bool = Field(True, description="A disabled rule is kept but not evaluated.")
    classes: list[str] = Field(
        default_factory=list, description="Object classes the rule applies to; empty = the type's defaults.",
        max_length=100,
    )
    min_confidence: float = Field(0.3, description="Tracks below this confidence are ignored.", ge=0, le=1)
    cooldown_s: float = Field(
        0.0, description="Minimum seconds between two alerts of the same kind from this rule.", ge=0, le=86400
    )
    schedule: Schedule = Field(default_factory=Schedule, description="When the rule is active.")
    params: dict[str, Any] = Field(default_factory=dict, description="Parameters of the rule type (geometry...).")

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v not in RULE_TYPES:
            raise ValueError(f"unknown rule type {v!r} (known: {', '.join(sorted(RULE_TYPES))})")
        return v

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: list[str]) -> list[str]:
        for c in v:
            if not c or len(c) > 64:
                raise ValueError(f"class name {c!r} must have 1 to 64 characters")
        return v

    @model_validator(mode="after")
    def _params(self) -> RuleSpec:
        errors = _params_errors(self.type, self.params)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @property
    def rule_class(self) -> builtins.type[Rule]:
        return RULE_TYPES[self.type]

    def parsed_params(self) -> Any:
        """The params as an instance of the rule type's `Params` model."""
        return self.rule_class.Params.model_validate(self.params)

    def effective_classes(self) -> tuple[str, ...]:
        return tuple(self.classes) if self.classes else tuple(self.rule_class.default_classes)


def _msg(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "field required"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def format_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    """`path: message` lines of a pydantic error."""
    return [f"{field_path(tuple(e['loc']), prefix)}: {_msg(e)}" for e in exc.errors()]


def _params_errors(type_name: str, params: Any) -> list[str]:
    rule_cls = RULE_TYPES.get(type_name)
    if rule_cls is None:
        return []
    try:
        rule_cls.Params.model_validate(params)
    except ValidationError as exc:
        return format_errors(exc, "params")
    return []


def validate_rule(data: Mapping[str, Any]) -> RuleSpec:
    """Validate a rule dict; raise RuleValidationFailed whose `errors` are `path: message` lines."""
    if not isinstance(data, Mapping):
        raise RuleValidationFailed([f"(root): expected a mapping, got {type(data).__name__}"])
    errors: list[str] = []
    params_checked = False
    if isinstance(data.get("type"), str) and data["type"] in RULE_TYPES and isinstance(data.get("params", {}), dict):
        errors.extend(_params_errors(data["type"], data.get("params", {})))
        params_checked = True
    try:
        spec = RuleSpec.model_validate(dict(data))
    except ValidationError as exc:
        for e in exc.errors():
            if not e["loc"] and params_checked:
                continue  # the params errors, already listed with their full paths
            errors.append(f"{field_path(tuple(e['loc']))}: {_msg(e)}")
        raise RuleValidationFailed(errors or ["(root): invalid rule"]) from None
    if errors:  # pragma: no cover - RuleSpec re-checks params, so this cannot be reached
        raise RuleValidationFailed(errors)
    return spec


def rule_errors(data: Mapping[str, Any]) -> list[str]:
    """The `path: message` problems of a rule dict (empty when it is valid)."""
    try:
        validate_rule(data)
    except RuleValidationFailed as exc:
        return exc.errors
    return []


def load_rules_file(path: str | Path) -> list[RuleSpec]:
    """Read rules from a YAML or JSON file holding a list (or `{rules: [...]}`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleValidationFailed([f"{p}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise RuleValidationFailed([f"{p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {exc}"]) from exc
    if isinstance(data, dict) and "rules" in data:
        data = data["rules"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise RuleValidationFailed([f"{p}: expected a list of rules, got {type(data).__name__}"])
    rules: list[RuleSpec] = []
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(data):
        try:
            spec = validate_rule(item)
        except RuleValidationFailed as exc:
            errors.extend(f"[{i}].{e}" if not e.startswith("(root)") else f"[{i}]{e[6:]}" for e in exc.errors)
            continue
        if (spec.camera_id, spec.id) in seen:
            errors.append(f"[{i}].id: duplicate rule id {spec.id!r} on camera {spec.camera_id!r}")
        seen.add((spec.camera_id, spec.id))
        rules.append(spec)
    if errors:
        raise RuleValidationFailed(errors)
    return rules


def finite(v: float, what: str) -> float:
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number")
    return v
