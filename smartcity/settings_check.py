"""Validation of the configuration sections owned by plugins (models, motion gate, tracker,
alerts, extensions): the core config keeps them as mappings, this checks them with their own models and
reports errors with full paths, like the core sections."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from smartcity.core.config import Settings, format_validation_error
from smartcity.core.errors import ConfigError


def _prefixed(prefix: str, exc: ValidationError) -> list[str]:
    return [f"{prefix}.{line}" if not line.startswith("(root)") else f"{prefix}{line[6:]}" for line in format_validation_error(exc)]


def _check(model: type[BaseModel], data: dict[str, Any], prefix: str, errors: list[str]) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors.extend(_prefixed(prefix, exc))


def plugin_errors(settings: Settings) -> list[str]:
    from smartcity.actors.motion import MotionConfig
    from smartcity.extensions import parse_extensions
    from smartcity.integrations.config import AlertsConfig, outbound_errors
    from smartcity.models.registry import parse_model_entry, parse_models
    from smartcity.tracking import TrackerConfig
    from smartcity.webrtc import LiveViewConfig

    errors: list[str] = []
    try:
        if settings.analysis.models is not None:
            parse_models(settings.analysis.models, path="analysis.models")
        else:
            parse_model_entry({**settings.analysis.detector, "role": "detect"}, path="analysis.detector")
    except ConfigError as exc:
        errors.extend(exc.errors)
    _check(MotionConfig, settings.analysis.motion, "analysis.motion", errors)
    _check(TrackerConfig, settings.analysis.tracker, "analysis.tracker", errors)
    _check(AlertsConfig, settings.alerts, "alerts", errors)
    if not any(e.startswith("alerts") for e in errors):  # the section is valid: check where it sends
        alerts = AlertsConfig.model_validate(settings.alerts)
        errors.extend(f"alerts.{e}" for e in outbound_errors(alerts, settings.outbound_policy.networks))
    _check(LiveViewConfig, settings.live_view, "live_view", errors)
    try:
        parse_extensions(settings.extensions)
    except ConfigError as exc:
        errors.extend(exc.errors)
    return errors


def check_settings(settings: Settings) -> Settings:
    """Raise ConfigError listing every plugin-section problem (the core sections are already valid)."""
    errors = plugin_errors(settings)
    if errors:
        raise ConfigError(errors)
    return settings


def config_error_lines(source: object, exc: ConfigError) -> list[str]:
    """How `check-config` (and every command given a configuration file) reports it: one line
    per error, then `FILE: N error(s)`."""
    return [*exc.errors, f"{source}: {len(exc.errors)} error(s)"]
