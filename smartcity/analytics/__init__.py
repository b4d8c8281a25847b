"""smartcity.analytics: geometry, rule types and the per-camera rule engine (pure, no I/O)."""

from smartcity.analytics.base import FrameView, RelinkConfig, Rule, event_id
from smartcity.analytics.counts import CountAggregator, rollup
from smartcity.analytics.engine import RuleEngine, required_model_roles
from smartcity.analytics.registry import RULE_TYPES, register
from smartcity.analytics.spec import (
    RuleSpec,
    RuleValidationFailed,
    Schedule,
    WeeklyWindow,
    load_rules_file,
    rule_errors,
    validate_rule,
)

__all__ = [
    "RULE_TYPES",
    "CountAggregator",
    "FrameView",
    "RelinkConfig",
    "Rule",
    "RuleEngine",
    "RuleSpec",
    "RuleValidationFailed",
    "Schedule",
    "WeeklyWindow",
    "event_id",
    "load_rules_file",
    "register",
    "required_model_roles",
    "rollup",
    "rule_errors",
    "validate_rule",
]
