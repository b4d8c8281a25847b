"""smartcity.analytics: geometry, rule types and the per-camera rule engine (pure, no I/O).

Importing the package registers the rule types of `smartcity.analytics.rules`.
"""

from smartcity.analytics.base import FrameView, RelinkConfig, Rule, event_id
from smartcity.analytics.counts import CountAggregator, rollup
from smartcity.analytics.engine import RuleEngine
from smartcity.analytics.registry import (
    RULE_TYPES,
    params_schema,
    reads_pixels,
    register_rule,
    renders_evidence,
    required_model_roles,
    takes_signal_states,
)
from smartcity.analytics.spec import (
    RuleSpec,
    RuleValidationFailed,
    Schedule,
    WeeklyWindow,
    load_rules_file,
    rule_errors,
    validate_rule,
)

# isort: off
# last: rule modules (ours and entry points of other distributions) import the names above
from smartcity.analytics import rules as _rules  # noqa: F401,E402  (registers the rule types)

# isort: on

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
    "params_schema",
    "reads_pixels",
    "register_rule",
    "renders_evidence",
    "required_model_roles",
    "rollup",
    "rule_errors",
    "takes_signal_states",
    "validate_rule",
]
