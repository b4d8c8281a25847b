"""Camera evidence of a full bin: the events of the `overflow` rule type as fill readings.

An `overflow` rule (smartcity/analytics/rules/overflow.py) watches the ground around one bin and
names the bin in its `bin_id` parameter; each of its events says that bin is full at the event's
time. The reading keeps the event's id as its message id, so a redelivered event is stored once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from smartcity.core.events import RuleEvent

from .sensors import MAX_ID_CHARS, FillReading, PayloadError

# the rule type (and its events' kind) that the analytics package registers; extensions import
# only core, so the name is repeated here and tests/extensions/waste checks that the two agree
OVERFLOW_RULE_TYPE = "overflow"


def overflow_reading(event: RuleEvent) -> FillReading | None:
    """The reading an overflow event stands for (level 1.0), None for the events of other rules;
    raises PayloadError when an overflow event has no usable `bin_id`."""
    if event.rule_type != OVERFLOW_RULE_TYPE or event.kind != OVERFLOW_RULE_TYPE:
        return None
    bin_id = event.payload.get("bin_id")
    if not isinstance(bin_id, str) or not 1 <= len(bin_id) <= MAX_ID_CHARS:
        raise PayloadError("camera", "bin_id", f"expected 1..{MAX_ID_CHARS} characters")
    if not 1 <= len(event.event_id) <= MAX_ID_CHARS:
        raise PayloadError("camera", "event_id", f"expected 1..{MAX_ID_CHARS} characters")
    return FillReading(bin_id=bin_id, level=1.0, t=datetime.fromtimestamp(event.t, UTC), message_id=event.event_id,
                       source="camera")
